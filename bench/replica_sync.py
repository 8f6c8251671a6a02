"""The lexical index on replicas (retriever/replication.py): time from a commit to visible on a follower, replica
cold start with and without a snapshot, snapshot size, at 10k and 100k chunks.

    flock /work/notes/heavy.lock .venv/bin/python bench/replica_sync.py                  # 10k and 100k
    .venv/bin/python bench/replica_sync.py --sizes 10000 --commits 20 --json

Set-up as in a deployment: a Chroma server (`chroma run`, started here), one state database (SQLite file), a writer
data directory and fresh replica data directories. The stores (.eval-cache/replica/, gitignored) are built once:
real chunk texts (the corpus/ folder and XQuAD-de) repeated with word variations up to the size, each with its own
source id and content hash, and random 16-dimensional vectors (the lexical index never reads vectors; the figures
here are about the lexical index, not about kNN).

Per size:
- writer: full lexical build from the store (what a replica without snapshot does at start), publish (pack +
  insert), snapshot size;
- cold start of a new replica (empty data directory): the follower's first step with the snapshot
  (download + unpack + swap + load) and without it (incremental sync from the store, nothing cached = full build);
- commit → visible: `--commits` commits by the writer (alternately one document of 3 chunks added and removed,
  each followed by the writer's sync + publish), a follower in its own process polling every second (the default);
  per commit the time from the end of the writer's publish to the follower having installed that version
  (p50/max), and what the follower's update cost (snapshot install) against an incremental sync for the same
  commit, measured on a second replica.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.compare import CACHE  # noqa: E402
from core.embeddings import StadtretterEmbeddings  # noqa: E402

ROOT = CACHE / "replica"
DIMENSION = 16
MODEL = "bench:random-16"
POLL_SECONDS = 1.0


class RandomEmbeddings(StadtretterEmbeddings):
    """Stands in for the model: nothing here embeds real text (the store is built with random vectors)."""

    def __init__(self) -> None:
        self.model_name, self.dimension = MODEL, DIMENSION
        self.rng = np.random.default_rng(0)

    def _random(self, n: int) -> np.ndarray:
        vectors = self.rng.normal(size=(n, DIMENSION)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def embed_passages(self, texts):  # noqa: ANN001, ANN201
        return self._random(len(texts))

    def embed_queries(self, texts):  # noqa: ANN001, ANN201
        return self._random(len(texts))


def services_for(data_dir: Path, chroma_url: str, size: int):  # noqa: ANN201
    from core.settings import Settings
    from services.container import Services

    settings = Settings(data_dir=data_dir, corpus_dir=ROOT / "none", chroma_url=chroma_url, collection=f"n{size}",
                        database_url=f"sqlite:///{(ROOT / f'state-{size}.sqlite3').resolve()}",
                        lexical_snapshots=True, lexical_poll_seconds=POLL_SECONDS)
    return Services(settings, embeddings=RandomEmbeddings(), phase_tagger=None)


def base_texts() -> list[tuple[str, dict]]:
    """(text, metadata) of real chunks: the corpus/ folder and XQuAD-de."""
    from core.settings import Settings
    from ingest.chunking import Chunker
    from ingest.loaders import load_file
    from ingest.pipeline import discover
    from services.benchmarks import load_xquad

    out = []
    for folder in (REPO / "corpus", load_xquad(CACHE).corpus_dir):
        settings = Settings(corpus_dir=folder)
        chunker = Chunker(settings.chunk_chars, settings.transcript_chunk_seconds)
        files, _ = discover([folder])
        for path in files:
            try:
                out.extend((c.text, c.metadata) for c in chunker.run(load_file(path, settings, folder)))
            except Exception:  # noqa: BLE001 - a file the loader refuses is simply not used
                continue
    return out


def _vary(text: str, rng: random.Random, vocabulary: list[str]) -> str:
    words = text.split(" ")
    for _ in range(max(1, len(words) // 15)):
        words[rng.randrange(len(words))] = rng.choice(vocabulary)
    return " ".join(words)


def build_store(size: int, chroma_url: str) -> None:
    """The store of `size` chunks in the Chroma server (once; reused while its count matches)."""
    services = services_for(ROOT / f"writer-{size}", chroma_url, size)
    store = services.store
    if store.count() == size:
        return
    store.drop()
    services.reset()
    store = services.store
    base = base_texts()
    rng = random.Random(size)
    vocabulary = sorted({w for text, _ in base[:500] for w in text.split() if w.isalpha() and len(w) > 4})
    embeddings = services.embeddings
    batch: list[tuple[str, str, dict]] = []
    for i in range(size):
        text, meta = base[i % len(base)]
        copy = i // len(base)
        text = text if copy == 0 else _vary(text, rng, vocabulary)
        source = f"{meta.get('source_id', 'x')}#{copy}"
        batch.append((f"{source}:{meta.get('chunk_index', 0)}", text, {
            "source_id": source, "chunk_index": int(meta.get("chunk_index", 0) or 0),
            "title": str(meta.get("title", "")), "type": "article", "phase": "E",
            "content_hash": f"{meta.get('content_hash', i)}#{copy}",
        }))
        if len(batch) == 2000 or i == size - 1:
            ids, texts, metas = zip(*batch)
            store.upsert(list(ids), list(texts), list(metas), embeddings.embed_passages(texts))
            batch = []


def timed(fn, *args) -> float:  # noqa: ANN001
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def writer_figures(size: int, chroma_url: str) -> dict:
    from sqlalchemy import delete

    from retriever.replication import versions_table

    writer = services_for(ROOT / f"writer-{size}", chroma_url, size)
    with writer.database.engine.begin() as connection:  # a clean version log per run
        connection.execute(delete(versions_table))
    shutil.rmtree(writer.settings.lexical_path, ignore_errors=True)
    full = timed(writer.lexical.sync, writer.store)
    publisher = writer.lexical_publisher
    publish = timed(publisher.publish, writer.store)
    latest = writer.index_versions.latest()
    return {"full_build_s": full, "publish_s": publish, "snapshot_mb": latest.snapshot_bytes / 1e6,
            "index_mb": sum(p.stat().st_size for p in writer.settings.lexical_path.rglob("*") if p.is_file()) / 1e6}


def cold_start(size: int, chroma_url: str) -> dict:
    """A new replica's first follower step, with the snapshot and without (its parts hidden for the step)."""
    from retriever.replication import LexicalFollower

    out = {}
    for label in ("with_snapshot", "without_snapshot"):
        replica = services_for(ROOT / f"replica-{size}-cold", chroma_url, size)
        shutil.rmtree(replica.settings.data_dir, ignore_errors=True)
        replica = services_for(ROOT / f"replica-{size}-cold", chroma_url, size)
        log = replica.index_versions
        if label == "without_snapshot":
            log.snapshot = lambda version: None  # type: ignore[method-assign]
        follower = LexicalFollower(lambda: replica.lexical, lambda: replica.store, log, POLL_SECONDS)
        started = time.perf_counter()
        outcome = follower.step()
        out[f"{label}_s"] = time.perf_counter() - started
        assert outcome == ("snapshot" if label == "with_snapshot" else "sync"), outcome
        assert len(replica.lexical.ids) == size, len(replica.lexical.ids)
    return out


def follow(size: int, chroma_url: str) -> None:
    """The follower process: a fresh replica; prints `visible <version> <unix time> <how> <seconds>`."""
    from retriever.replication import LexicalFollower

    replica = services_for(ROOT / f"replica-{size}-follower", chroma_url, size)
    shutil.rmtree(replica.settings.data_dir, ignore_errors=True)
    replica = services_for(ROOT / f"replica-{size}-follower", chroma_url, size)
    follower = LexicalFollower(lambda: replica.lexical, lambda: replica.store, replica.index_versions, POLL_SECONDS)
    while True:
        started = time.perf_counter()
        outcome = follower.step()
        if outcome in ("snapshot", "sync"):
            print(f"visible {replica.lexical.index_version} {time.time():.4f} {outcome} "
                  f"{time.perf_counter() - started:.4f}", flush=True)
        time.sleep(POLL_SECONDS)


def commits(size: int, chroma_url: str, count: int) -> dict:
    """Commit → visible on a follower in its own process; the follower's snapshot install against an incremental
    sync of a second replica for the same commits."""
    writer = services_for(ROOT / f"writer-{size}", chroma_url, size)
    store = writer.store
    publisher = writer.lexical_publisher
    process = subprocess.Popen([sys.executable, __file__, "--follow", str(size), "--chroma-url", chroma_url],
                               stdout=subprocess.PIPE, text=True, cwd=REPO)
    seen: dict[int, tuple[float, str, float]] = {}
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            _, version, at, how, seconds = line.split()
            seen[int(version)] = (float(at), how, float(seconds))
            ready.set()

    threading.Thread(target=read, daemon=True).start()
    syncing = services_for(ROOT / f"replica-{size}-sync", chroma_url, size)
    shutil.rmtree(syncing.settings.lexical_path, ignore_errors=True)
    syncing.lexical.sync(syncing.store)  # in step before the commits; then only incremental syncs
    try:
        if not ready.wait(600):  # the follower's start: it installs the current version first
            raise RuntimeError("follower did not start")
        embeddings = writer.embeddings
        base_ids, base_texts_, base_metas, _ = next(store.iter_all(batch=3))
        delays, writer_s, installs, syncs = [], [], [], []
        for n in range(count):
            ids = [f"bench-commit-{cid}" for cid in base_ids]
            started = time.perf_counter()
            if n % 2 == 0:
                metas = [{**m, "source_id": "bench-commit", "content_hash": f"c{n}-{i}"}
                         for i, m in enumerate(base_metas)]
                store.upsert(ids, list(base_texts_), metas, embeddings.embed_passages(base_texts_))
            else:
                store.delete(ids)
            publisher.sync(store)
            committed = time.time()
            writer_s.append(time.perf_counter() - started)
            version = writer.lexical.index_version
            deadline = time.monotonic() + 120
            while version not in seen and time.monotonic() < deadline:
                time.sleep(0.005)
            at, how, seconds = seen[version]
            delays.append(at - committed)
            installs.append(seconds)
            syncs.append(timed(syncing.lexical.sync, syncing.store))
            time.sleep(random.uniform(0, POLL_SECONDS))  # commits land anywhere in the follower's poll cycle
        store.delete([f"bench-commit-{cid}" for cid in base_ids])
        publisher.sync(store)
    finally:
        process.terminate()
        process.wait(timeout=30)

    def summary(values: list[float]) -> dict:
        return {"p50": statistics.median(values), "max": max(values), "n": len(values)}

    return {"commit_to_visible_s": summary(delays), "writer_sync_publish_s": summary(writer_s),
            "follower_snapshot_install_s": summary(installs), "follower_incremental_sync_s": summary(syncs)}


def chroma_server(path: Path) -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    chroma = Path(sys.executable).parent / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    log = open(path / "server.log", "ab")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen([str(chroma), "run", "--path", str(path / "db"), "--port", str(port),
                                "--host", "127.0.0.1"], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process, f"http://127.0.0.1:{port}"
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("chroma run did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--commits", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--follow", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--chroma-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.follow:
        follow(args.follow, args.chroma_url)
        return
    server, url = chroma_server(ROOT / "chroma")
    results = {"load_before": os.getloadavg()[0]}
    try:
        for size in args.sizes:
            started = time.perf_counter()
            build_store(size, url)
            figures = {"store_build_s": time.perf_counter() - started}
            figures.update(writer_figures(size, url))
            figures["cold_start"] = cold_start(size, url)
            figures.update(commits(size, url, args.commits))
            figures["load_after"] = os.getloadavg()[0]
            results[str(size)] = figures
            if not args.json:
                print(f"{size} chunks: {json.dumps(figures, indent=1)}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
