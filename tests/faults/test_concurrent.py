"""Questions while the server ingests a large batch (as an upload job does, in the server process): no question
fails, and no answer cites a chunk that is not in the lexical index and the store together."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import httpx

from core.settings import Settings
from retriever.lexical import LexicalIndex
from tests.conftest import free_port
from tests.faults.child import QUESTIONS
from tests.faults.conftest import ROOT, child_command, child_env, make_corpus, parse_snapshot, run_child

CLIENTS = 4


def _wait_ready(client: httpx.Client, base: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "Server beendet"
        try:
            if client.get(f"{base}/readyz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError("Server nicht bereit")


def _indexed_ids(path: Path) -> set[str]:
    """The lexical index's chunk ids as on disk now; while the server swaps in a new build the directory is briefly
    missing: read again (this ingestion only adds, so a later read holds every id an earlier one did)."""
    for _ in range(100):
        lexical = LexicalIndex(path)
        lexical.load()
        if lexical.ids:
            return set(lexical.ids)
        time.sleep(0.01)
    raise AssertionError("Stichwortindex nicht lesbar")


def _cited(response: httpx.Response, path: str) -> list[str]:
    if path == "/v1/search":
        return [hit["chunk_id"] for hit in response.json()["results"]]
    if path == "/v1/ask":
        return [c["chunk_id"] for c in response.json()["citations"]]
    events = [block for block in response.text.split("\r\n\r\n") + response.text.split("\n\n") if block]
    for block in events:
        if "event: citations" in block:
            data = next(line for line in block.splitlines() if line.startswith("data:"))
            return [c["chunk_id"] for c in json.loads(data.removeprefix("data:"))["citations"]]
    raise AssertionError(f"keine Quellen im Stream: {response.text[:500]}")


def test_questions_during_ingestion_never_fail_nor_cite_unindexed_chunks(tmp_path: Path, fault_corpus: Path) -> None:
    data_dir = tmp_path / "data"
    batch = make_corpus(tmp_path / "upload", files=60, seed=8)  # ~180 chunks on the same topics
    env = child_env(data_dir, fault_corpus, rate_limit_per_minute="100000")
    assert run_child(env, "ingest", str(fault_corpus)).returncode == 0
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(child_command("serve", str(port), str(batch)), env=env, cwd=ROOT, stdout=log,
                              stderr=subprocess.STDOUT)
    lexical_path = Settings(data_dir=data_dir).lexical_path
    failures: list[str] = []
    cited_during: list[str] = []
    answered = 0
    lock = threading.Lock()
    done = tmp_path / "ingest-done"

    def client_loop(n: int) -> None:
        nonlocal answered
        with httpx.Client(timeout=60) as client:
            i = n
            while not done.exists() and not failures:
                question = QUESTIONS[i % len(QUESTIONS)]
                path, body = [("/v1/ask", {"question": question}), ("/v1/ask/stream", {"question": question}),
                              ("/v1/search", {"query": question, "k": 8})][i % 3]
                i += 1
                response = client.post(base + path, json=body)
                if response.status_code != 200 or "event: error" in response.text:
                    with lock:
                        failures.append(f"{path}: {response.status_code} {response.text[:300]}")
                    return
                cited = _cited(response, path)
                missing = set(cited) - _indexed_ids(lexical_path)
                with lock:
                    answered += 1
                    cited_during.extend(cited)
                    if missing:
                        failures.append(f"{path} zitiert {sorted(missing)}, nicht im Stichwortindex")

    try:
        with httpx.Client(timeout=10) as client:
            _wait_ready(client, base, server)
        threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        (tmp_path / "start-ingest").touch()
        for thread in threads:
            thread.join(timeout=180)
        if failures:
            print((tmp_path / "server.log").read_text(errors="replace")[-8000:])  # shown by pytest on failure
        assert not failures, failures[:5]
        assert done.exists(), "Einlesen nicht fertig"
        report = json.loads(done.read_text())
        assert report["added"] == 60 and not report["failed"], report
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    assert answered >= 10, f"nur {answered} Antworten während des Einlesens"
    final = run_child(env, "snapshot")
    stored = set(parse_snapshot(final.stdout)["ids"])
    assert set(cited_during) <= stored  # nothing cited was later found missing from the store
