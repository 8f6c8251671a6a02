"""`/v1/ask` under load, and server start-to-ready, against a real server on 127.0.0.1.

    .venv/bin/python bench/load.py                     # 1, 2 and 8 clients, 48 questions sent 3 times per phase
    .venv/bin/python bench/load.py --clients 2,4,8 --json

The script starts `stadtretter serve` itself (loopback only, a free port) on the gold index that bench/compare.py
and `stadtretter eval` build under .eval-cache/ (built here first if missing), with the default model and the
extractive answerer (no LLM). The rate limit is raised for the bench server only (it would otherwise answer 429
to a load test, by design).

Measured:
- start-to-ready: from starting the process until `/healthz` answers 200 (model loaded, store and index open);
- a first pass, one client, over the questions (cold caches; reported, not compared);
- one client: the gold questions one after another, p50/p95;
- N clients (2 and 8 by default): the same questions spread over N concurrent clients (each sends its next question
  as soon as the previous answer is in), p50/p95, throughput, errors; bounded by --requests and --max-seconds;
- the CPU time the server and this load tool (which runs on the same cores) spend per request, and from it the
  lowest mean latency N clients can see when requests are CPU-bound: N x CPU time per request / cores.
The server is stopped at the end (by its process id).

Mixed load (`--mix`, issue 16): for `--duration` seconds per phase, N clients (default 1, 2 and 50) each send their
next request as soon as the previous one is answered, drawn from a fixed mix: ask 40 %, ask-stream 20 %, search 30 %,
sources 10 %; a third of the questions are repeats of a few WebTalk-style questions (as in a Q&A after a WebTalk).
Reported per phase: requests, errors, p50/p95/p99, throughput and server CPU per request. Then the same mix with the
largest client count while an upload job ingests ~200 chunks into the served index: files of the index (as new
uploads, so every chunk is embedded again) sent in one `POST /v1/admin/documents` with an admin key created in the
data directory for the run; the phase lasts from the upload until the job is done. Reported: p95 during the job /
idle p95 of the same run.

    .venv/bin/python bench/load.py --mix --data-dir /tmp/gold --clients 1,2,50 --duration 60
    .venv/bin/python bench/load.py --soak 600 --clients 8 --data-dir /tmp/gold

Soak (`--soak SECONDS`): the mix with `--clients` clients; the server's resident memory, threads and open file
descriptors at start, after a warm-up with the same clients (`--soak-warmup`, not part of the soak) and at the end,
RSS every `--sample-every` seconds in between (growth that levels off is warm-up, growth that goes on is a leak),
and the sizes of the SQLite files (with -wal) in the data directory.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.compare import CACHE, load_line, percentile  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gold_data_dir() -> Path:
    """The gold index (as `stadtretter eval` builds it); built with the embedding cache if missing."""
    from services.benchmarks import load_gold
    from services.evaluation import eval_settings
    from core.settings import get_settings

    eval_set = load_gold()
    settings = eval_settings(get_settings(), eval_set, CACHE)
    if not (settings.data_dir / "chroma").exists():
        from bench.compare import CachedEmbeddings, our_services
        from core.embeddings import get_embeddings

        our_services(eval_set, CachedEmbeddings(get_embeddings(settings)))
    return settings.data_dir


def start_server(data_dir: Path, port: int) -> tuple[subprocess.Popen, float, Path]:
    env = {
        **os.environ,
        "STADTRETTER_DATA_DIR": str(data_dir),
        "STADTRETTER_CORPUS_DIR": str(REPO / "corpus"),
        "STADTRETTER_COLLECTION": "eval",
        "STADTRETTER_LLM_BACKEND": "none",
        "STADTRETTER_RATE_LIMIT_PER_MINUTE": "1000000",
        "STADTRETTER_HOST": "127.0.0.1",
    }
    log = data_dir.parent / "load-server.log"
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "stadtretter"), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, cwd=str(REPO),
    )
    deadline = started + 120
    with httpx.Client(timeout=2.0) as client:
        while time.perf_counter() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"Server beendet mit Code {process.returncode}, siehe {log}")
            try:
                if client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    return process, time.perf_counter() - started, log
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
    process.terminate()
    raise TimeoutError(f"Server nicht bereit nach 120 s, siehe {log}")


def ask(client: httpx.Client, url: str, question: str) -> tuple[float, bool, str]:
    t0 = time.perf_counter()
    try:
        response = client.post(url, json={"question": question})
        ok = response.status_code == 200 and "answer" in response.json()
        detail = "" if ok else f"HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        ok, detail = False, type(exc).__name__
    return (time.perf_counter() - t0) * 1000, ok, detail


def run_clients(url: str, questions: list[str], clients: int, max_seconds: float) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    queue = list(enumerate(questions))
    deadline = time.perf_counter() + max_seconds

    def worker() -> None:
        with httpx.Client(timeout=120.0) as client:
            while time.perf_counter() < deadline:
                with lock:
                    if not queue:
                        return
                    _, question = queue.pop(0)
                ms, ok, detail = ask(client, url, question)
                with lock:
                    latencies.append(ms)
                    if not ok:
                        errors.append(detail)

    return drive(clients, lambda n: worker(), latencies, errors)


def drive(clients: int, worker: Callable[[int], None], latencies: list[float], errors: list[str]) -> dict:
    """Run `worker(n)` for n in 0..clients-1 in threads, then summarise what they recorded."""
    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {
        "clients": clients, "requests": len(latencies), "errors": len(errors), "error_kinds": sorted(set(errors)),
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p95_ms": round(percentile(latencies, 0.95), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        "throughput_rps": round(len(latencies) / elapsed, 2) if elapsed else None, "seconds": round(elapsed, 1),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to relate latency to the work each request costs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(url: str, questions: list[str], clients: int, max_seconds: float, server_pid: int) -> dict:
    """run_clients plus the CPU time the server and this load tool spent per request."""
    server_before, tool_before = cpu_seconds(server_pid), time.process_time()
    row = run_clients(url, questions, clients, max_seconds)
    requests = max(row["requests"], 1)
    row["server_cpu_ms_per_request"] = round((cpu_seconds(server_pid) - server_before) * 1000 / requests, 1)
    row["load_tool_cpu_ms_per_request"] = round((time.process_time() - tool_before) * 1000 / requests, 1)
    return row


# Questions as they come after a WebTalk: a few asked again and again, in slightly different words.
WEBTALK_REPEATS = (
    "Wie finanziert man ein Innenstadt-WLAN?",
    "Wie finanziert man ein Innenstadt-WLAN?",
    "Wie bereite ich eine Passantenbefragung vor?",
    "Was ist ein Verfügungsfonds?",
    "Was ist ein Verfügungsfonds?",
    "Wie misst man die Passantenfrequenz in der Innenstadt?",
)
OPERATIONS = (("ask", 0.4), ("ask-stream", 0.2), ("search", 0.3), ("sources", 0.1))


def question_mix(questions: list[str], seed: int = 16) -> list[str]:
    """The gold questions with a third WebTalk repeats mixed in, in a fixed order."""
    rng = random.Random(seed)
    mixed = list(questions) + [rng.choice(WEBTALK_REPEATS) for _ in range(len(questions) // 2)]
    rng.shuffle(mixed)
    return mixed


def mixed_request(client: httpx.Client, base: str, operation: str, question: str) -> tuple[float, bool, str]:
    t0 = time.perf_counter()
    try:
        if operation == "ask":
            response = client.post(f"{base}/v1/ask", json={"question": question})
            ok = response.status_code == 200 and "answer" in response.json()
        elif operation == "ask-stream":
            response = client.post(f"{base}/v1/ask/stream", json={"question": question})
            ok = response.status_code == 200 and "event: done" in response.text and "event: error" not in response.text
        elif operation == "search":
            response = client.post(f"{base}/v1/search", json={"query": question, "k": 8})
            ok = response.status_code == 200 and "results" in response.json()
        else:
            response = client.get(f"{base}/v1/sources")
            ok = response.status_code == 200
        detail = "" if ok else f"{operation} HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        ok, detail = False, f"{operation} {type(exc).__name__}"
    return (time.perf_counter() - t0) * 1000, ok, detail


def run_mixed(base: str, questions: list[str], clients: int, seconds: float, seed: int = 16,
              stop: threading.Event | None = None) -> dict:
    """N clients, each sending its next request when the previous is answered, for `seconds` (or until `stop`)."""
    stop = stop or threading.Event()
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    names, weights = zip(*OPERATIONS)

    def worker(n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        with httpx.Client(timeout=120.0) as client:
            i = n
            while time.perf_counter() < deadline and not stop.is_set():
                operation = rng.choices(names, weights)[0]
                ms, ok, detail = mixed_request(client, base, operation, questions[i % len(questions)])
                i += clients
                with lock:
                    latencies.append(ms)
                    if not ok:
                        errors.append(detail)

    return drive(clients, worker, latencies, errors)


def measured_mixed(base: str, questions: list[str], clients: int, seconds: float, server_pid: int,
                   stop: threading.Event | None = None) -> dict:
    server_before = cpu_seconds(server_pid)
    row = run_mixed(base, questions, clients, seconds, stop=stop)
    cpu_ms = (cpu_seconds(server_pid) - server_before) * 1000
    row["server_cpu_ms_per_request"] = round(cpu_ms / max(row["requests"], 1), 1)
    return row


def upload_files(data_dir: Path, chunks: int) -> list[Path]:
    """Files of the served index that together make about `chunks` chunks (their counts from its registry). Uploaded,
    they become new sources (uploads/<hash>/…): every chunk is embedded again, as for a new document."""
    from core.database import Database
    from core.settings import Settings
    from ingest.registry import Registry

    settings = Settings(data_dir=data_dir)
    registry = Registry(Database(settings.state_database_url).engine, settings.collection)
    picked, total = [], 0
    for record in sorted(registry.ingested(), key=lambda r: r.path):
        if total < chunks and Path(record.path).is_file():
            picked.append(Path(record.path))
            total += record.chunk_count
    return picked


def admin_key(data_dir: Path) -> str:
    """An admin API key in the bench copy's state database, for the upload job."""
    from core.settings import Settings
    from services.container import Services

    settings = Settings(_env_file=None, data_dir=data_dir, corpus_dir=REPO / "corpus", collection="eval")
    return Services(settings).api_keys.create(f"bench-load-{os.getpid()}", "admin").key


def during_upload_job(base: str, key: str, files: list[Path], mix: list[str], clients: int, server_pid: int) -> dict:
    """The mix with `clients` clients from the upload (POST /v1/admin/documents, one request, answered 202) until
    its job is done: only requests sent while the job is queued or running are measured."""
    stop = threading.Event()
    job: dict = {}

    def upload_and_wait() -> None:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, timeout=120.0, headers=headers) as client:
            started = time.perf_counter()
            response = client.post("/v1/admin/documents", files=[("files", (p.name, p.read_bytes())) for p in files])
            job.update(response.json() if response.status_code == 202 else {"status": f"HTTP {response.status_code}"})
            while job.get("status") in ("queued", "running"):
                time.sleep(0.5)
                job.update(client.get(f"/v1/admin/jobs/{job['id']}").json())
            job["seconds"] = round(time.perf_counter() - started, 1)
        stop.set()

    uploader = threading.Thread(target=upload_and_wait)
    uploader.start()
    row = measured_mixed(base, mix, clients, 1800, server_pid, stop=stop)
    uploader.join()
    result = job.get("result") or {}
    row.update(job_status=job.get("status"), job_seconds=job.get("seconds"), uploaded_files=len(files),
               chunks_embedded=result.get("chunks_embedded"), job_error=job.get("error"))
    return row


def process_figures(pid: int, data_dir: Path) -> dict:
    """Resident memory (MB), open file descriptors, SQLite file sizes (KB, with -wal) of the server and its data."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
    sqlite = {str(p.relative_to(data_dir)): round(p.stat().st_size / 1024, 1)
              for p in sorted(data_dir.rglob("*.sqlite*")) if p.is_file()}
    threads = int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))
    return {"rss_mb": round(rss_kb / 1024, 1), "fds": len(os.listdir(f"/proc/{pid}/fd")), "threads": threads,
            "sqlite_kb": sqlite}


def sample_rss(pid: int, every: float, stop: threading.Event) -> list[tuple[int, float, int]]:
    """(seconds, RSS MB, threads) of the server every `every` seconds until `stop` is set (in a thread)."""
    samples: list[tuple[int, float, int]] = []
    started = time.monotonic()

    def run() -> None:
        while not stop.wait(every):
            status = Path(f"/proc/{pid}/status").read_text().splitlines()
            rss = int(next(line.split()[1] for line in status if line.startswith("VmRSS:")))
            threads = int(next(line.split()[1] for line in status if line.startswith("Threads:")))
            samples.append((round(time.monotonic() - started), round(rss / 1024, 1), threads))

    threading.Thread(target=run, daemon=True).start()
    return samples


def mixed_main(args: argparse.Namespace, questions: list[str], data_dir: Path) -> dict:
    key = admin_key(data_dir) if not args.soak else ""
    port = free_port()
    process, ready_seconds, log = start_server(data_dir, port)
    base = f"http://127.0.0.1:{port}"
    mix = question_mix(questions)
    result: dict = {"start_to_ready_s": round(ready_seconds, 2), "cores": os.cpu_count(), "load_before": load_line()}
    try:
        run_mixed(base, mix, 2, args.warmup)  # warm caches (sentence vectors of the sources read); not reported
        if args.soak:
            clients = int(args.clients.split(",")[0])
            result["soak_start"] = process_figures(process.pid, data_dir)
            run_mixed(base, mix, clients, args.soak_warmup)  # the same concurrency: threads and caches settle
            result["soak_after_warmup"] = process_figures(process.pid, data_dir)
            stop = threading.Event()
            result["soak_samples"] = sample_rss(process.pid, args.sample_every, stop)
            result["soak"] = measured_mixed(base, mix, clients, args.soak, process.pid)
            stop.set()
            result["soak_end"] = process_figures(process.pid, data_dir)
            result["rss_growth_pct"] = round(
                100 * (result["soak_end"]["rss_mb"] / result["soak_after_warmup"]["rss_mb"] - 1), 1)
        else:
            counts = [int(c) for c in args.clients.split(",") if c.strip()]
            result["phases"] = [measured_mixed(base, mix, n, args.duration, process.pid) for n in counts]
            busy = during_upload_job(base, key, upload_files(data_dir, args.upload_chunks), mix, max(counts),
                                     process.pid)
            idle = next(row for row in result["phases"] if row["clients"] == max(counts))
            busy["p95_ratio_to_idle"] = round(busy["p95_ms"] / idle["p95_ms"], 2) if idle["p95_ms"] else None
            result["during_ingestion"] = busy
        result["load_after"] = load_line()
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
    result["server_log"] = str(log)
    return result


def print_mixed(result: dict) -> None:
    print(f"Server start-to-ready: {result['start_to_ready_s']:.2f} s, {result['cores']} cores")
    print("| phase | clients | requests | errors | p50 ms | p95 ms | p99 ms | req/s | server CPU ms/req |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = [("idle", row) for row in result.get("phases", [])]
    if "during_ingestion" in result:
        rows.append(("during upload job", result["during_ingestion"]))
    if "soak" in result:
        rows.append(("soak", result["soak"]))
    for name, row in rows:
        print(f"| {name} | {row['clients']} | {row['requests']} | {row['errors']} | {row['p50_ms']} | {row['p95_ms']} "
              f"| {row['p99_ms']} | {row['throughput_rps']} | {row['server_cpu_ms_per_request']} |")
    if "during_ingestion" in result:
        busy = result["during_ingestion"]
        print(f"p95 during the upload job / idle p95: {busy['p95_ratio_to_idle']} (job {busy['job_status']}: "
              f"{busy['uploaded_files']} files, {busy['chunks_embedded']} chunks embedded, {busy['job_seconds']} s "
              f"from upload to done{'; ' + busy['job_error'] if busy['job_error'] else ''})")
    if "soak" in result:
        print(f"soak start:        {result['soak_start']}")
        print(f"after warm-up:     {result['soak_after_warmup']}")
        print(f"soak end:          {result['soak_end']}  (RSS growth since warm-up {result['rss_growth_pct']} %)")
        print("RSS MB (threads) every " + ", ".join(f"{t} s: {rss} ({n})" for t, rss, n in result["soak_samples"]))
    print(f"{result['load_before']} (before) · {result['load_after']} (after)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="2,8", help="concurrent clients to measure, comma-separated")
    parser.add_argument("--requests", type=int, default=48, help="distinct gold questions")
    parser.add_argument("--repeat", type=int, default=3, help="warm phases send the questions this many times")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="per phase")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--mix", action="store_true", help="mixed load for --duration seconds per phase (issue 16)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per mixed phase")
    parser.add_argument("--soak", type=float, default=0.0, help="soak run of this many seconds (first --clients)")
    parser.add_argument("--warmup", type=float, default=15.0, help="mix/soak: seconds of warm-up with 2 clients")
    parser.add_argument("--upload-chunks", type=int, default=200, help="mix: chunks the upload job ingests")
    parser.add_argument("--soak-warmup", type=float, default=60.0, help="soak: seconds of warm-up, same clients")
    parser.add_argument("--sample-every", type=float, default=30.0, help="soak: RSS sample interval in seconds")
    parser.add_argument("--data-dir", type=Path, help="a copy of the gold index to serve (default: .eval-cache)")
    args = parser.parse_args()
    client_counts = [int(c) for c in args.clients.split(",") if c.strip()]

    from services.benchmarks import load_gold

    questions = [q.question for q in load_gold().questions][: args.requests]
    data_dir = args.data_dir or gold_data_dir()
    if args.mix or args.soak:
        result = mixed_main(args, [q.question for q in load_gold().questions], data_dir)
        if args.json:
            sys.stdout.write(json.dumps(result, indent=2) + "\n")
        else:
            print_mixed(result)
        return
    port = free_port()
    process, ready_seconds, log = start_server(data_dir, port)
    cores = os.cpu_count() or 1
    try:
        url = f"http://127.0.0.1:{port}/v1/ask"
        load_before = load_line()
        # First pass (one client) warms the server's caches (the answerer keeps sentence vectors of sources it has
        # read): the measured phases then all see the same warm state and the same questions.
        cold = run_clients(url, questions, 1, args.max_seconds)
        warm_questions = questions * args.repeat
        single = measured(url, warm_questions, 1, args.max_seconds, process.pid)
        concurrent = [measured(url, warm_questions, n, args.max_seconds, process.pid) for n in client_counts]
        load_after = load_line()
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
    for row in concurrent:
        row["p95_ratio"] = round(row["p95_ms"] / single["p95_ms"], 2) if single["p95_ms"] and row["p95_ms"] else None
        # Little's law with CPU-bound requests: N clients on C cores cannot average below N x CPU time / C.
        cpu = row["server_cpu_ms_per_request"] + row["load_tool_cpu_ms_per_request"]
        row["cpu_bound_mean_ms"] = round(row["clients"] * cpu / cores, 1)
    result = {
        "start_to_ready_s": round(ready_seconds, 2), "cores": cores, "cold_single": cold, "single": single,
        "concurrent": concurrent, "load_before": load_before, "load_after": load_after, "server_log": str(log),
    }
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    print(f"Server start-to-ready: {result['start_to_ready_s']:.2f} s")
    print("| phase | clients | requests | errors | p50 ms | p95 ms | p95 / 1 client | req/s | server CPU ms/req "
          "| load tool CPU ms/req | CPU-bound mean ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = [("first pass (cold caches)", cold), ("warm", single)] + [("warm", row) for row in concurrent]
    for name, row in rows:
        print(f"| {name} | {row['clients']} | {row['requests']} | {row['errors']} | {row['p50_ms']} | {row['p95_ms']} "
              f"| {row.get('p95_ratio', '–')} | {row['throughput_rps']} | {row.get('server_cpu_ms_per_request', '–')} "
              f"| {row.get('load_tool_cpu_ms_per_request', '–')} | {row.get('cpu_bound_mean_ms', '–')} |")
    print(f"{load_before} (before) · {load_after} (after)")


if __name__ == "__main__":
    main()
