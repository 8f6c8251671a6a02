"""Does a learned reading of the embeddings find the answering sentence better than their cosine? (issue 14)

    flock /work/notes/heavy.lock .venv/bin/python bench/reader_probe.py

The sentence model scores each candidate from features such as the question–sentence cosine, i.e. the sum of the
elementwise product of the two normalised vectors. This probe lets a logistic model weigh each dimension of that
product itself (a diagonal bilinear reader: which directions of the embedding space mark "states the asked detail"
rather than "same topic"), beside the product's features, and measures it under the protocol of
`bench/train_evidence.py`: XQuAD-de trained on gold only; gold leave-one-file-group-out trained on XQuAD-de and the
other groups; each set weighs the same. Reads the cached rows of `bench/train_evidence.py` (run it first) and embeds
the questions once (cached in .eval-cache/reader-queries-*.npz). Figures only: nothing is written. Only questions
whose answer phrase is in a sentence the answer reads count (the product's figures divide by all answerable gold
questions: multiply by 0.705 for gold).
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import train_evidence as te  # noqa: E402
from core.settings import Settings  # noqa: E402
from retriever.evidence import answer_sentences, in_context  # noqa: E402
from services.benchmarks import load_gold, load_xquad  # noqa: E402
from services.container import Services  # noqa: E402
from services.evaluation import auc, eval_settings, recall_at_false_abstention  # noqa: E402


class _Unpickler(pickle.Unpickler):
    """The cached rows were pickled by train_evidence run as a script (`__main__.Raw`)."""

    def find_class(self, module: str, name: str):  # noqa: ANN201
        return getattr(te, name) if module == "__main__" else super().find_class(module, name)


def load(name: str, loader) -> tuple[list[te.Raw], list[te.Case], dict[str, np.ndarray], dict[str, np.ndarray]]:  # noqa: ANN001
    with open(te.CACHE / f"evidence-raw-{name}.pkl", "rb") as file:
        raws = _Unpickler(file).load()
    raws = [r for r in raws if not r.synthetic]  # answerable and unanswerable; sentence figures filter below
    eval_set = loader()
    cases = te.featurize(raws, te.term_stats(eval_set), missing_detail=False)
    stored = np.load(te.CACHE / f"evidence-vectors-{name}.npz", allow_pickle=True)
    sentence_vectors = dict(zip(stored["texts"].tolist(), stored["vectors"]))
    query_file = te.CACHE / f"reader-queries-{name}.npz"
    questions = sorted({r.question for r in raws})
    if query_file.is_file():
        stored = np.load(query_file, allow_pickle=True)
        query_vectors = dict(zip(stored["questions"].tolist(), stored["vectors"]))
    else:
        query_vectors = {}
    missing = [q for q in questions if q not in query_vectors]
    if missing:
        started = time.perf_counter()
        embeddings = Services(eval_settings(Settings(), eval_set, te.CACHE)).embeddings
        query_vectors.update(zip(missing, embeddings.embed_queries(missing)))
        np.savez(query_file, questions=np.array(list(query_vectors), dtype=object),
                 vectors=np.stack(list(query_vectors.values())))
        print(f"{name}: {len(missing)} Fragen eingebettet in {time.perf_counter() - started:.0f} s", flush=True)
    return raws, cases, sentence_vectors, query_vectors


def products(raw: te.Raw, sentence_vectors: dict[str, np.ndarray], query_vectors: dict[str, np.ndarray]) -> np.ndarray:
    question = query_vectors[raw.question]
    rows = np.stack([sentence_vectors[in_context(raw.read[s.hit_rank], s.text)] for s in raw.sentences])
    return rows * question[None, :]


def figures(items: list[tuple[te.Case, np.ndarray]], score) -> tuple[float, float, float, float]:  # noqa: ANN001
    """Answer in the first sentence, in the cited ones, in the three best-scored; cited sentences per answer."""
    first = cited = top3 = count = 0
    for case, rows in items:
        scores = score(rows)
        picked = answer_sentences(scores, case.features.rows[:, te.HIT_RANK].tolist())
        first += bool(case.labels[picked[0]])
        cited += bool(case.labels[picked].any())
        top3 += bool(case.labels[np.argsort(-scores)[:3]].any())
        count += len(picked)
    n = len(items)
    return first / n, cited / n, top3 / n, count / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--c", type=float, nargs="+", default=[0.001, 0.01, 0.1])
    args = parser.parse_args()
    data = {}
    results = {}  # every real result (gold: with the unanswerable questions), for the answerability part
    for name, loader in (("gold", load_gold), ("xquad", lambda: load_xquad(te.CACHE))):
        raws, cases, sentence_vectors, query_vectors = load(name, loader)
        every = [(case, np.hstack([case.features.rows, products(raw, sentence_vectors, query_vectors)]))
                 for raw, case in zip(raws, cases)]
        results[name] = every
        data[name] = [(case, rows) for case, rows in every if case.labels is not None and case.labels.any()]
    width = len(te.SENTENCE_FEATURES)

    def train(items: list[tuple[te.Case, np.ndarray]], c: float, columns: slice):  # noqa: ANN202
        per_set = {n: sum(1 for case, _ in items if case.set == n) for n in {case.set for case, _ in items}}
        rows = np.vstack([r[:, columns] for _, r in items])
        labels = np.concatenate([case.labels for case, _ in items])
        weights = np.concatenate([np.full(len(case.labels), 1.0 / per_set[case.set]) for case, _ in items])
        names = tuple(f"x{i}" for i in range(rows.shape[1]))
        model = te.fit(rows, labels, names, c=c, weights=weights / weights.mean())
        return lambda r: model.score(r[:, columns])

    variants = [("Merkmale (wie das Produkt)", slice(0, width), [0.5]),
                ("Merkmale + Produktvektor", slice(None), args.c),
                ("nur Produktvektor", slice(width, None), args.c)]
    groups = sorted({case.group for case, _ in data["gold"]})
    combined: dict[float, tuple[float, float, float, float]] = {}
    for title, columns, cs in variants:
        for c in cs:
            started = time.perf_counter()
            xquad = figures(data["xquad"], train(data["gold"], c, columns))
            pooled_first = pooled_cited = pooled_top3 = pooled_count = 0.0
            answerable: list[float] = []
            unanswerable: list[float] = []
            for group in groups:
                train_items = data["xquad"] + [item for item in data["gold"] if item[0].group != group]
                test = [item for item in data["gold"] if item[0].group == group]
                score = train(train_items, c, columns)
                first, cited, top3, count = figures(test, score)
                pooled_first += first * len(test)
                pooled_cited += cited * len(test)
                pooled_top3 += top3 * len(test)
                pooled_count += count * len(test)
                # Answerability by the best sentence's score alone: does the reading tell "states the asked
                # detail" from "same topic" on the real unanswerable questions?
                for case, rows in (item for item in results["gold"] if item[0].group == group):
                    (answerable if case.answerable else unanswerable).append(float(score(rows).max()))
            if columns == slice(width, None):
                combined[c] = answerability_with_reader(results["gold"], groups, lambda items: train(items, c, columns),
                                                        lambda items: train(items, 0.5, slice(0, width)),
                                                        data["xquad"])
            n = len(data["gold"])
            print(f"{title}, C={c:g}: XQuAD-de erster Satz {xquad[0]:.3f} · Gold je Gruppe ausgelassen: erster Satz "
                  f"{pooled_first / n:.3f}, zitiert {pooled_cited / n:.3f} ({pooled_count / n:.2f} Sätze), unter den besten "
                  f"drei {pooled_top3 / n:.3f} ({n} Fragen mit der Antwort in den "
                  f"gelesenen Sätzen) · AUC des besten Satzwerts {auc(answerable, unanswerable):.3f} "
                  f"({len(answerable)} beantwortbar, {len(unanswerable)} nicht) · "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
    for c, (base_auc, base_recall, with_auc, with_recall) in combined.items():
        print(f"Beantwortbarkeit aus Gold (je Gruppe ausgelassen, nur Gold trainiert): Ergebnismerkmale AUC "
              f"{base_auc:.3f} / Recall bei ≤ 5 % {base_recall:.3f} · mit bestem Produktvektor-Wert (C={c:g}) "
              f"{with_auc:.3f} / {with_recall:.3f}", flush=True)


def answerability_with_reader(gold, groups, reader, scorer, xquad):  # noqa: ANN001, ANN201
    """The answerability model's result features with and without the reader's best sentence score as one more
    feature, trained on the other gold groups (the only real unanswerable questions), measured on the left-out one."""
    pooled = {False: ([], []), True: ([], [])}
    for group in groups:
        train_items = [item for item in gold if item[0].group != group]
        labelled = [item for item in train_items if item[0].labels is not None and item[0].labels.any()]
        read, score = reader(xquad + labelled), scorer(xquad + labelled)

        def rows(items, with_reader):  # noqa: ANN001, ANN202
            out = []
            for case, r in items:
                base = te.result_features(case.features, score(r))
                out.append(np.append(base, read(r).max()) if with_reader else base)
            return np.vstack(out)

        test = [item for item in gold if item[0].group == group]
        labels = np.array([case.answerable for case, _ in train_items])
        for with_reader in (False, True):
            features = (*te.RESULT_FEATURES, "reader")[: len(te.RESULT_FEATURES) + with_reader]
            model = te.fit(rows(train_items, with_reader), labels, features, c=0.5)
            probabilities = model.probability(rows(test, with_reader))
            for (case, _), probability in zip(test, probabilities):
                pooled[with_reader][0 if case.answerable else 1].append(float(probability))
    return (auc(*pooled[False]), recall_at_false_abstention(*pooled[False]),
            auc(*pooled[True]), recall_at_false_abstention(*pooled[True]))


if __name__ == "__main__":
    main()
