"""Answer latency: the extractive answer path before issue 14 (cosine selection + hand-set abstention rule, read from
git) against the learned evidence selection, in the same run on the gold corpus.

    flock /work/notes/heavy.lock .venv/bin/python bench/answer_latency.py [--base c4d492d] [--rounds 2]

Both answerers share the search service and the embedding model; each has its own sentence-vector cache. The
questions alternate between old and new, so both see the same load. Round 1 starts with empty caches (every
sentence embedded), later rounds are warm (popular sources already embedded, as on a running server). Prints p50/p95
per round and the ratio new/old, with the machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.settings import Settings  # noqa: E402
from retriever.answer import ExtractiveAnswerer  # noqa: E402
from services.benchmarks import load_gold  # noqa: E402
from services.container import Services  # noqa: E402
from services.evaluation import _percentile, eval_settings  # noqa: E402


def git_show(commit: str, path: str) -> str:
    return subprocess.run(["git", "show", f"{commit}:{path}"], cwd=REPO, check=True, capture_output=True,
                          text=True).stdout


def legacy_answerer(commit: str, services: Services):  # noqa: ANN201 - the old module's ExtractiveAnswerer
    module = types.ModuleType("legacy_answer")
    module.__file__ = f"{commit}:retriever/answer.py"
    sys.modules[module.__name__] = module  # dataclasses resolve annotations through sys.modules
    exec(compile(git_show(commit, "retriever/answer.py"), module.__file__, "exec"), module.__dict__)  # noqa: S102
    rule = json.loads(git_show(commit, "retriever/calibration/abstention.json"))
    settings = services.settings
    return module.ExtractiveAnswerer(
        services.search, services.embeddings, k=settings.top_k, rerank_depth=settings.rerank_depth,
        rerank_weight=settings.rerank_weight,
        rule=module.AbstentionRule(min_cosine=rule["min_cosine"], max_unknown_ratio=rule["max_unknown_ratio"]),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="c4d492d", help="commit of the old answer path")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    gold = load_gold()
    services = Services(eval_settings(Settings(), gold, REPO / ".eval-cache"))
    services.pipeline().run([gold.corpus_dir], prune=True)
    settings = services.settings
    answerers = {
        "alt": legacy_answerer(args.base, services),
        "neu": ExtractiveAnswerer(services.search, services.embeddings, k=settings.top_k,
                                  rerank_depth=settings.rerank_depth, rerank_weight=settings.rerank_weight),
    }
    questions = [q.question for q in gold.questions]
    answerers["neu"].run(questions[0])  # imports and first model call outside the measurement
    answerers["alt"].run(questions[0])
    for answerer in answerers.values():
        answerer._cache.clear()
    print(f"{len(questions)} Gold-Fragen, Last vorher: {os.getloadavg()[0]:.2f}")
    for round_number in range(1, args.rounds + 1):
        timings: dict[str, list[float]] = {name: [] for name in answerers}
        for index, question in enumerate(questions):
            order = list(answerers) if index % 2 == 0 else list(reversed(answerers))
            for name in order:
                started = time.perf_counter()
                answerers[name].run(question)
                timings[name].append((time.perf_counter() - started) * 1000)
        p95 = {name: _percentile(values, 0.95) for name, values in timings.items()}
        p50 = {name: _percentile(values, 0.5) for name, values in timings.items()}
        kind = "kalt" if round_number == 1 else "warm"
        print(f"Runde {round_number} ({kind}): alt p50 {p50['alt']:.1f} ms, p95 {p95['alt']:.1f} ms · neu p50 "
              f"{p50['neu']:.1f} ms, p95 {p95['neu']:.1f} ms · p95 neu/alt {p95['neu'] / p95['alt']:.2f}× · "
              f"Last {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
