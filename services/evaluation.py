"""`stadtretter eval`: retrieval, answer, abstention, locator and phase quality as numbers.

Each evaluation set is ingested by the real pipeline into its own cached data dir under .eval-cache/ (keyed by
set and embedding model); the pipeline's incremental ingestion re-embeds only what changed.
"""

from __future__ import annotations

import math
import re
import statistics
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from retriever.models import Answer, Citation, SearchHit
from retriever.phase_training import TrainingData, VectorCache, cache_path
from services.benchmarks import EvalSet, Question
from core.embeddings import model_key
from services.container import Services
from core.settings import Settings
from core.vocabulary import PHASE_KEYS

CUTOFFS = (1, 3, 5, 10)


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("„", '"').replace("“", '"').replace("”", '"').replace("–", "-").replace("‚", "'").replace("‘", "'").replace("’", "'")
    return re.sub(r"\s+", " ", text).strip()


def eval_settings(base: Settings, eval_set: EvalSet, cache_root: Path) -> Settings:
    return base.model_copy(update={
        "data_dir": cache_root / f"{eval_set.name}-{model_key(base.embedding)}",
        "corpus_dir": eval_set.corpus_dir,
        "chroma_url": None,
        "collection": "eval",
    })


def doc_key(metadata: dict[str, Any], eval_set: EvalSet) -> str:
    path = Path(str(metadata.get("path", "")))
    if eval_set.source_key == "stem":
        return path.stem
    try:
        return path.resolve().relative_to(eval_set.corpus_dir.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def ranked_docs(hits: list[SearchHit], eval_set: EvalSet) -> list[str]:
    """Document ranking from a chunk ranking: a document's rank is that of its first chunk."""
    seen: list[str] = []
    for hit in hits:
        key = doc_key(hit.metadata, eval_set)
        if key not in seen:
            seen.append(key)
    return seen


def _parse_time(value: str) -> float:
    parts = [float(p) for p in value.replace(",", ".").split(":")]
    while len(parts) < 3:
        parts.insert(0, 0.0)
    return parts[0] * 3600 + parts[1] * 60 + parts[2]


def locator_matches(citation: Citation, locator: dict[str, Any]) -> bool:
    if "page" in locator:
        return citation.page == int(locator["page"])
    if "start" in locator:
        if citation.start is None:
            return False
        gold = _parse_time(str(locator["start"]))
        return float(citation.start) - 1.0 <= gold <= float(citation.end if citation.end is not None else citation.start) + 1.0
    if "section" in locator:
        wanted = normalise(str(locator["section"]))
        sections = [normalise(part) for part in (citation.section or "").split("›")] if citation.section else []
        return wanted in sections or (not sections and wanted == normalise(citation.title))
    return False


@dataclass
class QuestionResult:
    question: Question
    docs: list[str]
    rank: int | None  # 1-based rank of the first gold document, None if not in the top 10
    answer_in_top5: bool | None = None
    answer: Answer | None = None
    answer_hit: bool | None = None
    answer_in_first: bool | None = None  # the answer phrase is in the first cited sentence
    locator_ok: bool | None = None
    answer_chunk_cited: bool | None = None  # a cited chunk holds the answer phrase (the phase is read from it)
    phase: str | None = None
    seconds: float = 0.0


@dataclass
class Report:
    name: str
    questions: int
    metrics: dict[str, float]
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)
    worst: list[dict[str, Any]] = field(default_factory=list)
    ingest_seconds: float = 0.0
    eval_seconds: float = 0.0
    ingest_failed: list[dict[str, str]] = field(default_factory=list)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


def auc(positives: list[float], negatives: list[float]) -> float:
    """Probability that a random answerable question scores above a random unanswerable one (ties count half)."""
    if not positives or not negatives:
        return 0.0
    pos, neg = np.asarray(positives, dtype=float), np.asarray(negatives, dtype=float)
    above = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(above / (len(pos) * len(neg)))


def recall_at_false_abstention(positives: list[float], negatives: list[float], limit: float = 0.05) -> float:
    """Share of unanswerable questions caught by the best threshold that abstains on at most `limit` of the
    answerable ones (a question is refused when its score is below the threshold)."""
    if not positives or not negatives:
        return 0.0
    ordered = sorted(positives)
    allowed = int(math.floor(limit * len(ordered)))  # answerable questions that may fall below the threshold
    threshold = ordered[allowed]  # refuse strictly below: at most `allowed` answerable ones are refused
    return sum(1 for score in negatives if score < threshold) / len(negatives)


_MARKER = re.compile(r"\s*\[\d+\]")


def first_cited_sentence(answer: Answer) -> str:
    """The answer's text up to its first citation marker: the answering sentence."""
    match = _MARKER.search(answer.answer)
    return answer.answer[: match.start()] if match else answer.answer


def retrieval_metrics(results: list[QuestionResult]) -> dict[str, float]:
    answerable = [r for r in results if r.question.answerable]
    n = len(answerable) or 1
    metrics = {f"hit@{k}": sum(1 for r in answerable if r.rank and r.rank <= k) / n for k in CUTOFFS}
    metrics["mrr"] = sum(1.0 / r.rank for r in answerable if r.rank) / n
    metrics["ndcg@10"] = sum(1.0 / math.log2(r.rank + 1) for r in answerable if r.rank) / n
    with_phrase = [r for r in answerable if r.answer_in_top5 is not None]
    if with_phrase:
        metrics["answer_in_top5"] = sum(1 for r in with_phrase if r.answer_in_top5) / len(with_phrase)
    return metrics


def evaluate(
    services: Services, eval_set: EvalSet, answers: bool = True, phases: bool = True, progress=None  # noqa: ANN001
) -> Report:
    started = time.perf_counter()
    ingest = services.pipeline().run([eval_set.corpus_dir], prune=True)
    ingest_seconds = time.perf_counter() - started
    tagger = _tagger(services) if phases else None
    results: list[QuestionResult] = []
    for question in eval_set.questions:
        t0 = time.perf_counter()
        vector = services.answerer.query_vector(question.question)
        # The ranking answers show: hybrid search, then the evidence rerank of the first hits.
        hits = services.answerer.rerank(question.question, services.search.search(question.question, k=10, vector=vector))
        docs = ranked_docs(hits, eval_set)
        rank = next((i + 1 for i, doc in enumerate(docs) if doc in question.sources), None)
        result = QuestionResult(question, docs, rank)
        if question.answer_phrase:
            phrase = normalise(question.answer_phrase)
            result.answer_in_top5 = any(phrase in normalise(hit.text) for hit in hits[:5])
        if answers:
            answer = services.answerer.run(question.question, hits=hits[: services.settings.top_k])
            if tagger is not None:
                answer.phase = tagger.tag_answer(question.question, answer.citations, vector)
            result.answer = answer
            if question.answer_phrase and question.answerable:
                phrase = normalise(question.answer_phrase)
                containing = [c for c in answer.citations if phrase in normalise(c.snippet)] if not answer.abstained else []
                result.answer_hit = bool(containing)
                result.answer_in_first = not answer.abstained and phrase in normalise(first_cited_sentence(answer))
                cited = {c.chunk_id for c in answer.citations}
                result.answer_chunk_cited = any(phrase in normalise(h.text) for h in hits if h.chunk_id in cited)
                if containing and question.locator:
                    result.locator_ok = any(locator_matches(c, question.locator) for c in containing)
            result.phase = answer.phase.phase if answer.phase else None
        result.seconds = time.perf_counter() - t0
        results.append(result)
        if progress:
            progress()
    metrics = retrieval_metrics(results)
    confusion: dict[str, dict[str, int]] = {}
    if answers:
        answerable = [r for r in results if r.question.answerable]
        unanswerable = [r for r in results if not r.question.answerable]
        with_phrase = [r for r in answerable if r.answer_hit is not None]
        if with_phrase:
            metrics["answer_hit"] = sum(1 for r in with_phrase if r.answer_hit) / len(with_phrase)
        located = [r for r in answerable if r.locator_ok is not None]
        if located:
            metrics["locator_accuracy"] = sum(1 for r in located if r.locator_ok) / len(located)
        first = [r for r in answerable if r.answer_in_first is not None]
        if first:
            metrics["answer_in_first"] = sum(1 for r in first if r.answer_in_first) / len(first)
        abstained = [r for r in results if r.answer and r.answer.abstained]
        if unanswerable:
            correct = sum(1 for r in abstained if not r.question.answerable)
            metrics["abstention_precision"] = correct / len(abstained) if abstained else 0.0
            metrics["abstention_recall"] = correct / len(unanswerable)
            metrics["false_abstention_rate"] = sum(1 for r in answerable if r.answer and r.answer.abstained) / (len(answerable) or 1)
            # Answered with a caution ("Bitte die zitierte Stelle prüfen"): of the answerable questions a low
            # share is wanted, of the unanswerable ones every caution is better than a plain answer.
            metrics["caution_rate"] = sum(1 for r in answerable if r.answer and r.answer.uncertain) / (len(answerable) or 1)
            metrics["unanswerable_caution_rate"] = sum(1 for r in unanswerable if r.answer and r.answer.uncertain) / len(unanswerable)
            positives = [_answerability(r.answer) for r in answerable]
            negatives = [_answerability(r.answer) for r in unanswerable]
            metrics["abstention_auc"] = auc(positives, negatives)
            metrics["abstention_recall_at_5pct"] = recall_at_false_abstention(positives, negatives)
        phased = [r for r in answerable if r.question.phase and r.phase]
        if phased:
            metrics["phase_accuracy"] = sum(1 for r in phased if r.phase == r.question.phase) / len(phased)
            # The answer's phase is read from the cited chunks: split by whether they hold the answer, to tell
            # tagging errors from retrieval errors.
            for key, cited in (("phase_accuracy_answer_cited", True), ("phase_accuracy_answer_not_cited", False)):
                group = [r for r in phased if r.answer_chunk_cited is cited]
                if group:
                    metrics[key] = sum(1 for r in group if r.phase == r.question.phase) / len(group)
                    metrics[key.replace("phase_accuracy", "questions")] = len(group)
            for r in phased:
                row = confusion.setdefault(r.question.phase, {})
                row[r.phase] = row.get(r.phase, 0) + 1
    latencies = [r.seconds * 1000 for r in results]
    metrics["latency_p50_ms"] = statistics.median(latencies) if latencies else 0.0
    metrics["latency_p95_ms"] = _percentile(latencies, 0.95)
    worst = sorted(
        (r for r in results if r.question.answerable),
        key=lambda r: (r.rank or 99, not r.answer_hit if r.answer_hit is not None else False),
        reverse=True,
    )[:10]
    return Report(
        eval_set.name, len(results), {k: round(v, 4) for k, v in metrics.items()}, confusion,
        [
            {"id": r.question.id, "question": r.question.question, "gold": r.question.sources, "rank": r.rank,
             "retrieved": r.docs[:3], "answer_hit": r.answer_hit,
             "abstained": bool(r.answer and r.answer.abstained)}
            for r in worst if (r.rank or 99) > 1 or r.answer_hit is False
        ],
        ingest_seconds=round(ingest_seconds, 1), eval_seconds=round(time.perf_counter() - started - ingest_seconds, 1),
        ingest_failed=[{"path": f.path, "reason": f.reason} for f in ingest.failed],
    )


def _answerability(answer: Answer | None) -> float:
    """The answer's answerability probability; a question without any hit has none and counts as refused."""
    return float(answer.answerability) if answer is not None and answer.answerability is not None else 0.0


def _tagger(services: Services):  # noqa: ANN202
    try:
        return services.phase_tagger
    except (ImportError, AttributeError):
        return None


def phase_confusion(gold: list[str], predicted: list[str]) -> dict[str, dict[str, int]]:
    """Rows: gold label, columns: predicted label (every label present, zeros included)."""
    table = {g: {p: 0 for p in PHASE_KEYS} for g in PHASE_KEYS}
    for g, p in zip(gold, predicted):
        table.setdefault(g, {}).setdefault(p, 0)
        table[g][p] += 1
    return table


def macro_f1(gold: list[str], predicted: list[str]) -> float:
    """Mean F1 over the phase labels that occur in gold or predictions."""
    f1s = []
    for label in PHASE_KEYS:
        tp = sum(1 for g, p in zip(gold, predicted) if g == p == label)
        fp = sum(1 for g, p in zip(gold, predicted) if p == label and g != label)
        fn = sum(1 for g, p in zip(gold, predicted) if g == label and p != label)
        if tp + fp + fn:
            f1s.append(2 * tp / (2 * tp + fp + fn))
    return sum(f1s) / len(f1s) if f1s else 0.0


def accuracy(gold: list[str], predicted: list[str]) -> float:
    return sum(1 for g, p in zip(gold, predicted) if g == p) / (len(gold) or 1)


def phase_passage_report(services: Services, passages: list[dict], cache_dir: Path) -> dict[str, Any] | None:
    """Macro-F1 of the primary phase on the hand-labelled passages, cross-validated by document: the trained models
    (classifier, term model) that tag a passage never saw a passage of its document. A passage is tagged as
    ingestion tags a chunk: embedded with its title and section, read with its section. Vectors are cached in
    `cache_dir`."""
    tagger = _tagger(services)
    if tagger is None or not passages:
        return None
    data = TrainingData(VectorCache(services.embeddings, cache_path(cache_dir, services.embeddings)), passages,
                        tagger.definitions)
    predicted = data.cross_validate(tagger.with_models)
    gold = [p["primary"] for p in passages]
    return {
        "passages": len(passages), "documents": len(set(data.groups)), "validation": "leave-one-document-out",
        "macro_f1": round(macro_f1(gold, predicted), 4), "accuracy": round(accuracy(gold, predicted), 4),
        "confusion": phase_confusion(gold, predicted),
    }
