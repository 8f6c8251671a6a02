"""Evidence selection and answerability: which sentences of the top chunks answer the question, and whether the
sources answer it at all. Both are small learned linear models over features computable in a few ms.

Single jobs, typed in and out:
- `candidate_sentences(hits)` → the sentences of the chunks the answer reads;
- `EvidenceScorer.features(...)` → one feature row per sentence (`SENTENCE_FEATURES`) and the question-level values;
- `LinearModel` → a sentence's answer score (the sentence model) or the probability that the sources answer
  (the answerability model over `RESULT_FEATURES`, see `result_features`);
- `highlight_spans(...)` → the numbers, dates, amounts and names in the answer that match the question's type.

The models are JSON files in retriever/calibration/ (weights, feature names, version, what they were trained and
measured on), written by bench/train_evidence.py with scikit-learn; the product needs only numpy to apply them.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

import numpy as np

from core.sentences import MONTHS, split_sentences
from retriever.models import SearchHit
from retriever.text import analyze, fold

CALIBRATION = files("retriever") / "calibration"
SENTENCE_MODEL_FILE = CALIBRATION / "evidence_sentence.json"
ANSWERABILITY_MODEL_FILE = CALIBRATION / "evidence_answerability.json"
MODEL_VERSION = 1
EXTRA_SENTENCES = 2  # besides the answering sentence: an answer has 1–3 sentences
# Log-odds below the best sentence that a further sentence may score (gold, answer cited: 1.5 → 0.43, 3.5 → 0.52).
EXTRA_MARGIN = 3.5
PER_CHUNK = 2

SPEAKER = re.compile(r"^(?P<speaker>[^:\n]{2,60}):\s+(?P<text>.+)$")
LIST_MARKER = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")

SENTENCE_FEATURES = (
    "cosine", "cosine_gap", "cosine_rank", "neighbour_cosine", "overlap_idf", "overlap_soft", "overlap_rare",
    "overlap_names", "question_has_names", "novelty", "number_match", "number_missing", "date_match",
    "person_match", "place_match", "reason_match", "hit_rank", "hit_score", "position", "length", "short",
    "moderation", "is_question", "list_item",
)
# Answerability sees how close the best sentences come to the question and whether the chunks read name what it
# asks about. Measured on gold (leave-one-file-group-out, bench/train_evidence.py), these six beat the full set of
# 16 tried: the top hit's retrieval score, the score spread and the unknown-term share separate the synthetic
# negatives (gold passage removed) well but real unanswerable questions not at all, and the model learned them
# instead (gold AUC 0.62 with them, 0.75 without; GermanQuAD-removed 0.98 → 0.93).
RESULT_FEATURES = ("best_cosine", "top3_cosine", "margin", "best_type_match", "read_soft_coverage", "read_names")
_COLUMN = {name: i for i, name in enumerate(SENTENCE_FEATURES)}

# Expected answer type from the question word(s); the first match wins.
_ANSWER_TYPES = (
    ("date", re.compile(r"\b(wann|seit wann|bis wann|ab wann|in welchem jahr|welches datum|an welchem tag|"
                        r"wie lange)\b")),
    ("number", re.compile(r"\b(wie ?viele?n?|wie hoch|wie gro(ß|ss)|wie teuer|was kostet|was kosten|wie weit|"
                          r"wie lang|wie oft|wie alt|welchen? (anteil|betrag|preis|summe)|wie schwer|"
                          r"wie stark|welche (summe|kosten|zahl)|wie breit|quote|prozent)\b")),
    ("person", re.compile(r"\b(wer|wem|wen|von wem|mit wem|welche[rn]? (person|partner|firma|unternehmen|"
                          r"dienstleister|anbieter|agentur|hochschule|organisation|verein))\b")),
    ("place", re.compile(r"\b(wo|woher|wohin|in welcher (stadt|gemeinde|region)|an welchem ort)\b")),
    ("reason", re.compile(r"\b(warum|wieso|weshalb|weswegen|aus welchem grund|wozu)\b")),
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*|\b(?:zwei|drei|vier|fünf|sechs|sieben|acht|neun|zehn|elf|zwölf|zwanzig|"
                     r"dreißig|vierzig|fünfzig|hundert|tausend|dutzend|hälfte|drittel|viertel)\w*", re.I)
_AMOUNT = re.compile(r"(?:\d+(?:[.,]\d+)*\s*(?:%|prozent|euro|€|eur\b|mio\.?|millionen|mrd\.?|milliarden|"
                     r"tsd\.?|quadratmeter|qm|m²|km|kilometer|meter|stunden|minuten|tage|wochen|monate|jahre|"
                     r"stück|mal)(?![a-zäöüß]))|(?:€\s*\d+(?:[.,]\d+)*)", re.I)
_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")
_DAY_DATE = re.compile(r"\b\d{1,2}\.\s?(?:\d{1,2}\.(?:\d{2,4})?|(?:" + "|".join(sorted(MONTHS, key=len, reverse=True))
                       + r"))", re.I)
_MONTH = re.compile(r"\b(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\b", re.I)
_PERSON = re.compile(r"\b(?:Frau|Herr|Dr\.|Prof\.|Bürgermeister(?:in)?|Leiter(?:in)?|Geschäftsführer(?:in)?)\s+"
                     r"[A-ZÄÖÜ]\w+|\b(?!(?:Der|Die|Das|Den|Dem|Des|Ein|Eine|Einen|Im|Am|In|Zum|Zur|Mit|Für|Bei)\b)"
                     r"[A-ZÄÖÜ][a-zäöüß]+ [A-ZÄÖÜ][a-zäöüß]+(?:-[A-ZÄÖÜ]\w+)?\b")
_PLACE = re.compile(r"\b(?:in|nach|aus|im|am)\s+(?:der\s+|dem\s+)?[A-ZÄÖÜ][\wäöüß-]+")
_REASON = re.compile(r"\b(weil|da\b|denn|deshalb|daher|darum|deswegen|grund|damit|sodass|so dass|ursache|"
                     r"liegt an|führt)\w*", re.I)
_MODERATION = re.compile(
    r"\b(hallo|herzlich willkommen|willkommen|guten (morgen|tag|abend)|vielen dank|danke(schön)?|ich bin der|"
    r"ich bin die|mein name|ich heiße|stelle mich|hören sie mich|seht ihr|sehen sie meinen|folie|bildschirm|"
    r"pause|im chat|mikro|kamera|bis zum nächsten mal|tschüss|auf wiedersehen|schön, dass)\b", re.I)
_NAME = re.compile(r"(?<![.!?:]\s)(?<!^)\b([A-ZÄÖÜ][\wäöüß-]{2,}|\d[\d.,]*)")


@dataclass
class Sentence:
    hit_rank: int
    position: int  # index of the sentence within its chunk
    text: str
    speaker: str | None = None
    cue: tuple[float, float] | None = None  # transcript time of the line it stands in
    score: float = 0.0  # the sentence model's score (log-odds that it states the answer)
    cosine: float = 0.0


def chunk_sentences(hit: SearchHit, rank: int) -> list[Sentence]:
    """Sentences of a chunk; transcript lines 'Sprecher: Text' keep their speaker and cue time apart."""
    cues = json.loads(hit.metadata.get("cues", "[]") or "[]")
    sentences: list[Sentence] = []
    for line_index, line in enumerate(hit.text.split("\n")):
        line = line.strip()
        if not line:
            continue
        speaker = None
        match = SPEAKER.match(line) if hit.metadata.get("type") == "webtalk" else None
        if match:
            speaker, line = match.group("speaker"), match.group("text")
        cue = tuple(cues[line_index]) if line_index < len(cues) else None
        for text in split_sentences(line):
            if len(text) >= 15:
                sentences.append(Sentence(rank, len(sentences), text, speaker, cue))  # type: ignore[arg-type]
    return sentences


def candidate_sentences(hits: list[SearchHit]) -> list[Sentence]:
    return [s for rank, hit in enumerate(hits) for s in chunk_sentences(hit, rank)]


def in_context(hit: SearchHit, sentence: str) -> str:
    """A sentence as it is embedded for scoring: with its document title and section, which short sentences need."""
    title = hit.metadata.get("title", "")
    section = hit.metadata.get("section")
    return f"{title} › {section}: {sentence}" if section else f"{title}: {sentence}"


def answer_type(question: str) -> str:
    text = question.casefold()
    return next((name for name, pattern in _ANSWER_TYPES if pattern.search(text)), "other")


@lru_cache(maxsize=65536)  # the terms of popular sources recur from question to question
def _trigrams(term: str) -> frozenset[str]:
    padded = f"#{term}#"
    return frozenset(padded[i : i + 3] for i in range(len(padded) - 2))


def soft_match(term: str, others: set[str]) -> float:
    """Best character-trigram Dice similarity of a term to a set of terms: "zahlung" ~ "zahlgerat", inflections
    and compound parts the stemmer and the decompounder miss."""
    if term in others:
        return 1.0
    mine = _trigrams(term)
    best = 0.0
    for other in others:
        theirs = _trigrams(other)
        best = max(best, 2 * len(mine & theirs) / (len(mine) + len(theirs)))
    return best


class TermStats:
    """IDF of the lexical index's terms (duck-typed: `bm25` postings and `decompounder`), so that overlap counts
    rare terms more."""

    def __init__(self, lexical: Any) -> None:
        bm25 = getattr(lexical, "bm25", None)
        self.vocabulary: dict[str, int] = getattr(bm25, "vocab_dict", None) or {}
        self.decompounder = getattr(lexical, "decompounder", None)
        scores = getattr(bm25, "scores", None) or {}
        self.n_docs = int(scores.get("num_docs", 0) or 0)
        self._indptr = scores.get("indptr")
        self._analyze_query = getattr(lexical, "analyze_query", None)

    def terms(self, text: str) -> set[str]:
        return set(analyze(text, self.decompounder))

    def question_terms(self, question: str) -> list[str]:
        found = self._analyze_query(question) if self._analyze_query is not None else analyze(question)
        return list(dict.fromkeys(found))

    def idf(self, term: str) -> float:
        """BM25 IDF; a term the index does not know counts as rare as a term of one chunk."""
        if self.n_docs <= 0 or self._indptr is None:
            return 1.0
        index = self.vocabulary.get(term)
        df = 1 if index is None else max(1, int(self._indptr[index + 1]) - int(self._indptr[index]))
        return math.log(1.0 + (self.n_docs - df + 0.5) / (df + 0.5))


def _names(text: str) -> set[str]:
    """Folded capitalised words not at a sentence start (German nouns and names) and numbers."""
    return {fold(m.group(1)).replace(".", "") for m in _NAME.finditer(text)}


@dataclass
class Features:
    """The candidates' feature rows and the question-level values answerability needs beside them."""

    rows: np.ndarray  # (n sentences, len(SENTENCE_FEATURES))
    # How much of the question the chunks read cover together: a question about something the archive never
    # mentions leaves its names and rare terms uncovered, however similar the topic.
    read_soft_coverage: float = 0.0  # IDF-weighted character-trigram coverage of the question terms
    read_names: float = 1.0  # share of the question's names and numbers found (1 without any)


class EvidenceScorer:
    """Features of the candidate sentences for one question (all inputs computed once per request)."""

    def __init__(self, stats: TermStats) -> None:
        self.stats = stats

    def features(self, question: str, hits: list[SearchHit], sentences: list[Sentence],
                 cosines: np.ndarray) -> Features:
        q_terms = self.stats.question_terms(question)
        weights = np.array([self.stats.idf(t) for t in q_terms]) if q_terms else np.zeros(0)
        total = float(weights.sum()) or 1.0
        rare = weights >= np.median(weights) if q_terms else np.zeros(0, dtype=bool)
        q_names = _names(question)
        expected = answer_type(question)
        top_score = max((h.score for h in hits), default=0.0) or 1.0
        order = np.argsort(-cosines)
        cosine_rank = np.empty(len(sentences))
        cosine_rank[order] = np.arange(len(sentences))
        best_cosine = float(cosines.max()) if len(cosines) else 0.0
        rows = np.zeros((len(sentences), len(SENTENCE_FEATURES)), dtype=np.float64)
        read_soft = np.zeros(len(q_terms))  # best soft match of each question term in any sentence read
        read_names: set[str] = set()
        for i, sentence in enumerate(sentences):
            text = sentence.text
            s_terms = self.stats.terms(text)
            exact = np.array([t in s_terms for t in q_terms], dtype=bool)
            soft = np.array([soft_match(t, s_terms) if s_terms else 0.0 for t in q_terms])
            read_soft = np.maximum(read_soft, soft) if q_terms else read_soft
            names_here = _names(text) | {fold(w) for w in re.findall(r"\w+", text)}
            read_names |= names_here
            neighbours = [cosines[j] for j in (i - 1, i + 1) if 0 <= j < len(sentences)
                          and sentences[j].hit_rank == sentence.hit_rank]
            has_number = bool(_NUMBER.search(text))
            has_date = bool(_YEAR.search(text) or _DAY_DATE.search(text) or _MONTH.search(text))
            row = rows[i]
            row[_COLUMN["cosine"]] = cosines[i]
            row[_COLUMN["cosine_gap"]] = cosines[i] - best_cosine
            row[_COLUMN["cosine_rank"]] = 1.0 / (1.0 + cosine_rank[i])
            row[_COLUMN["neighbour_cosine"]] = max(neighbours, default=cosines[i]) - cosines[i]
            row[_COLUMN["overlap_idf"]] = float(weights[exact].sum()) / total if q_terms else 0.0
            row[_COLUMN["overlap_soft"]] = float((weights * soft).sum()) / total if q_terms else 0.0
            row[_COLUMN["overlap_rare"]] = float(exact[rare].mean()) if rare.any() else 0.0
            row[_COLUMN["overlap_names"]] = (sum(1 for n in q_names if n in names_here) / len(q_names)
                                             if q_names else 0.0)
            row[_COLUMN["question_has_names"]] = float(bool(q_names))
            row[_COLUMN["novelty"]] = len(s_terms - set(q_terms)) / (len(s_terms) or 1)
            row[_COLUMN["number_match"]] = float(expected == "number" and (has_number or bool(_AMOUNT.search(text))))
            row[_COLUMN["number_missing"]] = float(expected == "number" and not has_number)
            row[_COLUMN["date_match"]] = float(expected == "date" and (has_date or has_number))
            row[_COLUMN["person_match"]] = float(expected == "person" and bool(_PERSON.search(text)))
            row[_COLUMN["place_match"]] = float(expected == "place" and bool(_PLACE.search(text)))
            row[_COLUMN["reason_match"]] = float(expected == "reason" and bool(_REASON.search(text)))
            row[_COLUMN["hit_rank"]] = 1.0 / (1.0 + sentence.hit_rank)
            row[_COLUMN["hit_score"]] = hits[sentence.hit_rank].score / top_score if top_score > 0 else 0.0
            row[_COLUMN["position"]] = 1.0 / (1.0 + sentence.position)
            row[_COLUMN["length"]] = math.log(len(text)) / 6.0
            row[_COLUMN["short"]] = float(len(text) < 40)
            row[_COLUMN["moderation"]] = float(bool(_MODERATION.search(text)))
            row[_COLUMN["is_question"]] = float(text.rstrip().endswith("?"))
            row[_COLUMN["list_item"]] = float(bool(LIST_MARKER.match(text)))
        return Features(
            rows,
            read_soft_coverage=float((weights * read_soft).sum()) / total if q_terms else 0.0,
            read_names=sum(1 for n in q_names if n in read_names) / len(q_names) if q_names else 1.0,
        )


def result_features(features: Features, scores: np.ndarray) -> np.ndarray:
    """One row of RESULT_FEATURES for the whole result, from the sentence features and the sentence scores."""
    rows = features.rows
    order = np.argsort(-scores)
    best = order[0]
    margin = float(scores[best] - scores[order[1]]) if len(order) > 1 else 5.0
    cosines = np.sort(rows[:, _COLUMN["cosine"]])[::-1]
    type_columns = [_COLUMN[c] for c in ("number_match", "date_match", "person_match", "place_match",
                                         "reason_match")]
    type_match = float(rows[best, type_columns].max() - rows[best, _COLUMN["number_missing"]])
    return np.array([float(cosines[0]), float(cosines[:3].mean()), margin, type_match, features.read_soft_coverage,
                     features.read_names])


@dataclass
class LinearModel:
    """A logistic model stored as versioned JSON: score = x·w + b, probability = sigmoid(score). `threshold` is the
    probability above which the answerability model answers (unused by the sentence model); `caution` the one below
    which its answer says that the sources may not answer exactly what was asked (None: never)."""

    features: tuple[str, ...]
    weights: np.ndarray
    bias: float
    threshold: float = 0.5
    caution: float | None = None
    version: int = MODEL_VERSION
    info: dict[str, Any] = field(default_factory=dict)  # what it was trained on and what it measured

    def score(self, rows: np.ndarray) -> np.ndarray:
        return rows @ self.weights + self.bias

    def probability(self, rows: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.score(rows)))

    def to_json(self) -> str:
        return json.dumps({
            "version": self.version, "features": list(self.features), "weights": [round(float(w), 6) for w in
                                                                                   self.weights],
            "bias": round(self.bias, 6), "threshold": round(self.threshold, 6),
            **({"caution": round(self.caution, 6)} if self.caution is not None else {}), "info": self.info,
        }, ensure_ascii=False, indent=1) + "\n"

    @classmethod
    def load(cls, path: Traversable, expected: tuple[str, ...]) -> "LinearModel":
        data = json.loads(path.read_text(encoding="utf-8"))
        if tuple(data["features"]) != expected or int(data["version"]) != MODEL_VERSION:
            raise ValueError(f"{path}: Modell passt nicht zu den Merkmalen dieser Version (neu trainieren: "
                             "bench/train_evidence.py)")
        return cls(tuple(data["features"]), np.asarray(data["weights"], dtype=np.float64), float(data["bias"]),
                   float(data.get("threshold", 0.5)),
                   float(data["caution"]) if data.get("caution") is not None else None, int(data["version"]),
                   data.get("info", {}))


def load_sentence_model() -> LinearModel:
    return LinearModel.load(SENTENCE_MODEL_FILE, SENTENCE_FEATURES)


def load_answerability_model() -> LinearModel:
    return LinearModel.load(ANSWERABILITY_MODEL_FILE, RESULT_FEATURES)


_HIGHLIGHT = {
    "number": (_AMOUNT, _NUMBER),
    "date": (_DAY_DATE, _YEAR, _MONTH),
    "person": (_PERSON,),
    "place": (_PLACE,),
}


def answer_sentences(scores: np.ndarray, chunks: list[int]) -> list[int]:
    """Indices of the sentences an answer cites: the best first, then up to EXTRA_SENTENCES more within
    EXTRA_MARGIN of it, at most PER_CHUNK from one chunk (so a second source that answers a follow-up is not
    crowded out by neighbours of the best sentence; gold answer-in-cited unchanged at 0.518)."""
    order = [int(i) for i in np.argsort(-scores)]
    chosen = [order[0]]
    for index in order[1:]:
        if len(chosen) > EXTRA_SENTENCES or scores[index] < scores[order[0]] - EXTRA_MARGIN:
            break
        if sum(1 for i in chosen if chunks[i] == chunks[index]) < PER_CHUNK:
            chosen.append(index)
    return chosen


def highlight_spans(question: str, text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Character spans within text[start:end] of what answers the question's type: amounts and numbers for "wie
    viele/wie hoch", dates for "wann", names for "wer", places for "wo". Overlapping spans keep the longest."""
    patterns = _HIGHLIGHT.get(answer_type(question), ())
    spans: list[tuple[int, int]] = []
    for pattern in patterns:
        for match in pattern.finditer(text, start, end):
            s, e = match.span()
            if pattern is _PLACE:  # the preposition is no part of the place
                s = e - len(match.group(0).split()[-1])
            if not any(s < other_end and other_start < e for other_start, other_end in spans):
                spans.append((s, e))
    return sorted(spans)
