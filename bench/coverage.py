"""Cost of the coverage map (services/coverage.py) at the sample corpus and at 10k chunks.

    .venv/bin/python bench/coverage.py                      # sample corpus and 10k chunks
    .venv/bin/python bench/coverage.py --sizes 10000 --json

Reported per store: chunks, topics, seconds for a full computation (read all vectors and texts from Chroma,
k-means, c-TF-IDF labels), of which reading the store, and for a cached read (what every request after the first pays
until the next ingestion). The sample store is the bundled corpus/ ingested with the configured embedding model
(built once under .eval-cache/werkstatt/sample). The 10k store repeats its chunks with variations, as
bench/scale.py does: each copy gets a few words swapped, its vector is the original plus noise (renormalised), its
own source id and a random phase and type.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.compare import load_line  # noqa: E402
from core.settings import get_settings  # noqa: E402
from core.vocabulary import PHASES, SOURCE_TYPES  # noqa: E402
from services.container import Services  # noqa: E402

CACHE = REPO / ".eval-cache" / "werkstatt"
NOISE = 0.04  # per-dimension noise of a copy's vector (cosine to the original ~0.79, as in bench/scale.py)


def sample_services() -> Services:
    """The bundled corpus, ingested once with the configured embedding model."""
    settings = get_settings().model_copy(update={
        "data_dir": CACHE / "sample", "corpus_dir": REPO / "corpus", "chroma_url": None, "collection": "sample",
    })
    services = Services(settings)
    if services.store.count() == 0:
        print("Beispielkorpus wird eingelesen …", file=sys.stderr, flush=True)
        services.pipeline().run([REPO / "corpus"])
    return services


def scaled_services(size: int, sample: Services) -> Services:
    """`size` chunks: the sample's chunks repeated with variations (built once, reused while the count matches)."""
    settings = sample.settings.model_copy(update={"data_dir": CACHE / f"n{size}", "collection": "scaled"})
    services = Services(settings, embeddings=sample.embeddings, phase_tagger=None)
    if services.store.count() == size:
        return services
    services.store.drop()
    services.reset()
    ids, texts, metas, vectors = [], [], [], []
    for batch in sample.store.iter_all(include_embeddings=True):
        ids += batch[0]
        texts += batch[1]
        metas += batch[2]
        vectors += list(batch[3])
    rng = random.Random(size)
    noise = np.random.default_rng(size)
    words = sorted({w for text in texts for w in text.split() if w.isalpha() and len(w) > 4})
    rows: list[tuple[str, str, dict, np.ndarray]] = []
    for i in range(size):
        base, copy = i % len(ids), i // len(ids)
        text = texts[base]
        if copy:
            parts = text.split()
            for _ in range(3):
                parts[rng.randrange(len(parts))] = rng.choice(words)
            text = " ".join(parts)
        vector = np.asarray(vectors[base], dtype=np.float32)
        if copy:
            vector = vector + noise.normal(0, NOISE, vector.shape[0])
        meta = {**metas[base], "source_id": f"{metas[base]['source_id']}#{copy}",
                "phase": rng.choice(PHASES), "type": rng.choice(SOURCE_TYPES),
                "content_hash": f"{metas[base].get('content_hash', '')}#{copy}"}
        rows.append((f"{ids[base]}#{copy}", text, meta, (vector / np.linalg.norm(vector)).astype(np.float32)))
    for start in range(0, len(rows), 2000):
        part = rows[start : start + 2000]
        services.store.upsert([r[0] for r in part], [r[1] for r in part], [r[2] for r in part],
                              np.stack([r[3] for r in part]))
    services.lexical.sync(services.store)
    return services


def measure(services: Services) -> dict:
    store = services.store
    started = time.perf_counter()
    for _ in store.iter_all(include_embeddings=True):
        pass
    read = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        coverage = type(services.coverage)(store, services.lexical, services.registry, Path(folder) / "coverage.json")
        started = time.perf_counter()
        result = coverage.coverage()
        full = time.perf_counter() - started
        started = time.perf_counter()
        coverage.coverage()
        cached = time.perf_counter() - started
    return {"chunks": result.chunks, "topics": len(result.topics), "gaps": len(result.gaps),
            "full_s": round(full, 2), "read_store_s": round(read, 2), "cached_ms": round(cached * 1000, 1),
            "labels": [topic.label for topic in result.topics[:5]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10000], help="scaled stores besides the sample")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sample = sample_services()
    results = {"sample": measure(sample)}
    for size in args.sizes:
        results[str(size)] = measure(scaled_services(size, sample))
    results["load"] = load_line()
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
        return
    print("| Store | Abschnitte | Themen | Lücken | voll (s) | davon Store lesen (s) | aus Cache (ms) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, row in results.items():
        if name != "load":
            print(f"| {name} | {row['chunks']} | {row['topics']} | {row['gaps']} | {row['full_s']} | "
                  f"{row['read_store_s']} | {row['cached_ms']} |")
    for name, row in results.items():
        if name != "load":
            print(f"{name}: " + " · ".join(row["labels"]))
    print(f"Last: {results['load']}")


if __name__ == "__main__":
    main()
