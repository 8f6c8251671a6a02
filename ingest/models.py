"""Typed data passed between ingestion steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.vocabulary import SourceType


class LoaderError(Exception):
    """A file cannot be ingested. The message is German, names no path (the caller adds it) and is shown as is."""


@dataclass
class Block:
    """A structural unit of a document before chunking: a paragraph, list, page paragraph or transcript cue."""

    text: str
    section: str | None = None  # heading path below the title, e.g. "Finanzierung › Fördermittel"
    page: int | None = None  # 1-based PDF page
    start: float | None = None  # transcript cue start, seconds
    end: float | None = None  # transcript cue end, seconds
    speaker: str | None = None


@dataclass
class SourceDocument:
    """One loaded file: its metadata and its blocks in reading order."""

    path: Path
    source_id: str
    title: str
    type: SourceType
    blocks: list[Block]
    url: str | None = None
    date: str | None = None  # ISO date YYYY-MM-DD
    author: str | None = None
    ekt: list[str] = field(default_factory=list)  # editor's phase tags from front matter (a prior only)
    warnings: list[str] = field(default_factory=list)  # German, e.g. "Seite 3 enthält keinen Text (vermutlich gescannt)"


@dataclass
class Chunk:
    """A piece of a document as stored: the text shown and cited, plus the text that is embedded."""

    id: str
    text: str
    embed_text: str
    metadata: dict[str, str | int | float | bool]
