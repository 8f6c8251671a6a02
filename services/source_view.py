"""The source view's content (`/quellen/{source_id}`): a registered source in reading order, built from the store's
chunks, so the page shows exactly the text the answers cite. The router only renders what this returns."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.store import ChunkStore
from ingest.registry import Registry, SourceRecord
from retriever.answer import format_time


@dataclass
class TranscriptLine:
    text: str
    speaker: str | None = None
    time: str | None = None
    target: bool = False


@dataclass
class Passage:
    """One chunk of the source in reading order, with the headings that open before it."""

    chunk_id: str
    target: bool
    page: int | None = None  # "Seite n" heading (PDFs)
    section: str | None = None
    paragraphs: list[str] = field(default_factory=list)
    # Transcript cue: start second, "mm:ss–mm:ss", speakers and the lines with their own time stamps.
    start: int | None = None
    time_range: str | None = None
    speakers: str | None = None
    lines: list[TranscriptLine] = field(default_factory=list)


@dataclass
class SourceView:
    title: str
    record: SourceRecord
    date: str | None
    source_type: str
    is_pdf: bool
    is_transcript: bool
    has_target: bool
    passages: list[Passage]


def format_date(value: str | None) -> str | None:
    if value and len(value) == 10 and value[4] == "-" and value[7] == "-":
        return f"{value[8:10]}.{value[5:7]}.{value[0:4]}"
    return value


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]


def transcript_lines(text: str, meta: dict[str, Any], t: float | None = None) -> list[TranscriptLine]:
    """Lines of a cue; `t` (seconds) marks the line spoken at that time."""
    try:
        cues = json.loads(meta.get("cues") or "[]")
    except (TypeError, ValueError):
        cues = []
    lines = []
    for index, line in enumerate(l for l in text.split("\n") if l.strip()):
        item = TranscriptLine(text=line)
        if index < len(cues) and cues[index]:
            start = float(cues[index][0])
            end = float(cues[index][1]) if len(cues[index]) > 1 else start
            item.time = format_time(start)
            item.target = t is not None and start <= t <= end
        speaker, sep, rest = line.partition(": ")
        if sep and 1 < len(speaker) <= 60:
            item.speaker, item.text = speaker, rest
        lines.append(item)
    return lines


def target_chunk(chunks: list, chunk: str | None, t: float | None) -> str | None:
    if chunk and any(c.id == chunk for c in chunks):
        return chunk
    if t is not None:
        timed = [c for c in chunks if c.metadata.get("start") is not None]
        for c in timed:
            if float(c.metadata["start"]) <= t <= float(c.metadata.get("end", c.metadata["start"])):
                return c.id
        before = [c for c in timed if float(c.metadata["start"]) <= t]
        if before:
            return before[-1].id
        if timed:
            return timed[0].id
    return None


def passages(chunks: list, target: str | None, is_pdf: bool, is_transcript: bool, t: float | None) -> list[Passage]:
    result = []
    section = page = None
    for c in chunks:
        meta = c.metadata
        passage = Passage(chunk_id=c.id, target=c.id == target)
        if is_pdf and meta.get("page") is not None and meta.get("page") != page:
            page = meta.get("page")
            passage.page = int(page)
            section = None
        if meta.get("section") and meta.get("section") != section:
            section = passage.section = meta.get("section")
        if is_transcript and meta.get("start") is not None:
            start = float(meta["start"])
            passage.start = int(start)
            passage.time_range = f"{format_time(start)}–{format_time(float(meta.get('end', start)))}"
            passage.speakers = meta.get("speakers") or None
            passage.lines = transcript_lines(c.text, meta, t if passage.target else None)
        else:
            passage.paragraphs = paragraphs(c.text)
        result.append(passage)
    return result


class SourceViewService:
    """Reads a source for the page and finds its original file; never serves a path outside the corpus folder (or
    the uploads folder, for documents uploaded through the admin API)."""

    def __init__(
        self, registry: Registry, store: ChunkStore, corpus_dir: Path, uploads_dir: Path | None = None
    ) -> None:
        self.registry = registry
        self.store = store
        self.corpus_dir = corpus_dir
        self.uploads_dir = uploads_dir

    def record(self, source_id: str) -> SourceRecord | None:
        record = self.registry.get(source_id)
        return record if record is not None and record.status == "ok" else None

    def original_file(self, source_id: str) -> Path | None:
        record = self.record(source_id)
        if record is None or not record.path:
            return None
        try:
            roots = [folder.resolve() for folder in (self.corpus_dir, self.uploads_dir) if folder is not None]
            path = Path(record.path).resolve()
        except (OSError, RuntimeError):
            return None
        if not any(root in path.parents for root in roots) or not path.is_file():
            return None
        return path

    def view(self, source_id: str, chunk: str | None = None, t: float | None = None) -> SourceView | None:
        """None when the source is unknown or removed; store errors propagate (the router shows a German 503)."""
        record = self.record(source_id)
        if record is None:
            return None
        chunks = self.store.get_where({"source_id": record.source_id})
        chunks.sort(key=lambda c: int(c.metadata.get("chunk_index", 0)))
        target = target_chunk(chunks, chunk, t)
        source_type = record.type or (chunks[0].metadata.get("type") if chunks else "") or ""
        timed = bool(chunks) and all(c.metadata.get("start") is not None for c in chunks)
        is_transcript = source_type == "webtalk" or timed
        file_path = self.original_file(source_id)
        is_pdf = bool(file_path and file_path.suffix.lower() == ".pdf")
        return SourceView(
            title=record.title or record.source_id,
            record=record,
            date=format_date(record.date),
            source_type=source_type,
            is_pdf=is_pdf,
            is_transcript=is_transcript,
            has_target=target is not None,
            passages=passages(chunks, target, is_pdf, is_transcript, t),
        )
