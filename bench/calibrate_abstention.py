"""Calibrate the extractive answerer's abstention rule on the gold set and report sentence selection quality.

    .venv/bin/python bench/calibrate_abstention.py [--write]

Uses the cached gold evaluation store (.eval-cache/gold-<model>, built by `stadtretter eval`). For every gold
question it runs retrieval and the answerer's sentence selection once, then grid-searches the two thresholds of
AbstentionRule: the rule kept is the one with the best abstention F1 among those that wrongly abstain on at most
10% of the answerable questions. Prints the measured precision/recall; --write stores them in
retriever/calibration/abstention.json, which the answerer loads.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.benchmarks import load_gold  # noqa: E402
from services.evaluation import eval_settings, normalise  # noqa: E402
from services.container import Services  # noqa: E402
from core.settings import Settings  # noqa: E402

MAX_FALSE_ABSTENTION = 0.10
CALIBRATION_FILE = REPO / "retriever" / "calibration" / "abstention.json"  # in the source tree, not the installed package


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true", help="store the calibrated rule")
    args = parser.parse_args()
    gold = load_gold()
    services = Services(eval_settings(Settings(), gold, REPO / ".eval-cache"))
    services.pipeline().run([gold.corpus_dir], prune=True)
    rows = []
    for question in gold.questions:
        hits = services.search.search(question.question, k=services.settings.top_k)
        selection = services.answerer.select(question.question, hits) if hits else None
        chosen_hit = bool(
            selection and question.answer_phrase
            and any(normalise(question.answer_phrase) in normalise(s.text) for s in selection.sentences)
        )
        rows.append((question.answerable, selection.best_cosine if selection else 0.0,
                     selection.unknown_ratio if selection else 1.0, chosen_hit))
    answerable = [r for r in rows if r[0]]
    print(f"Sätze mit Gold-Antwort unter den gewählten: {sum(r[3] for r in answerable) / len(answerable):.3f} "
          f"({len(answerable)} beantwortbare Fragen)")

    best = None
    for cosine in [x / 1000 for x in range(820, 901, 5)]:
        for unknown in (0.25, 0.34, 0.5, 1.01):
            abstain = [(r[1] < cosine or r[2] >= unknown) for r in rows]
            true_abst = sum(1 for a, r in zip(abstain, rows) if a and not r[0])
            false_abst = sum(1 for a, r in zip(abstain, rows) if a and r[0])
            n_unanswerable = sum(1 for r in rows if not r[0])
            precision = true_abst / max(1, sum(abstain))
            recall = true_abst / max(1, n_unanswerable)
            false_rate = false_abst / len(answerable)
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            if false_rate <= MAX_FALSE_ABSTENTION and (best is None or f1 > best[0]):
                best = (f1, cosine, unknown, precision, recall, false_rate)
    assert best is not None
    f1, cosine, unknown, precision, recall, false_rate = best
    result = {
        "min_cosine": cosine,
        "max_unknown_ratio": unknown,
        "measured": {
            "questions": len(rows),
            "unanswerable": len(rows) - len(answerable),
            "abstention_precision": round(precision, 3),
            "abstention_recall": round(recall, 3),
            "false_abstention_rate": round(false_rate, 3),
            "abstention_f1": round(f1, 3),
        },
    }
    print(json.dumps(result, indent=2))
    if args.write:
        CALIBRATION_FILE.parent.mkdir(parents=True, exist_ok=True)
        CALIBRATION_FILE.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"geschrieben: {CALIBRATION_FILE}")


if __name__ == "__main__":
    main()
