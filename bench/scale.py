"""Search latency at 1k, 10k and 100k chunks against its floor, the lexical sync cost, GET /v1/phases' counts.

    .venv/bin/python bench/scale.py                 # 1k, 10k, 100k (first run builds the stores: ~5 min)
    .venv/bin/python bench/scale.py --sizes 1000 10000 --queries 100 --json

The floor is what no search can avoid: embedding the query (live, one thread as in the server) plus Chroma's raw
kNN over the same collection, measured in the same run on the same queries. Reported per size: p50/p95 of the
floor, of dense-only, lexical-only and hybrid search through `SearchService`, the ratios hybrid/floor and
hybrid/dense, filtered search (type filter matching about a third) against unfiltered, the lexical index's
full and incremental sync time, and the chunk counts per phase of GET /v1/phases from the index and from Chroma.

The stores (.eval-cache/scale/n<size>/, gitignored) are built once and reused: real chunk texts and vectors of the
gold corpus and XQuAD (vectors from the embedding cache of bench/compare.py), repeated with variations up to the
size: each copy gets a few words swapped and numbers changed, its vector is the original plus noise
(renormalised; cosine to the original ~0.79), its metadata a random type/phase/date and its own source id, so filters match about a third.
Queries are the real gold and XQuAD questions, embedded live on every search.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.compare import CACHE, CachedEmbeddings, load_line  # noqa: E402
from core.vocabulary import PHASES, SOURCE_TYPES as TYPES  # noqa: E402

SCALE = CACHE / "scale"
# Per-dimension noise of a copy's vector: cosine to its original ~0.79, like a different chunk on the same topic.
# (With much less noise the ~100 copies of a chunk form tight clusters that HNSW links only among themselves: the
# graph falls apart and kNN returns fewer results than asked, which real corpora do not do.)
NOISE = 0.04


def base_chunks(embeddings: CachedEmbeddings) -> tuple[list, np.ndarray]:
    """Real chunks (gold corpus + XQuAD) and their vectors (cached; embedded once if missing)."""
    from ingest.chunking import Chunker
    from ingest.loaders import load_file
    from ingest.pipeline import discover
    from services.benchmarks import load_gold, load_xquad
    from core.settings import Settings

    chunks = []
    for eval_set in (load_gold(), load_xquad(CACHE)):
        settings = Settings(corpus_dir=eval_set.corpus_dir)
        chunker = Chunker(settings.chunk_chars, settings.transcript_chunk_seconds)
        files, _ = discover([eval_set.corpus_dir])
        for path in files:
            try:
                chunks.extend(chunker.run(load_file(path, settings, eval_set.corpus_dir)))
            except Exception:  # noqa: BLE001 - a file the loader refuses is simply not used
                continue
    vectors = embeddings.embed_passages([c.embed_text for c in chunks])
    return chunks, vectors


def _vary(text: str, rng: random.Random, vocabulary: list[str]) -> str:
    words = text.split(" ")
    for _ in range(max(1, len(words) // 15)):
        i = rng.randrange(len(words))
        words[i] = rng.choice(vocabulary) if not words[i][:1].isdigit() else str(rng.randrange(1, 99999))
    return " ".join(words)


def build_store(size: int, chunks: list, vectors: np.ndarray, embeddings: CachedEmbeddings):  # noqa: ANN201
    """Services over a store of `size` chunks (built once, reused while its count matches)."""
    from services.container import Services
    from core.settings import Settings

    settings = Settings(data_dir=SCALE / f"n{size}-v2", corpus_dir=SCALE / "none", chroma_url=None, collection="scale")
    services = Services(settings, embeddings=embeddings)
    store = services.store
    if store.count() != size:
        store.drop()
        services.reset()
        store = services.store
        rng = random.Random(size)
        nrng = np.random.default_rng(size)
        vocabulary = sorted({w for c in chunks[:500] for w in c.text.split() if w.isalpha() and len(w) > 4})
        batch_ids: list[str] = []
        batch_texts: list[str] = []
        batch_metas: list[dict] = []
        batch_vecs: list[np.ndarray] = []
        for i in range(size):
            base = i % len(chunks)
            chunk = chunks[base]
            copy = i // len(chunks)
            text = chunk.text if copy == 0 else _vary(chunk.text, rng, vocabulary)
            vec = vectors[base] if copy == 0 else vectors[base] + nrng.normal(0, NOISE, vectors.shape[1])
            vec = (vec / np.linalg.norm(vec)).astype(np.float32)
            date = f"20{rng.randrange(18, 26):02d}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
            meta = {
                **{k: v for k, v in chunk.metadata.items() if k not in ("type", "date", "date_int")},
                "source_id": f"{chunk.metadata['source_id']}#{copy}",
                "type": TYPES[rng.randrange(3)], "phase": PHASES[rng.randrange(3)],
                "date": f"{date[:4]}-{date[4:6]}-{date[6:]}", "date_int": int(date),
                "content_hash": f"{chunk.metadata['content_hash']}#{copy}",
            }
            batch_ids.append(f"{chunk.id}-{copy}")
            batch_texts.append(text)
            batch_metas.append(meta)
            batch_vecs.append(vec)
            if len(batch_ids) == 5000 or i == size - 1:
                store.upsert(batch_ids, batch_texts, batch_metas, np.stack(batch_vecs))
                batch_ids, batch_texts, batch_metas, batch_vecs = [], [], [], []
    return services


def timed(fn, *args, **kwargs) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return (time.perf_counter() - t0) * 1000


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(np.ceil(q * len(ordered))) - 1))]


def measure(services, queries: list[str], k: int, rounds: int = 1) -> dict[str, dict[str, float]]:  # noqa: ANN001
    """Per-query latency of each system, interleaved (rotating order) so that load drift hits all alike."""
    from retriever.models import SearchFilters

    search = services.search
    embeddings = services.embeddings
    collection = services.store.collection
    third = SearchFilters(types=["article"])

    def floor(q: str) -> None:
        vector = embeddings.embed_queries([q])[0]
        collection.query(query_embeddings=[vector], n_results=k, include=["documents", "metadatas", "distances"])

    def chroma_where(q: str) -> None:
        vector = embeddings.embed_queries([q])[0]
        collection.query(query_embeddings=[vector], n_results=k, where={"type": {"$in": ["article"]}},
                         include=["documents", "metadatas", "distances"])

    systems = {
        "floor": floor,
        "dense": lambda q: search.search(q, k=k, mode="dense"),
        "lexical": lambda q: search.search(q, k=k, mode="lexical"),
        "hybrid": lambda q: search.search(q, k=k, mode="hybrid"),
        "dense_filtered": lambda q: search.search(q, k=k, mode="dense", filters=third),
        "hybrid_filtered": lambda q: search.search(q, k=k, mode="hybrid", filters=third),
        "chroma_where": chroma_where,
    }
    for q in queries[:3]:  # warm-up
        for fn in systems.values():
            fn(q)
    times: dict[str, list[float]] = {name: [] for name in systems}
    names = list(systems)
    for r in range(rounds):
        for i, q in enumerate(queries):
            order = names[(i + r) % len(names):] + names[: (i + r) % len(names)]
            for name in order:
                if name == "chroma_where" and i % 5:  # Chroma's where is slow: every 5th query is enough
                    continue
                times[name].append(timed(systems[name], q))
    return {name: {"p50": statistics.median(v), "p95": pct(v, 0.95), "n": len(v)} for name, v in times.items()}


def sync_costs(services) -> dict[str, float]:  # noqa: ANN001
    """Lexical index: full build, no-op re-sync, and re-sync after adding and after removing 50 chunks."""
    import shutil

    from retriever.lexical import LexicalIndex

    path = services.settings.data_dir / "lexical-bench"
    shutil.rmtree(path, ignore_errors=True)
    index = LexicalIndex(path)
    store = services.store
    out = {"full_s": timed(index.sync, store) / 1000, "noop_s": timed(index.sync, store) / 1000}
    ids, texts, metas, vectors = next(store.iter_all(batch=50, include_embeddings=True))
    new_ids = [f"{cid}-bench" for cid in ids]
    new_metas = [{**m, "content_hash": f"{m.get('content_hash')}-bench"} for m in metas]
    store.upsert(new_ids, texts, new_metas, np.asarray(vectors, dtype=np.float32))
    out["add50_s"] = timed(index.sync, store) / 1000
    store.delete(new_ids)
    out["remove50_s"] = timed(index.sync, store) / 1000
    shutil.rmtree(path, ignore_errors=True)
    return out


def phase_counts(services, rounds: int = 5) -> dict[str, float]:  # noqa: ANN001
    """GET /v1/phases' chunk counts per phase: from the lexical index (the endpoint's path when the index is in step
    with the store) and from Chroma (one ids-only metadata query per phase, the fallback), median of `rounds`."""
    from retriever.lexical import LexicalIndex
    from services.catalogue import PhaseCatalogue

    lexical = [timed(services.catalogue.chunk_counts) for _ in range(rounds)]
    never_synced = LexicalIndex(services.settings.data_dir / "lexical-none")
    fallback = PhaseCatalogue(services.store, services.registry, never_synced)
    chroma = [timed(fallback.chunk_counts) for _ in range(rounds)]
    return {"lexical_ms": statistics.median(lexical), "chroma_ms": statistics.median(chroma)}


def print_table(title: str, columns: list[str], rows: dict[int, list[str]]) -> None:
    """A Markdown table, one row per store size, followed by a blank line."""
    print(title)
    print("| chunks | " + " | ".join(columns) + " |")
    print("|---:|" + "---:|" * len(columns))
    for size, cells in rows.items():
        print(f"| {size} | " + " | ".join(cells) + " |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--no-sync", action="store_true", help="skip the lexical sync timings")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from services.benchmarks import load_gold, load_xquad
    from core.embeddings import get_embeddings
    from core.settings import get_settings

    model = get_embeddings(get_settings())
    cached = CachedEmbeddings(model)
    chunks, vectors = base_chunks(cached)
    live = CachedEmbeddings(model, live_queries=True)  # queries are embedded live: latency includes it
    gold, xquad = load_gold(), load_xquad(CACHE)
    pool = [q.question for pair in zip(gold.questions, xquad.questions) for q in pair]
    queries = random.Random(7).sample(pool, min(args.queries, len(pool)))
    results = {}
    for size in args.sizes:
        print(f"[{size}] store …", file=sys.stderr, flush=True)
        services = build_store(size, chunks, vectors, live)
        if not services.lexical.is_current(services.store):
            services.lexical.sync(services.store)
        row: dict = {"chunks": services.store.count()}
        if not args.no_sync:
            print(f"[{size}] lexical sync …", file=sys.stderr, flush=True)
            row["sync"] = sync_costs(services)
        row["phase_counts"] = phase_counts(services)
        print(f"[{size}] queries …", file=sys.stderr, flush=True)
        row["latency_ms"] = measure(services, queries, args.k)
        lat = row["latency_ms"]
        row["ratios_p50"] = {
            "hybrid/floor": lat["hybrid"]["p50"] / lat["floor"]["p50"],
            "dense/floor": lat["dense"]["p50"] / lat["floor"]["p50"],
            "hybrid/dense": lat["hybrid"]["p50"] / lat["dense"]["p50"],
            "hybrid_filtered/hybrid": lat["hybrid_filtered"]["p50"] / lat["hybrid"]["p50"],
            "dense_filtered/dense": lat["dense_filtered"]["p50"] / lat["dense"]["p50"],
            "chroma_where/floor": lat["chroma_where"]["p50"] / lat["floor"]["p50"],
        }
        row["load"] = load_line()
        results[size] = row
    if args.json:
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
        return
    systems = ["floor", "dense", "lexical", "hybrid", "dense_filtered", "hybrid_filtered", "chroma_where"]
    print_table(
        "Latency per search, ms (p50 / p95), query embedding included; filtered = type filter matching ~1/3", systems,
        {size: [f"{row['latency_ms'][s]['p50']:.1f} / {row['latency_ms'][s]['p95']:.1f}" for s in systems]
         for size, row in results.items()},
    )
    ratio_names = list(next(iter(results.values()))["ratios_p50"])
    print_table("Ratios of p50 latencies (same run)", ratio_names,
                {size: [f"{row['ratios_p50'][r]:.2f}" for r in ratio_names] for size, row in results.items()})
    if not args.no_sync:
        steps = ["full_s", "noop_s", "add50_s", "remove50_s"]
        print_table("Lexical index sync, seconds", ["full build", "no-op re-sync", "+50 chunks", "-50 chunks"],
                    {size: [f"{row['sync'][k]:.1f}" for k in steps] for size, row in results.items()})
    print_table("GET /v1/phases, chunk counts per phase, ms (median of 5)", ["lexical index", "Chroma"],
                {size: [f"{row['phase_counts'][k]:.1f}" for k in ("lexical_ms", "chroma_ms")]
                 for size, row in results.items()})
    for size, row in results.items():
        print(f"- {size}: {row['load']}")


if __name__ == "__main__":
    main()
