"""Extractive answers: the 2–4 sentences of the top chunks that best answer the question, with [n] markers and
citations whose snippets are text that stands in the source at the cited place. No language model needed."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ingest.chunking import split_sentences
from retriever.models import Answer, Citation, SearchFilters, SearchHit
from retriever.search import SearchService
from retriever.text import analyze, key_terms
from stadtretter.embeddings import StadtretterEmbeddings
from stadtretter.prompts import render
from stadtretter.settings import SearchMode

CALIBRATION_FILE = Path(__file__).resolve().parent / "calibration" / "abstention.json"
_SPEAKER = re.compile(r"^(?P<speaker>[^:\n]{2,60}):\s+(?P<text>.+)$")


@dataclass
class Sentence:
    hit_rank: int
    position: int  # index of the sentence within its chunk
    text: str
    speaker: str | None = None
    cue: tuple[float, float] | None = None  # transcript time of the line it stands in
    score: float = 0.0
    cosine: float = 0.0
    coverage: float = 0.0


@dataclass
class AbstentionRule:
    """Answer only when the evidence is strong enough. Signals: the cosine of the best sentence, how many of the
    question's key terms the chosen sentences contain, and the best chunk's cosine. Thresholds are calibrated on
    the gold set (bench/calibrate_abstention.py) and stored in retriever/calibration/abstention.json."""

    min_cosine: float = 0.80
    min_coverage: float = 0.34
    strong_cosine: float = 0.86
    measured: dict[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE) -> "AbstentionRule":
        if not path.exists():
            return cls()
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(**{key: data[key] for key in ("min_cosine", "min_coverage", "strong_cosine") if key in data},
                   measured=data.get("measured", {}))

    def answerable(self, best_cosine: float, coverage: float) -> bool:
        return best_cosine >= self.strong_cosine or (best_cosine >= self.min_cosine and coverage >= self.min_coverage)


def format_time(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def locator_for(metadata: dict, cue: tuple[float, float] | None = None) -> str:
    if metadata.get("page") is not None:
        return f"Seite {metadata['page']}"
    if cue is not None:
        return f"{format_time(cue[0])}–{format_time(cue[1])}"
    if metadata.get("start") is not None:
        return f"{format_time(float(metadata['start']))}–{format_time(float(metadata.get('end', metadata['start'])))}"
    if metadata.get("section"):
        return f"Abschnitt „{metadata['section']}“"
    return "Einleitung"


def citation_for(n: int, hit: SearchHit, snippet: str, cue: tuple[float, float] | None = None) -> Citation:
    meta = hit.metadata
    return Citation(
        n=n,
        source_id=str(meta.get("source_id", "")),
        title=str(meta.get("title", "")),
        type=str(meta.get("type", "")),
        url=meta.get("url") or None,
        locator=locator_for(meta, cue),
        snippet=snippet,
        score=round(float(hit.score), 4),
        page=meta.get("page"),
        start=cue[0] if cue else meta.get("start"),
        end=cue[1] if cue else meta.get("end"),
        section=meta.get("section"),
        date=meta.get("date"),
        chunk_id=hit.chunk_id,
        phase=meta.get("phase"),
        phase_scores={p: float(meta[f"phase_{p}"]) for p in ("E", "K", "T") if f"phase_{p}" in meta},
    )


def chunk_sentences(hit: SearchHit, rank: int) -> list[Sentence]:
    """Sentences of a chunk; transcript lines 'Sprecher: Text' keep their speaker and cue time apart."""
    cues = json.loads(hit.metadata.get("cues", "[]") or "[]")
    sentences: list[Sentence] = []
    for line_index, line in enumerate(hit.text.split("\n")):
        line = line.strip()
        if not line:
            continue
        speaker = None
        match = _SPEAKER.match(line) if hit.metadata.get("type") == "webtalk" else None
        if match:
            speaker, line = match.group("speaker"), match.group("text")
        cue = tuple(cues[line_index]) if line_index < len(cues) else None
        for text in split_sentences(line):
            if len(text) >= 15:
                sentences.append(Sentence(rank, len(sentences), text, speaker, cue))  # type: ignore[arg-type]
    return sentences


class ExtractiveAnswerer:
    def __init__(
        self,
        search: SearchService,
        embeddings: StadtretterEmbeddings,
        k: int = 8,
        chunks_to_read: int = 5,
        rule: AbstentionRule | None = None,
    ) -> None:
        self.search = search
        self.embeddings = embeddings
        self.k = k
        self.chunks_to_read = chunks_to_read
        self.rule = rule or AbstentionRule.load()

    def retrieve(self, query: str, filters: SearchFilters | None, mode: SearchMode | None) -> list[SearchHit]:
        return self.search.search(query, k=self.k, filters=filters, mode=mode)

    def run(
        self,
        question: str,
        filters: SearchFilters | None = None,
        mode: SearchMode | None = None,
        query: str | None = None,
        hits: list[SearchHit] | None = None,
    ) -> Answer:
        query = query or question
        hits = hits if hits is not None else self.retrieve(query, filters, mode)
        if not hits:
            return Answer(question, render("extractive_empty.txt"), [], abstained=True, query=query)
        chosen, best_cosine, coverage = self.select(query, hits)
        if not chosen or not self.rule.answerable(best_cosine, coverage):
            return self._abstain(question, query, hits)
        return self._compose(question, query, hits, chosen)

    def select(self, query: str, hits: list[SearchHit]) -> tuple[list[Sentence], float, float]:
        """Score the sentences of the top chunks against the question; return the chosen ones in source order."""
        candidates = [s for rank, hit in enumerate(hits[: self.chunks_to_read]) for s in chunk_sentences(hit, rank)]
        if not candidates:
            return [], 0.0, 0.0
        question_vector = self.embeddings.embed_queries([query])[0]
        vectors = self.embeddings.embed_passages([s.text for s in candidates])
        cosines = vectors @ question_vector
        terms = key_terms(query)
        top_score = max(hit.score for hit in hits[: self.chunks_to_read]) or 1.0
        for sentence, cosine in zip(candidates, cosines):
            sentence.cosine = float(cosine)
            sentence.coverage = len(terms & set(analyze(sentence.text))) / len(terms) if terms else 0.0
            chunk_prior = hits[sentence.hit_rank].score / top_score if top_score > 0 else 0.0
            sentence.score = sentence.cosine + 0.08 * sentence.coverage + 0.04 * chunk_prior
        ranked = sorted(candidates, key=lambda s: -s.score)
        best = ranked[0]
        chosen = [best]
        for sentence in ranked[1:]:
            if len(chosen) >= 4:
                break
            if sentence.score >= best.score - 0.04 or len(chosen) < 2 and sentence.score >= best.score - 0.08:
                chosen.append(sentence)
        chosen.sort(key=lambda s: (s.hit_rank, s.position))
        covered = set()
        for sentence in chosen:
            covered |= terms & set(analyze(sentence.text))
        coverage = len(covered) / len(terms) if terms else 0.0
        return chosen, best.cosine, coverage

    def _compose(self, question: str, query: str, hits: list[SearchHit], chosen: list[Sentence]) -> Answer:
        citations: list[Citation] = []
        numbers: dict[tuple[int, tuple[float, float] | None], int] = {}
        parts: list[str] = []
        by_key: dict[tuple[int, tuple[float, float] | None], list[Sentence]] = {}
        for sentence in chosen:
            key = (sentence.hit_rank, sentence.cue if hits[sentence.hit_rank].metadata.get("type") == "webtalk" else None)
            if key not in numbers:
                numbers[key] = len(numbers) + 1
            by_key.setdefault(key, []).append(sentence)
            parts.append(f"{sentence.text} [{numbers[key]}]")
        for key, number in numbers.items():
            rank, cue = key
            snippet = _snippet(hits[rank].text, by_key[key])
            citations.append(citation_for(number, hits[rank], snippet, cue))
        return Answer(question, " ".join(parts), citations, abstained=False, query=query)

    def _abstain(self, question: str, query: str, hits: list[SearchHit]) -> Answer:
        closest: list[SearchHit] = []
        for hit in hits:
            if hit.source_id not in {h.source_id for h in closest}:
                closest.append(hit)
            if len(closest) == 3:
                break
        citations = [citation_for(i + 1, hit, _lead(hit.text)) for i, hit in enumerate(closest)]
        names = ", ".join(f"„{c.title}“" for c in citations)
        return Answer(question, render("extractive_abstain.txt", closest=names), citations, abstained=True, query=query)


def _lead(text: str, limit: int = 240) -> str:
    """The opening of a chunk, cut at a sentence end where possible (for 'closest sources')."""
    first_line = text.split("\n")[0]
    match = _SPEAKER.match(first_line)
    if match:
        first_line = match.group("text")
    sentences = split_sentences(first_line)
    lead = ""
    for sentence in sentences:
        if lead and len(lead) + len(sentence) > limit:
            break
        lead = f"{lead} {sentence}".strip()
    return lead or first_line[:limit]


def _snippet(chunk_text: str, sentences: list[Sentence]) -> str:
    """Contiguous text from the chunk when the sentences are adjacent, else the sentences joined by ' […] '."""
    positions = [s.position for s in sentences]
    if positions == list(range(positions[0], positions[0] + len(positions))):
        first, last = sentences[0].text, sentences[-1].text
        start = chunk_text.find(first)
        end = chunk_text.find(last, start) + len(last) if start >= 0 else -1
        if start >= 0 and end > start and "\n" not in chunk_text[start:end]:
            return chunk_text[start:end]
    return " […] ".join(s.text for s in sentences)
