"""Train the evidence models (answer-sentence scorer, answerability) and print cross-set figures only.

    flock /work/notes/heavy.lock .venv/bin/python bench/train_evidence.py [--write] [--germanquad 300]

Data (never the paraphrase set): XQuAD-de (answer spans mark the positive sentence), GermanQuAD (question–passage
pairs), the gold set (answer phrases, unanswerable questions). Each set is ingested by the real pipeline into
.eval-cache/ (as `stadtretter eval` does); for every question the answer path runs as in the product (hybrid search,
evidence rerank, the sentences of the chunks the answer reads, `ExtractiveAnswerer.evidence`). Synthetic
unanswerables: each answerable question asked again with its gold document removed from the results (the nearest
other text is the hard negative); with --missing-detail also each result again without the sentences holding the
answer phrase (passage kept, detail missing). Sentence vectors are cached in .eval-cache/evidence-vectors-*.npz, the
chunks read, their sentences and cosines in .eval-cache/evidence-raw-*.pkl (--fresh searches again); the feature
rows are computed from these on every run, so a feature variant needs no new search.

Figures, each trained without the set it is measured on:
- XQuAD-de: answer span in the first (best) sentence, sentence model trained on gold (+ nothing else with spans);
- GermanQuAD, gold passage removed: answerability AUC, models trained on XQuAD + gold;
- gold, leave-one-group-out by file group (a1/a2/c/t1/t2): answer in the cited sentences, in the first one,
  abstention AUC and recall at <= 5 % false abstention, models trained on XQuAD + GermanQuAD + the other groups.
The gold set's weight in the answerability fit is chosen by cross-validation without the measured set (nested: the
mean held-out AUC over the remaining gold groups and the public sets with the gold passage removed).
--write stores the models trained on everything in retriever/calibration/evidence_*.json; --boosted compares
gradient-boosted trees in place of both logistic models (figures only); --bounds fits on gold and measures on gold
(in-sample: how far these features can go at all). --write also sets the caution level (CAUTION_SHARE).
"""

from __future__ import annotations

import argparse
import pickle
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.settings import Settings  # noqa: E402
from retriever.evidence import (  # noqa: E402
    RESULT_FEATURES, SENTENCE_FEATURES, EvidenceScorer, Features, LinearModel, Sentence, TermStats, answer_sentences,
    result_features,
)
from retriever.models import SearchHit  # noqa: E402
from services.benchmarks import EvalSet, load_germanquad, load_gold, load_xquad  # noqa: E402
from services.container import Services  # noqa: E402
from services.evaluation import auc, doc_key, eval_settings, normalise, recall_at_false_abstention  # noqa: E402

CACHE = REPO / ".eval-cache"
CALIBRATION = REPO / "retriever" / "calibration"  # the source tree, not the installed package
MAX_FALSE_ABSTENTION = 0.05
# The caution level: at most this share of each training set's answerable results is answered with a caution.
CAUTION_SHARE = 0.2
# Weights of the gold set in the answerability fit tried by cross-validation (1 = as much as each public set).
GOLD_WEIGHTS = (1, 2, 4, 8, 16, 32)
BOOSTED = False  # --boosted: gradient-boosted trees in place of both logistic models (comparison only)
HIT_RANK = SENTENCE_FEATURES.index("hit_rank")


@dataclass
class Raw:
    """What the answer path saw for one question and one result list (full, or with the gold document removed):
    enough to compute any feature variant again without searching or embedding."""

    set: str
    group: str
    id: str
    question: str
    answerable: bool  # the sources of this result answer the question (False: unanswerable or gold removed)
    synthetic: bool  # gold removed
    read: list[SearchHit]  # the chunks the answer reads
    sentences: list[Sentence]
    cosines: np.ndarray
    labels: np.ndarray | None  # per sentence: holds the answer phrase (None without a phrase)
    gold_read: bool  # a chunk of the gold document is among the chunks the answer reads


@dataclass
class Case:
    """One question asked against one result list, as feature rows."""

    set: str
    group: str
    id: str
    answerable: bool
    synthetic: bool
    features: Features
    labels: np.ndarray | None
    gold_read: bool
    missing_detail: bool = False  # the answer sentences were removed, the passage kept


def collect(eval_set: EvalSet, limit: int | None, seed: int = 13) -> list[Raw]:
    services = Services(eval_settings(Settings(), eval_set, CACHE))
    services.pipeline().run([eval_set.corpus_dir], prune=True)
    answerer = services.answerer
    answerer.cache_size = 10**7
    vector_file = CACHE / f"evidence-vectors-{eval_set.name}.npz"
    if vector_file.is_file():
        stored = np.load(vector_file, allow_pickle=True)
        answerer._cache.update(zip(stored["texts"].tolist(), stored["vectors"]))
    questions = list(eval_set.questions)
    if limit and len(questions) > limit:
        questions = random.Random(seed).sample(questions, limit)
    k = services.settings.top_k
    raws: list[Raw] = []
    started = time.perf_counter()
    for number, question in enumerate(questions, 1):
        vector = answerer.query_vector(question.question)
        pool = services.search.search(question.question, k=k + 8, vector=vector)
        variants = [(question.answerable, False, pool[:k])]
        if question.answerable:
            removed = [hit for hit in pool if doc_key(hit.metadata, eval_set) not in question.sources][:k]
            variants.append((False, True, removed))
        for answerable, synthetic, hits in variants:
            hits = answerer.rerank(question.question, hits)
            sentences, _ = answerer.evidence(question.question, hits)  # the product's candidates and cosines
            if not sentences:
                continue
            read = hits[: answerer.chunks_to_read]
            cosines = np.array([s.cosine for s in sentences])
            labels = None
            if question.answer_phrase and answerable:
                phrase = normalise(question.answer_phrase)
                labels = np.array([phrase in normalise(s.text) for s in sentences])
            gold_read = any(doc_key(h.metadata, eval_set) in question.sources for h in read)
            group = question.id.split("-")[0] if eval_set.name == "gold" else eval_set.name
            raws.append(Raw(eval_set.name, group, question.id, question.question, answerable, synthetic, read,
                            sentences, cosines, labels, gold_read))
        if number % 100 == 0 or number == len(questions):
            print(f"  {eval_set.name}: {number}/{len(questions)} ({time.perf_counter() - started:.0f} s)", flush=True)
            texts = list(answerer._cache)  # saved as it goes: an interrupted run keeps what it embedded
            np.savez(vector_file, texts=np.array(texts, dtype=object),
                     vectors=np.stack([answerer._cache[t] for t in texts]))
    return raws


def term_stats(eval_set: EvalSet) -> TermStats:
    return Services(eval_settings(Settings(), eval_set, CACHE)).answerer.term_stats()


def featurize(raws: list[Raw], stats: TermStats, missing_detail: bool) -> list[Case]:
    """Feature rows of each result; with `missing_detail`, every result whose read sentences hold the answer phrase
    is asked once more without those sentences: the passage stays, the detail asked for is missing (the nearest
    remaining sentence is the hard negative), as with real unanswerable questions on a topic the archive covers."""
    scorer = EvidenceScorer(stats)
    cases: list[Case] = []
    for raw in raws:
        features = scorer.features(raw.question, raw.read, raw.sentences, raw.cosines)
        cases.append(Case(raw.set, raw.group, raw.id, raw.answerable, raw.synthetic, features, raw.labels,
                          raw.gold_read))
        if missing_detail and raw.labels is not None and raw.labels.any() and not raw.labels.all():
            keep = [i for i, holds in enumerate(raw.labels) if not holds]
            sentences = [raw.sentences[i] for i in keep]
            features = scorer.features(raw.question, raw.read, sentences, raw.cosines[keep])
            cases.append(Case(raw.set, raw.group, raw.id, False, True, features, None, raw.gold_read, True))
    return cases


class Boosted:
    """Gradient-boosted trees (≤ 100, depth ≤ 3) behind LinearModel's scoring interface, for the comparison of
    `--boosted` only: under the cross-set protocol they did worse than the logistic models (bench/README.md,
    "Third round"), so the product ships no tree format."""

    # Signs that hold by construction: more similarity, overlap or a matching answer type never lowers the score.
    MONOTONE = {
        "cosine": 1, "cosine_gap": 1, "cosine_rank": 1, "overlap_idf": 1, "overlap_soft": 1, "overlap_rare": 1,
        "overlap_names": 1, "number_match": 1, "number_missing": -1, "date_match": 1, "person_match": 1,
        "place_match": 1, "reason_match": 1, "hit_rank": 1, "hit_score": 1, "moderation": -1, "is_question": -1,
        "best_cosine": 1, "top3_cosine": 1, "best_type_match": 1, "read_soft_coverage": 1, "read_names": 1,
    }

    def __init__(self, rows: np.ndarray, labels: np.ndarray, features: tuple[str, ...], weights: np.ndarray | None,
                 balanced: bool) -> None:
        self.threshold = 0.5
        self.model = HistGradientBoostingClassifier(
            max_iter=100, max_depth=3, learning_rate=0.1, early_stopping=False, random_state=0,
            monotonic_cst=[self.MONOTONE.get(name, 0) for name in features],
            class_weight="balanced" if balanced else None,
        ).fit(rows, labels, sample_weight=weights)

    def score(self, rows: np.ndarray) -> np.ndarray:
        return self.model.decision_function(rows)

    def probability(self, rows: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(rows)[:, 1]


def fit(rows: np.ndarray, labels: np.ndarray, features: tuple[str, ...], c: float = 1.0,
        weights: np.ndarray | None = None, balanced: bool = True) -> LinearModel:
    """Logistic regression on standardised features, folded back into weights on the raw features; `balanced`
    weighs both classes the same (not needed when `weights` do it already). With `--boosted`, trees instead."""
    if BOOSTED:
        return Boosted(rows, labels, features, weights, balanced)  # type: ignore[return-value]
    scaler = StandardScaler().fit(rows)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced" if balanced else None).fit(
        (rows - scaler.mean_) / scale, labels, sample_weight=weights)
    weights = model.coef_[0] / scale
    return LinearModel(features, weights, float(model.intercept_[0] - (scaler.mean_ / scale) @ model.coef_[0]))


def sentence_model(cases: list[Case], c: float = 0.5) -> LinearModel:
    usable = [c for c in cases if c.labels is not None and c.labels.any()]
    rows = np.vstack([c.features.rows for c in usable])
    labels = np.concatenate([c.labels for c in usable])
    # Each set weighs the same: XQuAD's 1,190 short paragraphs would otherwise teach the gold archive's long
    # chunks (gold leave-one-group-out, first sentence 0.331 → 0.349).
    per_set = {name: sum(1 for c in usable if c.set == name) for name in {c.set for c in usable}}
    weights = np.concatenate([np.full(len(c.labels), 1.0 / per_set[c.set]) for c in usable])
    return fit(rows, labels, SENTENCE_FEATURES, c=c, weights=weights / weights.mean())


def result_rows(cases: list[Case], scorer: LinearModel) -> np.ndarray:
    return np.vstack([result_features(c.features, scorer.score(c.features.rows)) for c in cases])


def answerability_model(cases: list[Case], scorer: LinearModel, gold_weight: float = 1.0) -> LinearModel:
    # Answerable results whose gold document the answer never read teach nothing about answerability.
    usable = [c for c in cases if not c.answerable or c.gold_read]
    # Each set and class weighs the same: pooled, XQuAD's passage-removed negatives (topic gone, top score low)
    # outweigh gold's real unanswerable questions (topic present, detail missing). Gold leave-one-group-out AUC /
    # recall at 5 %: 0.763 / 0.250 → 0.786 / 0.350, GermanQuAD-removed 0.934 → 0.936 (bench/README.md). The gold
    # set, the only one with real unanswerable questions, weighs `gold_weight` times more (`choose_gold_weight`).
    counts: dict[tuple[str, bool], int] = {}
    for case in usable:
        counts[case.set, case.answerable] = counts.get((case.set, case.answerable), 0) + 1
    weights = np.array([(gold_weight if c.set == "gold" else 1.0) / counts[c.set, c.answerable] for c in usable])
    model = fit(result_rows(usable, scorer), np.array([c.answerable for c in usable]), RESULT_FEATURES, c=0.5,
                weights=weights / weights.mean(), balanced=False)
    # Refusing an answerable question costs a participant more than answering a few unanswerable ones: the
    # threshold keeps false abstention within the limit on every training set, not only on their pooled (mostly
    # XQuAD) questions (gold: 0.078 false abstention at the pooled quantile, 0.06 at the per-set minimum).
    positive_probabilities = [
        model.probability(result_rows(positives, scorer))
        for positives in ([c for c in usable if c.answerable and c.set == name] for name in {c.set for c in usable})
        if positives
    ]
    model.threshold = min(float(np.quantile(p, MAX_FALSE_ABSTENTION * 0.8)) for p in positive_probabilities)
    # Between the threshold and the caution level the answer asks to check the cited passage: the same per-set
    # rule, so that no training set's answerable questions get the caution more than CAUTION_SHARE of the time.
    model.caution = max(model.threshold, min(float(np.quantile(p, CAUTION_SHARE)) for p in positive_probabilities))
    return model


class Training:
    """The cases by set and gold file group, and the sentence models fitted on each training selection once (the
    weight search refits only the answerability model)."""

    def __init__(self, cases: list[Case]) -> None:
        self.cases = cases
        self.groups = sorted({c.group for c in cases if c.set == "gold"})
        self._scorers: dict[tuple[tuple[str, ...], tuple[str, ...]], LinearModel] = {}

    def select(self, sets: tuple[str, ...], gold_groups: tuple[str, ...] = ()) -> list[Case]:
        return [c for c in self.cases if c.set in sets or (c.set == "gold" and c.group in gold_groups)]

    def scorer(self, sets: tuple[str, ...], gold_groups: tuple[str, ...] = ()) -> LinearModel:
        key = (tuple(sorted(sets)), tuple(sorted(gold_groups)))
        if key not in self._scorers:
            self._scorers[key] = sentence_model(self.select(sets, gold_groups))
        return self._scorers[key]

    def held_out_auc(self, gold_groups: tuple[str, ...], public: tuple[str, ...], gold_weight: float) -> list[float]:
        """Answerability AUC of each held-out part: the gold groups one at a time (pooled), then each public set
        with the gold passage removed, every part measured by models trained on the rest."""
        answerable: list[float] = []
        unanswerable: list[float] = []
        for group in gold_groups:
            rest = tuple(g for g in gold_groups if g != group)
            scorer = self.scorer(public, rest)
            model = answerability_model(self.select(public, rest), scorer, gold_weight)
            test = [c for c in self.select((), (group,)) if not c.synthetic]
            for case, probability in zip(test, model.probability(result_rows(test, scorer))):
                (answerable if case.answerable else unanswerable).append(float(probability))
        aucs = [auc(answerable, unanswerable)]
        for held in public:
            rest = tuple(name for name in public if name != held)
            scorer = self.scorer(rest, gold_groups)
            model = answerability_model(self.select(rest, gold_groups), scorer, gold_weight)
            test = [c for c in self.select((held,)) if not c.missing_detail]
            probabilities = model.probability(result_rows(test, scorer))
            aucs.append(auc([float(p) for c, p in zip(test, probabilities) if c.answerable],
                            [float(p) for c, p in zip(test, probabilities) if not c.answerable]))
        return aucs

    def choose_gold_weight(self, gold_groups: tuple[str, ...], public: tuple[str, ...]) -> float:
        """The gold weight (of GOLD_WEIGHTS) with the best mean held-out AUC over the gold groups and the public
        sets given, each part one vote (the smallest on a tie): more gold weight fits real unanswerable questions
        of this archive better and may unlearn what the public sets teach about others."""
        means = {w: float(np.mean(self.held_out_auc(gold_groups, public, w))) for w in GOLD_WEIGHTS}
        best = max(means.values())
        return next(w for w in GOLD_WEIGHTS if means[w] >= best - 1e-9)


def chosen(case: Case, scorer: LinearModel) -> tuple[int, list[int]]:
    # The chunk of a sentence is in its features: hit_rank = 1 / (1 + rank).
    picked = answer_sentences(scorer.score(case.features.rows), case.features.rows[:, HIT_RANK].tolist())
    return picked[0], picked


def sentence_figures(cases: list[Case], scorer: LinearModel) -> dict[str, float]:
    with_phrase = [c for c in cases if c.labels is not None and not c.synthetic]
    first = cited = 0
    for case in with_phrase:
        best, picked = chosen(case, scorer)
        first += bool(case.labels[best])
        cited += bool(case.labels[picked].any())
    n = len(with_phrase) or 1
    in_read = sum(1 for c in with_phrase if c.labels.any()) / n
    return {"questions": len(with_phrase), "answer_in_first": first / n, "answer_in_cited": cited / n,
            "answer_in_read_sentences": in_read}


def answerability_figures(cases: list[Case], scorer: LinearModel, model: LinearModel) -> dict[str, float]:
    probabilities = model.probability(result_rows(cases, scorer))
    labels = np.array([c.answerable for c in cases])
    answerable, unanswerable = probabilities[labels], probabilities[~labels]
    return {
        "answerable": int(labels.sum()), "unanswerable": int((~labels).sum()),
        "auc": auc(answerable.tolist(), unanswerable.tolist()),
        "recall_at_5pct_false_abstention": recall_at_false_abstention(answerable.tolist(), unanswerable.tolist()),
        "false_abstention_at_threshold": float((answerable < model.threshold).mean()),
        "unanswerable_caught_at_threshold": float((unanswerable < model.threshold).mean()),
        "answerable_with_caution": float(((answerable >= model.threshold) & (answerable < model.caution)).mean()),
        "unanswerable_with_caution": float(((unanswerable >= model.threshold) & (unanswerable < model.caution)).mean()),
    }


def show(title: str, figures: dict[str, float]) -> None:
    print(f"{title}: " + " · ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in
                                     figures.items()), flush=True)


def evaluate(cases: list[Case]) -> dict[str, dict[str, float]]:
    """The cross-set figures: each set measured with models trained without it. The gold weight of the
    answerability fit is chosen by cross-validation without the measured set too (nested)."""
    training = Training(cases)
    by_set = {name: [c for c in cases if c.set == name] for name in ("gold", "xquad", "germanquad")}
    gold_real = [c for c in by_set["gold"] if not c.synthetic]
    groups = tuple(training.groups)

    # XQuAD: sentence model trained without XQuAD (gold is the only other set with answer phrases).
    figures = {"xquad": sentence_figures(by_set["xquad"], sentence_model(by_set["gold"]))}
    show("XQuAD-de (Satzmodell nur aus Gold)", figures["xquad"])
    # GermanQuAD with the gold passage removed: models trained on XQuAD + gold.
    weight = training.choose_gold_weight(groups, ("xquad",))
    scorer = training.scorer(("xquad",), groups)
    figures["germanquad"] = answerability_figures(
        [c for c in by_set["germanquad"] if not c.missing_detail], scorer,
        answerability_model(training.select(("xquad",), groups), scorer, weight))
    show(f"GermanQuAD, Goldpassage entfernt (Modelle aus XQuAD + Gold, Goldgewicht {weight:g})", figures["germanquad"])
    # Gold, leave one file group out.
    pooled: list[tuple[Case, float, int, list[int]]] = []
    weights: list[float] = []
    tiers: dict[bool, list[str]] = {True: [], False: []}  # answerable → refused / caution / plain, at fold levels
    for group in groups:
        rest = tuple(g for g in groups if g != group)
        weights.append(training.choose_gold_weight(rest, ("xquad", "germanquad")))
        scorer = training.scorer(("xquad", "germanquad"), rest)
        model = answerability_model(training.select(("xquad", "germanquad"), rest), scorer, weights[-1])
        for case in (c for c in gold_real if c.group == group):
            best, picked = chosen(case, scorer)
            probability = float(model.probability(result_rows([case], scorer))[0])
            pooled.append((case, probability, best, picked))
            tiers[case.answerable].append("refused" if probability < model.threshold else
                                          "caution" if probability < model.caution else "plain")
    phrased = [(c, b, p) for c, _, b, p in pooled if c.labels is not None]
    answerable = [p for c, p, _, _ in pooled if c.answerable]
    unanswerable = [p for c, p, _, _ in pooled if not c.answerable]
    figures["gold"] = {
        "answer_in_first": sum(bool(c.labels[b]) for c, b, _ in phrased) / len(phrased),
        "answer_in_cited": sum(bool(c.labels[p].any()) for c, _, p in phrased) / len(phrased),
        "auc": auc(answerable, unanswerable),
        "recall_at_5pct_false_abstention": recall_at_false_abstention(answerable, unanswerable),
    }
    for answerable_case, prefix in ((True, "answerable"), (False, "unanswerable")):
        for tier in ("refused", "caution", "plain"):
            figures["gold"][f"{prefix}_{tier}"] = tiers[answerable_case].count(tier) / (len(tiers[answerable_case]) or 1)
    show(f"Gold, je Dateigruppe ausgelassen (Goldgewichte {', '.join(f'{w:g}' for w in weights)})", figures["gold"])
    return figures


def bounds(cases: list[Case]) -> dict[str, float]:
    """How far these features can go on gold at all: models fitted on the gold questions and measured on the same
    questions (in-sample, nearly unregularised). No held-out figure of a model over these features can be expected
    above these; trees show what memorising looks like (their in-sample figures are no bound)."""
    gold = [c for c in cases if c.set == "gold" and not c.synthetic]
    scorer = sentence_model(gold, c=100.0)
    figures = {f"sentence_{k}": v for k, v in sentence_figures(gold, scorer).items() if k != "questions"}
    rows = result_rows(gold, scorer)
    labels = np.array([c.answerable for c in gold])
    linear = fit(rows, labels, RESULT_FEATURES, c=100.0).probability(rows)
    figures["logistic_auc"] = auc(linear[labels].tolist(), linear[~labels].tolist())
    figures["logistic_recall_at_5pct"] = recall_at_false_abstention(linear[labels].tolist(), linear[~labels].tolist())
    trees = HistGradientBoostingClassifier(max_depth=2, max_iter=100, early_stopping=False, random_state=0,
                                           class_weight="balanced").fit(rows, labels).predict_proba(rows)[:, 1]
    figures["trees_depth2_auc_memorised"] = auc(trees[labels].tolist(), trees[~labels].tolist())
    figures["trees_depth2_recall_at_5pct_memorised"] = recall_at_false_abstention(trees[labels].tolist(),
                                                                                  trees[~labels].tolist())
    for column, name in enumerate(RESULT_FEATURES):  # each feature alone, higher = more answerable
        figures[f"alone_auc_{name}"] = auc(rows[labels, column].tolist(), rows[~labels, column].tolist())
    show("Gold, im Training gemessen (Obergrenze dieser Merkmale)", figures)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true", help="store the models trained on all sets")
    parser.add_argument("--germanquad", type=int, default=300, help="GermanQuAD questions sampled (0 = all)")
    parser.add_argument("--fresh", action="store_true", help="search and embed again")
    parser.add_argument("--sets", nargs="+", default=["gold", "xquad", "germanquad"], help="sets to load")
    parser.add_argument("--collect-only", action="store_true", help="only search and embed (cached)")
    parser.add_argument("--missing-detail", action="store_true",
                        help="add missing-detail negatives (answer sentences removed, passage kept)")
    parser.add_argument("--boosted", action="store_true", help="compare gradient-boosted trees (not written)")
    parser.add_argument("--bounds", action="store_true",
                        help="also fit on gold and measure on gold: how far these features can go at all")
    args = parser.parse_args()
    global BOOSTED
    BOOSTED = args.boosted
    CACHE.mkdir(exist_ok=True)
    cases: list[Case] = []
    loaders = (("gold", load_gold, None), ("xquad", lambda: load_xquad(CACHE), None),
               ("germanquad", lambda: load_germanquad(CACHE), args.germanquad or None))
    for name, loader, limit in loaders:
        if name not in args.sets:
            continue
        raw_file = CACHE / f"evidence-raw-{name}.pkl"
        eval_set = loader()
        if args.fresh or not raw_file.is_file():
            started = time.perf_counter()
            raw_file.write_bytes(pickle.dumps(collect(eval_set, limit)))
            print(f"{name}: Treffer und Satzvektoren in {time.perf_counter() - started:.0f} s", flush=True)
        if args.collect_only:
            continue
        started = time.perf_counter()
        cases += featurize(pickle.loads(raw_file.read_bytes()), term_stats(eval_set), args.missing_detail)
        print(f"{name}: Merkmale in {time.perf_counter() - started:.0f} s", flush=True)
    if args.collect_only:
        return
    evaluate(cases)
    if args.bounds:
        bounds(cases)
    if args.write and not BOOSTED:
        by_set = {name: [c for c in cases if c.set == name] for name in ("gold", "xquad", "germanquad")}
        training = Training(cases)
        weight = training.choose_gold_weight(tuple(training.groups), ("xquad", "germanquad"))
        scorer = sentence_model(cases)
        model = answerability_model(cases, scorer, weight)
        trained_on = {name: len(group) for name, group in by_set.items()}
        scorer.info = {"trained_on": trained_on, "script": "bench/train_evidence.py"}
        model.info = {"trained_on": trained_on, "script": "bench/train_evidence.py", "gold_weight": weight,
                      "threshold": f"answers above it: at most {MAX_FALSE_ABSTENTION:.0%} false abstention on each "
                                   "training set",
                      "caution": f"answers below it carry a caution: at most {CAUTION_SHARE:.0%} of the answerable "
                                 "questions of each training set"}
        (CALIBRATION / "evidence_sentence.json").write_text(scorer.to_json(), encoding="utf-8")
        (CALIBRATION / "evidence_answerability.json").write_text(model.to_json(), encoding="utf-8")
        print(f"geschrieben: {CALIBRATION}/evidence_*.json (Schwelle {model.threshold:.3f}, Vorbehalt unter "
              f"{model.caution:.3f})")


if __name__ == "__main__":
    main()
