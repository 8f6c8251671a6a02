"""Extractive answers: the sentence of the top chunks that answers the question first, then up to two more, with
[n] markers and citations whose snippets are text that stands in the source at the cited place. No language model
needed. Sentence choice and the decision to answer are the learned models of retriever/evidence.py."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np

from retriever.evidence import (
    LIST_MARKER, SENTENCE_FEATURES, SPEAKER, EvidenceScorer, Features, LinearModel, Sentence, TermStats,
    answer_sentences, candidate_sentences, chunk_sentences, highlight_spans, in_context, load_answerability_model, load_sentence_model,
    result_features,
)
from retriever.models import Answer, Citation, SearchFilters, SearchHit
from retriever.search import SearchService
from core.embeddings import StadtretterEmbeddings
from core.metrics import stage
from core.prompts import render
from core.sentences import split_sentences
from core.vocabulary import PHASES, SearchMode

RECENT_QUERIES = 16  # more than the questions in flight at once (8 concurrent clients measured)


@dataclass
class Selection:
    """The sentences chosen to answer (the answering sentence first) and the evidence for answering at all."""

    sentences: list[Sentence]
    probability: float = 0.0  # the answerability model's probability that the sources answer the question
    answerable: bool = False
    uncertain: bool = False  # answerable, but below the caution level: the answer asks to check the cited passage


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


class ExtractiveAnswerer:
    def __init__(
        self,
        search: SearchService,
        embeddings: StadtretterEmbeddings,
        k: int = 8,
        chunks_to_read: int = 3,
        sentence_model: LinearModel | None = None,
        answerability: LinearModel | None = None,
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
        self.sentence_model = sentence_model or load_sentence_model()
        self.answerability = answerability or load_answerability_model()
        # Probability above which the sources count as answering; tests set 0 (always answer) or > 1 (never).
        self.answer_threshold = self.answerability.threshold
        # Below it (and above the answer threshold) the answer is given with a caution; without a caution level in
        # the model file, never.
        self.caution_threshold = (self.answerability.caution if self.answerability.caution is not None
                                  else self.answer_threshold)
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
        texts = [in_context(hit, s.text) for hit, group in zip(head, sentences) for s in group]
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
        selection: Selection | None = None,
    ) -> Answer:
        """The extractive answer; `selection` when the caller (the LLM path) has already selected the evidence."""
        query = query or question
        hits = hits if hits is not None else self.retrieve(query, filters, mode)
        if not hits:
            return Answer(question, render("extractive_empty.txt"), [], abstained=True, query=query)
        if selection is None:
            with stage("sentence_selection"):
                selection = self.select(query, hits)
        if not selection.answerable:
            return self._abstain(question, query, hits, selection.probability)
        return self._compose(question, query, hits, selection)

    def select(self, query: str, hits: list[SearchHit]) -> Selection:
        """Evidence selection and answerability: score the sentences of the top chunks with the sentence model,
        lead with the best, add up to two more (`answer_sentences`), and let the answerability model
        decide from the whole result whether the sources answer. Reading the top 3 chunks instead of 5 loses
        nothing measurable and embeds ~35% fewer sentences."""
        candidates, features = self.evidence(query, hits)
        if not candidates:
            return Selection([])
        scores = self.sentence_model.score(features.rows)
        for sentence, score in zip(candidates, scores):
            sentence.score = float(score)
        probability = float(self.answerability.probability(result_features(features, scores)[None, :])[0])
        best, *extras = [candidates[i] for i in answer_sentences(scores, [s.hit_rank for s in candidates])]
        chosen = [best, *sorted(extras, key=lambda s: (s.hit_rank, s.position))]
        answerable = probability >= self.answer_threshold
        return Selection(chosen, probability, answerable, answerable and probability < self.caution_threshold)

    def evidence(self, query: str, hits: list[SearchHit]) -> tuple[list[Sentence], Features]:
        """The candidate sentences of the chunks the answer reads and their features (bench/train_evidence.py
        trains the models on exactly these)."""
        read = hits[: self.chunks_to_read]
        candidates = candidate_sentences(read)
        if not candidates:
            return [], Features(np.zeros((0, len(SENTENCE_FEATURES))))
        vectors = self.sentence_vectors([in_context(read[s.hit_rank], s.text) for s in candidates])
        cosines = vectors @ self.query_vector(query)
        for sentence, cosine in zip(candidates, cosines):
            sentence.cosine = float(cosine)
        return candidates, EvidenceScorer(self.term_stats()).features(query, read, candidates, cosines)

    def term_stats(self) -> TermStats:
        lexical = getattr(self.search, "lexical", None)
        if lexical is not None and hasattr(lexical, "load"):
            lexical.load()
        return TermStats(lexical)

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

    def _compose(self, question: str, query: str, hits: list[SearchHit], selection: Selection) -> Answer:
        citations: list[Citation] = []
        numbers: dict[tuple[int, tuple[float, float] | None], int] = {}
        text = ""
        highlights: list[tuple[int, int]] = []
        by_key: dict[tuple[int, tuple[float, float] | None], list[Sentence]] = {}
        for index, sentence in enumerate(selection.sentences):
            webtalk = hits[sentence.hit_rank].metadata.get("type") == "webtalk"
            key = (sentence.hit_rank, sentence.cue if webtalk else None)
            if key not in numbers:
                numbers[key] = len(numbers) + 1
            by_key.setdefault(key, []).append(sentence)
            start = len(text) + (1 if text else 0)
            text = f"{text} {LIST_MARKER.sub('', sentence.text)}".lstrip()
            if index == 0:  # what answers the question's type, marked in the answering sentence only
                highlights = highlight_spans(query, text, start, len(text))
            text += f" [{numbers[key]}]"
        for key, number in numbers.items():
            rank, cue = key
            snippet = _snippet(hits[rank].text, sorted(by_key[key], key=lambda s: s.position))
            citations.append(citation_for(number, hits[rank], snippet, cue))
        return caution(Answer(question, text, citations, abstained=False, query=query, highlights=highlights,
                              answerability=round(selection.probability, 4)), selection)

    def _abstain(self, question: str, query: str, hits: list[SearchHit], probability: float = 0.0) -> Answer:
        closest: list[SearchHit] = []
        for hit in hits:
            if hit.source_id not in {h.source_id for h in closest}:
                closest.append(hit)
            if len(closest) == 3:
                break
        citations = [citation_for(i + 1, hit, _lead(hit.text)) for i, hit in enumerate(closest)]
        names = ", ".join(f"„{c.title}“" for c in citations)
        return Answer(question, render("extractive_abstain.txt", closest=names), citations, abstained=True,
                      query=query, answerability=round(probability, 4))


def caution(answer: Answer, selection: Selection) -> Answer:
    """Mark an answer given below the caution level: the answerability model thinks the sources answer, but not
    surely (measured: a fifth of the answerable training questions and about half of the unanswerable gold questions
    fall there, bench/README.md). The participant is told to check the cited passage instead of trusting a text
    that may answer a neighbouring question."""
    if selection.uncertain and not answer.abstained:
        answer.uncertain = True
        notice = render("answer_uncertain.txt")
        answer.notice = f"{answer.notice} {notice}" if answer.notice else notice
    return answer


def _lead(text: str, limit: int = 240) -> str:
    """The opening of a chunk, cut at a sentence end where possible (for 'closest sources')."""
    first_line = text.split("\n")[0]
    match = SPEAKER.match(first_line)
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
