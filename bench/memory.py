"""Where the server's memory goes under the mixed load: RSS over time and a tracemalloc diff after warm-up.

    flock /work/notes/heavy.lock env PYTHONPATH=. .venv/bin/python bench/memory.py --data-dir /tmp/gold --seconds 240

The app (create_app, the real model, extractive answers) runs in this process under uvicorn in a thread, with
tracemalloc on; the clients of bench/load.py's mixed load run here too (their own allocations are steady and show
up under httpx/h11). After `--warmup` seconds a first snapshot is taken, at the end a second; printed are the RSS
samples (every `--every` seconds: growth that levels off is warm-up, not a leak), the Python heap tracemalloc sees
at both points, and the lines whose allocations grew most in between. Python heap growth much smaller than RSS
growth points at native memory (the model engine, Chroma) or at allocator fragmentation: run again with
MALLOC_ARENA_MAX=2 in the environment to tell the two apart.
"""

from __future__ import annotations

import argparse
import gc
import sys
import threading
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.compare import load_line  # noqa: E402
from bench.load import free_port, process_figures, question_mix, run_mixed  # noqa: E402


def serve_in_thread(data_dir: Path, port: int):  # noqa: ANN201 - uvicorn.Server
    import httpx
    import uvicorn

    from api.app import create_app
    from core.settings import Settings

    settings = Settings(
        data_dir=data_dir, corpus_dir=REPO / "corpus", collection="eval", llm_backend="none",
        rate_limit_per_minute=1_000_000, host="127.0.0.1",
    )
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError("Server nicht bereit nach 120 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="a copy of the gold index (it gets written to)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=240.0, help="total load time")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds of load before the first snapshot")
    parser.add_argument("--every", type=float, default=20.0, help="RSS sample interval")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--operation", help="only this operation (ask, ask-stream, search, sources)")
    args = parser.parse_args()

    from bench import load
    from services.benchmarks import load_gold

    if args.operation:
        load.OPERATIONS = ((args.operation, 1.0),)
    tracemalloc.start(8)
    port = free_port()
    server = serve_in_thread(args.data_dir, port)
    base = f"http://127.0.0.1:{port}"
    mix = question_mix([q.question for q in load_gold().questions])
    pid = __import__("os").getpid()
    samples: list[tuple[float, float]] = []
    snapshots: list[tracemalloc.Snapshot] = []
    started = time.monotonic()
    print(f"{load_line()} (before)", flush=True)

    def sampler() -> None:
        next_snapshot = started + args.warmup
        while not finished.is_set():
            now = time.monotonic()
            samples.append((round(now - started), process_figures(pid, args.data_dir)["rss_mb"]))
            print(f"t={samples[-1][0]:>4} s  RSS {samples[-1][1]} MB  python heap "
                  f"{tracemalloc.get_traced_memory()[0] / 2**20:.1f} MB", flush=True)
            if not snapshots and now >= next_snapshot:
                gc.collect()
                snapshots.append(tracemalloc.take_snapshot())
            finished.wait(args.every)

    finished = threading.Event()
    thread = threading.Thread(target=sampler)
    thread.start()
    row = run_mixed(base, mix, args.clients, args.seconds)
    finished.set()
    thread.join()
    gc.collect()
    end = tracemalloc.take_snapshot()
    print(f"{row['requests']} requests, {row['errors']} errors, p95 {row['p95_ms']} ms; {load_line()} (after)")
    print(f"end: {process_figures(pid, args.data_dir)}")
    if snapshots:
        filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
        start = snapshots[0].filter_traces(filters)
        end = end.filter_traces(filters)
        size = lambda snap: sum(s.size for s in snap.statistics("filename")) / 2**20  # noqa: E731
        print(f"python heap after warm-up {size(start):.1f} MB, at end {size(end):.1f} MB")
        for stat in end.compare_to(start, "traceback")[: args.top]:
            print(f"{stat.size_diff / 1024:+9.1f} KB {stat.count_diff:+7d} blocks")
            for line in stat.traceback.format(limit=4):
                print(f"      {line}")
    server.should_exit = True


if __name__ == "__main__":
    main()
