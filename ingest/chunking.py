"""Structure-aware chunking of SourceDocuments.

Documents: consecutive blocks of the same section (and the same PDF page) are packed up to `chunk_chars`; long
blocks are split at sentence boundaries (German-aware), a sentence is only cut when it alone exceeds twice the
budget. Transcripts: consecutive cues are grouped up to `transcript_seconds` or `chunk_chars`, one line per cue;
the metadata key `cues` (JSON) holds each line's [start, end] in seconds.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from core.embeddings import embedding_text
from core.sentences import split_sentences
from ingest.models import Block, Chunk, SourceDocument

SMALL_TAIL = 0.3  # a trailing piece below 30 % of the budget ...
TAIL_SLACK = 1.3  # ... joins the previous chunk if the result stays within 130 % of the budget

# --------------------------------------------------------------------------------------------------------------
# Chunker


@dataclass
class _Piece:
    text: str
    sep: str  # separator placed before this piece when it joins the previous one


class Chunker:
    def __init__(self, chunk_chars: int = 900, transcript_seconds: float = 60.0) -> None:
        if chunk_chars < 50:
            raise ValueError("chunk_chars must be at least 50")
        self.chunk_chars = chunk_chars
        self.transcript_seconds = transcript_seconds

    # ---- public
    def run(self, doc: SourceDocument) -> list[Chunk]:
        blocks = [b for b in doc.blocks if b.text and b.text.strip()]
        if blocks and all(b.start is not None for b in blocks):
            drafts = self._transcript_drafts(blocks)
        else:
            drafts = self._document_drafts(blocks)
        return self._finalize(doc, drafts)

    # ---- documents
    def _document_drafts(self, blocks: list[Block]) -> list[_Draft]:
        drafts: list[_Draft] = []
        group: list[Block] = []
        for block in blocks:
            if group and (block.section, block.page) != (group[0].section, group[0].page):
                drafts.extend(self._pack_group(group))
                group = []
            group.append(block)
        if group:
            drafts.extend(self._pack_group(group))
        return drafts

    def _pack_group(self, group: list[Block]) -> list[_Draft]:
        budget = self.chunk_chars
        pieces: list[_Piece] = []
        for block in group:
            text = block.text.strip()
            block_pieces = self._split_long(text) if len(text) > budget else [_Piece(text, "")]
            block_pieces[0].sep = "\n\n"
            pieces.extend(block_pieces)

        texts: list[str] = []
        current = ""
        for piece in pieces:
            if not current:
                current = piece.text
            elif len(current) + len(piece.sep) + len(piece.text) <= budget:
                current += piece.sep + piece.text
            else:
                texts.append(current)
                current = piece.text
        if current:
            texts.append(current)

        if len(texts) >= 2 and len(texts[-1]) < SMALL_TAIL * budget:
            merged = texts[-2] + "\n\n" + texts[-1]
            if len(merged) <= TAIL_SLACK * budget:
                texts[-2:] = [merged]

        first = group[0]
        return [_Draft(text=t, section=first.section, page=first.page) for t in texts]

    def _split_long(self, text: str) -> list[_Piece]:
        """Split an over-long block into pieces of at most the budget: first by lines, then by sentences."""
        budget = self.chunk_chars
        pieces: list[_Piece] = []
        lines = text.split("\n")
        for line_index, line in enumerate(lines):
            line = line.strip()
            if not line:
                continue
            sep = "\n" if line_index else ""
            if len(line) <= budget:
                pieces.append(_Piece(line, sep))
                continue
            for sentence_index, sentence in enumerate(split_sentences(line)):
                s_sep = sep if sentence_index == 0 else " "
                if len(sentence) > 2 * budget:
                    for word_index, part in enumerate(_split_words(sentence, budget)):
                        pieces.append(_Piece(part, s_sep if word_index == 0 else " "))
                else:
                    pieces.append(_Piece(sentence, s_sep))
        return pieces or [_Piece(text[:budget], "")]

    # ---- transcripts
    def _transcript_drafts(self, blocks: list[Block]) -> list[_Draft]:
        budget = self.chunk_chars
        drafts: list[_Draft] = []
        group: list[Block] = []
        size = 0

        def close() -> None:
            nonlocal group, size
            if group:
                drafts.append(self._transcript_draft(group))
            group, size = [], 0

        for block in _split_long_cues(blocks, budget):
            cue_len = len(block.text) + (len(block.speaker) + 2 if block.speaker else 0) + 1
            if group:
                too_long = (block.end or block.start or 0) - (group[0].start or 0) > self.transcript_seconds
                too_big = size + cue_len > budget
                if too_long or too_big or block.section != group[0].section:
                    close()
            group.append(block)
            size += cue_len
        close()
        return drafts

    @staticmethod
    def _transcript_draft(group: list[Block]) -> _Draft:
        """One line per cue ("Speaker: text"); `cues` keeps each line's [start, end] for deep links."""
        texts = [" ".join(b.text.split()) for b in group]  # a cue is exactly one line
        lines = [f"{b.speaker}: {t}" if b.speaker else t for b, t in zip(group, texts)]
        speakers: list[str] = []
        for block in group:
            if block.speaker and block.speaker not in speakers:
                speakers.append(block.speaker)
        starts = [b.start for b in group if b.start is not None]
        ends = [b.end for b in group if b.end is not None]
        cues = [[_num(b.start), _num(b.end if b.end is not None else b.start)] for b in group]
        return _Draft(
            text="\n".join(lines),
            section=group[0].section,
            page=None,
            start=min(starts) if starts else None,
            end=max(ends) if ends else None,
            speakers=", ".join(speakers) or None,
            cues=json.dumps(cues),
        )

    # ---- ids and metadata
    def _finalize(self, doc: SourceDocument, drafts: list[_Draft]) -> list[Chunk]:
        chunks: list[Chunk] = []
        seen: dict[str, int] = {}
        date_int = int(doc.date.replace("-", "")) if doc.date and re.fullmatch(r"\d{4}-\d{2}-\d{2}", doc.date) else None
        for draft in drafts:
            text = draft.text.strip()
            if not text:
                continue
            occurrence = seen.get(text, 0)
            seen[text] = occurrence + 1
            chunk_id = hashlib.sha256(f"{doc.source_id}\x00{text}\x00{occurrence}".encode()).hexdigest()[:32]
            embed_text = embedding_text(doc.title, draft.section, text)
            metadata: dict[str, str | int | float | bool | None] = {
                "source_id": doc.source_id,
                "title": doc.title,
                "type": doc.type,
                "url": doc.url,
                "path": str(doc.path),
                "date": doc.date,
                "date_int": date_int,
                "author": doc.author,
                "section": draft.section,
                "page": draft.page,
                "start": float(draft.start) if draft.start is not None else None,
                "end": float(draft.end) if draft.end is not None else None,
                "speakers": draft.speakers,
                "cues": draft.cues,
                "chunk_index": len(chunks),
                "content_hash": hashlib.sha256(embed_text.encode()).hexdigest(),
            }
            clean = {k: v for k, v in metadata.items() if v is not None}
            chunks.append(Chunk(id=chunk_id, text=text, embed_text=embed_text, metadata=clean))  # type: ignore[arg-type]
        return chunks


@dataclass
class _Draft:
    text: str
    section: str | None = None
    page: int | None = None
    start: float | None = None
    end: float | None = None
    speakers: str | None = None
    cues: str | None = None  # transcripts: JSON list of [start, end] per text line


def _num(value: float | None) -> float | None:
    return round(float(value), 3) if value is not None else None


def _split_words(text: str, budget: int) -> list[str]:
    parts: list[str] = []
    current = ""
    for word in text.split():
        while len(word) > budget:  # a "word" longer than the budget (URL, garbage): hard cut
            if current:
                parts.append(current)
                current = ""
            parts.append(word[:budget])
            word = word[budget:]
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= budget:
            current += " " + word
        else:
            parts.append(current)
            current = word
    if current:
        parts.append(current)
    return parts


def _split_long_cues(blocks: list[Block], budget: int) -> list[Block]:
    """Cues longer than the budget are split at sentences (all parts keep the cue's time range)."""
    out: list[Block] = []
    for block in blocks:
        if len(block.text) <= budget:
            out.append(block)
            continue
        current = ""
        sentences: list[str] = []
        for sentence in split_sentences(block.text):
            sentences.extend(_split_words(sentence, budget) if len(sentence) > 2 * budget else [sentence])
        for sentence in sentences:
            if current and len(current) + 1 + len(sentence) > budget:
                out.append(Block(text=current, section=block.section, start=block.start, end=block.end,
                                 speaker=block.speaker))  # fmt: skip
                current = sentence
            else:
                current = f"{current} {sentence}" if current else sentence
        if current:
            out.append(Block(text=current, section=block.section, start=block.start, end=block.end,
                             speaker=block.speaker))  # fmt: skip
    return out
