"""Extractive answers: the 2–4 sentences of the top chunks that best answer the question, with [n] markers and
citations whose snippets are text that stands in the source at the cited place. No language model needed."""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from importlib.resources import files
from importlib.resources.abc import Traversable

import numpy as np

from retriever.models import Answer, Citation, SearchFilters, SearchHit
from retriever.search import SearchService
from retriever.text import key_terms
from core.embeddings import StadtretterEmbeddings
from core.metrics import stage
from core.prompts import render
from core.sentences import split_sentences
from core.vocabulary import PHASES, SearchMode

CALIBRATION_FILE = files("retriever") / "calibration" / "abstention.json"
_LIST_MARKER = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_SPEAKER = re.compile(r"^(?P<speaker>[^:\n]{2,60}):\s+(?P<text>.+)$")
RECENT_QUERIES = 16  # more than the questions in flight at once (8 concurrent clients measured)


@dataclass
class Sentence:
    hit_rank: int
    position: int  # index of the sentence within its chunk
    text: str
    speaker: str | None = None
    cue: tuple[float, float] | None = None  # transcript time of the line it stands in
    score: float = 0.0
    cosine: float = 0.0


@dataclass
class AbstentionRule:
    """Answer only when the evidence is strong enough. Two signals, both explainable:

    - best_cosine: cosine between the question and the best sentence (embedded with its title and section);
    - unknown_ratio: share of the question's content terms that occur nowhere in the index (the question names
      things the archive never mentions).

    One similarity score alone separates answerable from unanswerable questions only weakly (AUC ≈ 0.75 on the
    gold set); adding lexical coverage or score margins did not raise the cross-validated AUC. Thresholds are
    calibrated on the gold set by bench/calibrate_abstention.py and stored with their measured precision/recall
    in retriever/calibration/abstention.json."""

    min_cosine: float = 0.86
    max_unknown_ratio: float = 0.34
    measured: dict[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Traversable = CALIBRATION_FILE) -> "AbstentionRule":
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            **{key: data[key] for key in ("min_cosine", "max_unknown_ratio") if key in data},
            measured=data.get("measured", {}),
        )

    def answerable(self, best_cosine: float, unknown_ratio: float) -> bool:
        return best_cosine >= self.min_cosine and unknown_ratio < self.max_unknown_ratio


@dataclass
class Selection:
    """The sentences chosen to answer, in source order, and the evidence for answering at all."""

    sentences: list[Sentence]
    best_cosine: float = 0.0
    unknown_ratio: float = 0.0
    answerable: bool = False


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
        phase_scores={p: float(meta[f"phase_{p}"]) for p in PHASES if f"phase_{p}" in meta},
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
        chunks_to_read: int = 3,
        rule: AbstentionRule | None = None,
        cache_size: int = 20000,
        rerank_depth: int = 3,
        rerank_weight: float = 5.0,
    ) -> None:
        self.search = search
        self.embeddings = embeddings
        self.k = k
        self.chunks_to_read = chunks_to_read
        self.rerank_depth = rerank_depth
        self.rerank_weight = rerank_weight
        self.rule = rule or AbstentionRule.load()
        self.cache_size = cache_size
        self._cache: dict[str, np.ndarray] = {}
        self._cache_lock = threading.Lock()
        self._recent_queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._recent_lock = threading.Lock()

    def query_vector(self, query: str) -> np.ndarray:
        """The question's embedding, computed once per request: search, sentence selection and the phase tagger
        all need it (before, each embedded it again: 3 of a warm request's 4 model calls). Only the last few
        questions are kept: this spares repeated work within a request, it is no answer cache."""
        with self._recent_lock:
            vector = self._recent_queries.get(query)
            if vector is not None:
                self._recent_queries.move_to_end(query)
                return vector
        vector = self.embeddings.embed_queries([query])[0]
        with self._recent_lock:
            self._recent_queries[query] = vector
            while len(self._recent_queries) > RECENT_QUERIES:
                self._recent_queries.popitem(last=False)
        return vector

    def retrieve(self, query: str, filters: SearchFilters | None, mode: SearchMode | None) -> list[SearchHit]:
        hits = self.search.search(query, k=self.k, filters=filters, mode=mode, vector=self.query_vector(query))
        with stage("evidence_rerank"):
            return self.rerank(query, hits)

    def rerank(self, query: str, hits: list[SearchHit]) -> list[SearchHit]:
        """Reorder the first `rerank_depth` hits by their evidence: retrieval score + `rerank_weight` x the cosine
        of the chunk's best sentence to the question (sentences embedded with title and section, as for the answer).

        A chunk-level embedding blurs a long chunk's topic; the sentence that answers shows which of two chunks on
        the same topic (an article and a WebTalk on the same town project) really says it. Measured (bench/README.md):
        hit@1 gold 0.819 -> 0.867, XQuAD-de 0.958 -> 0.966, GermanQuAD 0.960 -> 0.963. The depth equals the chunks
        the answer reads, so the answer path embeds no sentence more than before; scores stay the retrieval scores,
        the best sentence cosine is in `metadata["evidence"]`."""
        depth = min(self.rerank_depth, len(hits))
        if depth < 2 or self.rerank_weight <= 0:
            return hits
        head = hits[:depth]
        sentences = [chunk_sentences(hit, rank) for rank, hit in enumerate(head)]
        texts = [_in_context(hit, s.text) for hit, group in zip(head, sentences) for s in group]
        if not texts:
            return hits
        cosines = self.sentence_vectors(texts) @ self.query_vector(query)
        reranked: list[tuple[float, int, SearchHit]] = []
        offset = 0
        for rank, (hit, group) in enumerate(zip(head, sentences)):
            best = float(cosines[offset : offset + len(group)].max()) if group else 0.0
            offset += len(group)
            reranked.append((hit.score + self.rerank_weight * best, rank, replace(hit, metadata={**hit.metadata, "evidence": round(best, 4)})))
        reranked.sort(key=lambda item: (-item[0], item[1]))
        return [hit for _, _, hit in reranked] + hits[depth:]

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
        with stage("sentence_selection"):
            selection = self.select(query, hits)
        if not selection.answerable:
            return self._abstain(question, query, hits)
        return self._compose(question, query, hits, selection.sentences)

    def select(self, query: str, hits: list[SearchHit]) -> Selection:
        """Score the sentences of the top chunks against the question and decide whether to answer.

        Measured on the gold set (bench/calibrate_abstention.py prints it): embedding each sentence with its title and section
        and adding a small prior for the chunk's rank chose a sentence containing the gold answer for 0.52 of the
        questions, against 0.44 for bare sentences plus lexical coverage (coverage hurt: questions paraphrase).
        Reading the top 3 chunks instead of 5 loses nothing measurable and embeds ~35% fewer sentences."""
        read = hits[: self.chunks_to_read]
        candidates = [s for rank, hit in enumerate(read) for s in chunk_sentences(hit, rank)]
        if not candidates:
            return Selection([])
        question_vector = self.query_vector(query)
        contexts = [_in_context(read[s.hit_rank], s.text) for s in candidates]
        vectors = self.sentence_vectors(contexts)
        top_score = max(hit.score for hit in read) or 1.0
        for sentence, vector in zip(candidates, vectors):
            sentence.cosine = float(vector @ question_vector)
            chunk_prior = read[sentence.hit_rank].score / top_score if top_score > 0 else 0.0
            sentence.score = sentence.cosine + 0.1 * chunk_prior
        ranked = sorted(candidates, key=lambda s: -s.score)
        best = ranked[0]
        chosen = [best]
        for sentence in ranked[1:]:
            if len(chosen) >= 4:
                break
            if sentence.score >= best.score - 0.04 or len(chosen) < 2 and sentence.score >= best.score - 0.08:
                chosen.append(sentence)
        chosen.sort(key=lambda s: (s.hit_rank, s.position))
        best_cosine = max(s.cosine for s in candidates)
        unknown = self.unknown_ratio(query)
        return Selection(chosen, best_cosine, unknown, self.rule.answerable(best_cosine, unknown))

    def sentence_vectors(self, texts: list[str]) -> np.ndarray:
        """Sentence embeddings through a bounded in-memory cache: popular sources are not embedded again."""
        with self._cache_lock:  # requests run in parallel threads; the model call stays outside the lock
            found = {t: self._cache[t] for t in dict.fromkeys(texts) if t in self._cache}
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            fresh = dict(zip(missing, self.embeddings.embed_passages(missing)))
            found.update(fresh)
            with self._cache_lock:
                self._cache.update(fresh)
                while len(self._cache) > self.cache_size:
                    self._cache.pop(next(iter(self._cache)))
        return np.stack([found[t] for t in texts])

    def unknown_ratio(self, query: str) -> float:
        """Share of the question's nouns, names and numbers that the lexical index has never seen.

        Only capitalised words (German nouns and names) and numbers count: inflected verbs ("betreibt") are often
        absent from the index although the topic is covered, while a missing name or noun means the archive never
        mentions what is asked about."""
        terms = salient_terms(query)
        lexical = getattr(self.search, "lexical", None)
        vocabulary = getattr(getattr(lexical, "bm25", None), "vocab_dict", None)
        if not terms or not vocabulary:
            return 0.0
        return sum(1 for term in terms if term not in vocabulary) / len(terms)

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
            parts.append(f"{_LIST_MARKER.sub('', sentence.text)} [{numbers[key]}]")
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


_SENTENCE_START = re.compile(r"(?:^|[.!?:]\s+)$")


def salient_terms(text: str) -> set[str]:
    """Stems of the capitalised words (not at a sentence start) and numbers of a question."""
    salient: list[str] = []
    for match in re.finditer(r"[\wÄÖÜäöüß][\w\-ÄÖÜäöüß.]*", text):
        word = match.group(0).rstrip(".")
        at_start = bool(_SENTENCE_START.search(text[: match.start()]))
        if any(ch.isdigit() for ch in word) or (word[:1].isupper() and not at_start):
            salient.append(word)
    return key_terms(" ".join(salient)) if salient else set()


def _in_context(hit: SearchHit, sentence: str) -> str:
    """A sentence as it is embedded for scoring: with its document title and section, which short sentences need."""
    title = hit.metadata.get("title", "")
    section = hit.metadata.get("section")
    return f"{title} › {section}: {sentence}" if section else f"{title}: {sentence}"


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
