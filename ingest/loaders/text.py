"""Plain text loader: paragraphs separated by blank lines, optional title line."""

from __future__ import annotations

import re

from ingest.loaders.common import ParsedFile, clean_inline
from ingest.models import Block

_BULLET_RE = re.compile(r"^\s*(?:[-*•·▪–]\s+|\d{1,3}[.)]\s+)")


def parse_text(text: str) -> ParsedFile:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = [p for p in re.split(r"\n[ \t\f\v]*\n", text.strip("\n")) if p.strip()]
    title_guess: str | None = None
    if len(paragraphs) > 1:
        first = paragraphs[0].strip()
        if "\n" not in first and len(first) < 120:
            title_guess = clean_inline(first)
            paragraphs = paragraphs[1:]
    blocks = [Block(text=t) for t in (_join_lines(p) for p in paragraphs) if t]
    return ParsedFile(blocks=blocks, title_guess=title_guess)


def _join_lines(paragraph: str) -> str:
    """Join wrapped lines with spaces but keep list items on their own lines."""
    out: list[str] = []
    for raw in paragraph.split("\n"):
        line = clean_inline(raw)
        if not line:
            continue
        if out and not _BULLET_RE.match(raw):
            out[-1] = f"{out[-1]} {line}"
        else:
            out.append(line)
    return "\n".join(out)
