"""Questions grouped by meaning: paraphrases and follow-ups of the same need end up in one group.

Two questions are close when their embeddings are, and when they find the same passages: the similarity is the mean
of the cosine of the question embeddings and the cosine of their retrieved chunks (the top 10, weighted 1/rank).
The small embedding model alone separates needs poorly (paraphrases sharing few words score like different needs
sharing words); what a question finds in the archive adds the meaning of the passages (measured on
eval/question_groups, test split: pairwise F1 0.41 with embeddings alone, 0.65 with both). Agglomerative clustering
(scikit-learn, average linkage) on 1 − similarity, cut at a distance threshold chosen on the dev split of the
labelled set and reported on its test split by `stadtretter eval` (pairwise precision, recall, F1).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from sklearn.cluster import AgglomerativeClustering

from core.embeddings import StadtretterEmbeddings
from core.vocabulary import PHASE_KEYS
from services.feedback import Feedback, FeedbackStore
from retriever.search import SearchService
from services.question_log import RETRIEVED, LoggedQuestion, QuestionLog

MAX_GROUPED = 5000  # newest questions grouped at once (the clustering is quadratic in memory)
NO_PHASE = "ohne"  # questions without an answer phase (abstained)
EMBEDDING_SHARE = 0.5  # of the similarity; the rest from the retrieved chunks (chosen on the dev split)


@dataclass
class QuestionGroup:
    count: int
    first_asked: datetime
    last_asked: datetime
    example: str  # the question closest to the group's centre
    questions: list[str]  # distinct wordings, newest first (at most 10)
    phases: dict[str, int]


@dataclass
class MonthTopics:
    month: str  # YYYY-MM
    phase: str  # E | K | T | übergreifend | ohne
    questions: int
    topics: list[QuestionGroup]


def retrieval_matrix(retrieved: Sequence[Sequence[str]]) -> np.ndarray:
    """Rows: the chunks each question retrieved, weighted 1/rank, normalised (rows without any stay zero)."""
    columns: dict[str, int] = {}
    for ids in retrieved:
        for chunk_id in ids:
            columns.setdefault(chunk_id, len(columns))
    matrix = np.zeros((len(retrieved), max(1, len(columns))))
    for row, ids in enumerate(retrieved):
        for rank, chunk_id in enumerate(ids):
            matrix[row, columns[chunk_id]] += 1.0 / (rank + 1)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def similarity(vectors: np.ndarray, retrieved: Sequence[Sequence[str]] | None) -> np.ndarray:
    unit = np.asarray(vectors, dtype=np.float64)
    unit = unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    meaning = unit @ unit.T
    if retrieved is None:
        return meaning
    found = retrieval_matrix(retrieved)
    return EMBEDDING_SHARE * meaning + (1 - EMBEDDING_SHARE) * (found @ found.T)


def group_labels(vectors: np.ndarray, threshold: float,
                 retrieved: Sequence[Sequence[str]] | None = None) -> np.ndarray:
    """A group number per row: rows closer than `threshold` (average distance 1 − similarity) share a group."""
    if len(vectors) == 0:
        return np.empty(0, dtype=int)
    if len(vectors) == 1:
        return np.zeros(1, dtype=int)
    distance = np.clip(1 - similarity(vectors, retrieved), 0, None)
    np.fill_diagonal(distance, 0)
    clustering = AgglomerativeClustering(n_clusters=None, distance_threshold=threshold, metric="precomputed",
                                         linkage="average")
    return clustering.fit_predict(distance)


def group_questions(entries: Sequence[LoggedQuestion], vectors: np.ndarray, threshold: float) -> list[QuestionGroup]:
    """Groups, largest (then most recent) first."""
    entries, vectors = list(entries)[-MAX_GROUPED:], vectors[-MAX_GROUPED:]
    members: dict[int, list[int]] = defaultdict(list)
    for row, label in enumerate(group_labels(vectors, threshold, [entry.retrieved for entry in entries])):
        members[int(label)].append(row)
    groups: list[QuestionGroup] = []
    for rows in members.values():
        centre = vectors[rows].mean(axis=0)
        example = entries[rows[int(np.argmax(vectors[rows] @ centre))]].question
        newest_first = sorted(rows, key=lambda r: entries[r].asked_at, reverse=True)
        phases: dict[str, int] = defaultdict(int)
        for r in rows:
            phases[entries[r].phase or NO_PHASE] += 1
        groups.append(QuestionGroup(
            count=len(rows),
            first_asked=min(entries[r].asked_at for r in rows),
            last_asked=max(entries[r].asked_at for r in rows),
            example=example,
            questions=list(dict.fromkeys(entries[r].question for r in newest_first))[:10],
            phases=dict(phases),
        ))
    groups.sort(key=lambda g: (-g.count, -g.last_asked.timestamp()))
    return groups


def topics_by_month(entries: Sequence[LoggedQuestion], vectors: np.ndarray, threshold: float,
                    top: int = 5) -> list[MonthTopics]:
    """Most-asked topics (meaning groups) per month and answer phase, newest month first."""
    cells: dict[tuple[str, str], list[int]] = defaultdict(list)
    for row, entry in enumerate(entries):
        cells[(entry.asked_at.strftime("%Y-%m"), entry.phase or NO_PHASE)].append(row)
    order = {phase: i for i, phase in enumerate((*PHASE_KEYS, NO_PHASE))}
    result: list[MonthTopics] = []
    for (month, phase), rows in sorted(cells.items(), key=lambda item: (item[0][0], -order[item[0][1]]),
                                       reverse=True):
        groups = group_questions([entries[r] for r in rows], vectors[rows], threshold)
        result.append(MonthTopics(month, phase, len(rows), groups[:top]))
    return result


# --- quality: pairwise precision / recall / F1 on a labelled set -------------------------------------------------


@dataclass
class LabelledQuestion:
    group: str
    question: str
    retrieved: list[str] = field(default_factory=list)


@dataclass
class GroupingScore:
    threshold: float
    precision: float
    recall: float
    f1: float
    questions: int
    groups: int


def load_labelled(folder: Path) -> list[LabelledQuestion]:
    items: list[LabelledQuestion] = []
    for path in sorted(folder.glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                items.append(LabelledQuestion(str(data["group"]), str(data["question"])))
            except (ValueError, KeyError) as exc:
                raise ValueError(f"{path.name}, Zeile {number}: kein gültiger Eintrag ({exc})") from exc
    return items


def split_dev_test(items: Sequence[LabelledQuestion]) -> tuple[list[LabelledQuestion], list[LabelledQuestion]]:
    """By group, alternating in sorted order: test groups are never seen when choosing the threshold."""
    groups = sorted({item.group for item in items})
    dev_groups = set(groups[::2])
    return [i for i in items if i.group in dev_groups], [i for i in items if i.group not in dev_groups]


def pairwise_scores(truth: Sequence[str], predicted: Sequence[int]) -> tuple[float, float, float]:
    n = len(truth)
    same_true = np.array([[truth[i] == truth[j] for j in range(n)] for i in range(n)])
    same_pred = np.equal.outer(np.asarray(predicted), np.asarray(predicted))
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    true_pairs, pred_pairs = (same_true & upper).sum(), (same_pred & upper).sum()
    both = (same_true & same_pred & upper).sum()
    precision = float(both / pred_pairs) if pred_pairs else 0.0
    recall = float(both / true_pairs) if true_pairs else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def score(items: Sequence[LabelledQuestion], vectors: np.ndarray, threshold: float) -> GroupingScore:
    labels = group_labels(vectors, threshold, [i.retrieved for i in items])
    precision, recall, f1 = pairwise_scores([i.group for i in items], labels)
    return GroupingScore(round(threshold, 3), round(precision, 3), round(recall, 3), round(f1, 3), len(items),
                         len({i.group for i in items}))


def evaluate_grouping(items: Sequence[LabelledQuestion], embeddings: StadtretterEmbeddings,
                      search: SearchService | None = None,
                      thresholds: Sequence[float] = tuple(np.arange(0.05, 1.2, 0.01))
                      ) -> tuple[GroupingScore, GroupingScore]:
    """(best score on the dev split, score on the test split at that threshold). With `search` (an index of the
    sample corpus) each question also carries what it retrieves, as logged questions do."""
    dev, test = split_dev_test(items)
    dev_vectors = embeddings.embed_queries([i.question for i in dev])
    test_vectors = embeddings.embed_queries([i.question for i in test])
    if search is not None:
        for item, vector in [*zip(dev, dev_vectors), *zip(test, test_vectors)]:
            item.retrieved = [hit.chunk_id for hit in search.search(item.question, k=RETRIEVED, vector=vector)]
    best = max((score(dev, dev_vectors, float(t)) for t in thresholds), key=lambda s: (s.f1, -s.threshold))
    return best, score(test, test_vectors, best.threshold)


class QuestionReport:
    """The trainer's view of the question log: unanswered needs, needs answered only with a caution, 👎-rated
    answers, most-asked topics."""

    def __init__(self, log: QuestionLog, feedback: FeedbackStore, threshold: float) -> None:
        self.log = log
        self.feedback = feedback
        self.threshold = threshold

    def unanswered(self, since: datetime | None = None, until: datetime | None = None) -> list[QuestionGroup]:
        entries, vectors = self.log.vectors(abstained=True, since=since, until=until)
        return group_questions(entries, vectors, self.threshold)

    def uncertain(self, since: datetime | None = None, until: datetime | None = None) -> list[QuestionGroup]:
        """Needs answered only with a caution: the archive says something near them, perhaps not what was asked —
        where a trainer checks the material before a participant relies on it."""
        entries, vectors = self.log.vectors(abstained=False, uncertain=True, since=since, until=until)
        return group_questions(entries, vectors, self.threshold)

    def topics(self, since: datetime | None = None, until: datetime | None = None) -> list[MonthTopics]:
        entries, vectors = self.log.vectors(since=since, until=until)
        return topics_by_month(entries, vectors, self.threshold)

    def downvoted(self, limit: int = 100) -> list[Feedback]:
        entries, _ = self.feedback.list(limit, rating="down")
        return entries
