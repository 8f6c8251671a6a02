"""Two API processes as replicas (own data directories) over one Chroma server and one state database, written by
`stadtretter ingest` on a third data directory (tests/faults/child.py: the CLI with the test embedding):

- both replicas answer with a new chunk within BOUND_SECONDS of the ingestion's end;
- a deleted document is cited by neither, also not by a replica that has not followed yet;
- a new replica with an empty data directory starts from the snapshot (no re-analysis), or syncs without one.
"""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ARTICLE_SURVEY, ARTICLE_WLAN, TRANSCRIPT
from tests.faults.conftest import child_env, run_child
from tests.server_process import ServerProcess

BOUND_SECONDS = 10.0  # poll interval 0.2 s here (1 s by default) plus the snapshot's install, with room for load
METRICS_TOKEN = "replica-test-token"
WEBTALK_QUESTION = "Lasersensoren Passanten Hauptstraße Samstag"
WLAN_QUESTION = "Wer betreibt das WLAN in der Innenstadt von Lindenfeld?"


@pytest.fixture
def cluster(tmp_path: Path, chroma_server: str) -> dict:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "wlan.md").write_text(ARTICLE_WLAN, encoding="utf-8")
    (corpus / "befragung.md").write_text(ARTICLE_SURVEY, encoding="utf-8")
    state = tmp_path / "state.sqlite3"
    shared = {"chroma_url": chroma_server, "collection": f"replicas{abs(hash(str(tmp_path))) % 10**8}",
              "database_url": f"sqlite:///{state}"}
    return {"tmp": tmp_path, "corpus": corpus, "state": state, "shared": shared}


def _ingest(cluster: dict, *arguments: str) -> None:
    """`stadtretter ingest` on the writer's own data directory."""
    env = child_env(cluster["tmp"] / "writer", cluster["corpus"], **cluster["shared"])
    result = run_child(env, "ingest", *arguments, str(cluster["corpus"]))
    assert result.returncode == 0, result.stderr[-2000:]


def _replica(cluster: dict, name: str, poll_seconds: float = 0.2) -> ServerProcess:
    env = child_env(cluster["tmp"] / name, cluster["corpus"], **cluster["shared"],
                    lexical_poll_seconds=str(poll_seconds), rate_limit_per_minute="100000",
                    metrics_token=METRICS_TOKEN)
    return ServerProcess(env, cluster["tmp"] / f"{name}.log")


def _sources(server: ServerProcess, question: str) -> set[str]:
    """Source ids of /v1/search's results and of /v1/ask's citations."""
    found = httpx.post(f"{server.url}/v1/search", json={"query": question, "k": 5}, timeout=30)
    asked = httpx.post(f"{server.url}/v1/ask", json={"question": question}, timeout=30)
    assert found.status_code == 200 and asked.status_code == 200, (found.text, asked.text)
    return ({r["source"]["source_id"] for r in found.json()["results"]}
            | {c["source_id"] for c in asked.json()["citations"]})


def _type_found(server: ServerProcess, question: str, source_type: str) -> bool:
    found = httpx.post(f"{server.url}/v1/search", json={"query": question, "k": 5}, timeout=30).json()
    return any(r["source"]["type"] == source_type for r in found["results"])


def _updates(server: ServerProcess) -> dict[str, float]:
    text = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=30).text
    return {how: float(n) for how, n in re.findall(r'stadtretter_lexical_updates_total\{how="(\w+)"\} (\S+)', text)}


def _lexical_check(server: ServerProcess) -> dict:
    checks = httpx.get(f"{server.url}/readyz", timeout=30).json()["checks"]
    return next(check for check in checks if check["name"] == "lexical_index")


def _source_titled(server: ServerProcess, question: str, title: str) -> str:
    found = httpx.post(f"{server.url}/v1/search", json={"query": question, "k": 5}, timeout=30).json()
    return next(r["source"]["source_id"] for r in found["results"] if r["source"]["title"] == title)


def _wait_for_snapshots(replica: ServerProcess, count: float) -> float:
    deadline = time.monotonic() + BOUND_SECONDS
    while _updates(replica)["snapshot"] < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return _updates(replica)["snapshot"]


def test_replicas_follow_ingestion_and_deletion_and_start_from_the_snapshot(cluster: dict) -> None:
    _ingest(cluster)
    with _replica(cluster, "a") as a, _replica(cluster, "b") as b:
        for replica in (a, b):  # empty data directories: both started from the snapshot, nothing re-analysed
            assert _updates(replica) == {"snapshot": 1.0, "sync": 0.0}
            assert _lexical_check(replica)["ok"]
        wlan = _source_titled(a, WLAN_QUESTION, "WLAN für die Innenstadt von Lindenfeld")
        assert wlan in _sources(b, WLAN_QUESTION)
        assert not _type_found(a, WEBTALK_QUESTION, "webtalk")

        (cluster["corpus"] / "frequenz.vtt").write_text(TRANSCRIPT, encoding="utf-8")
        _ingest(cluster)
        committed = time.monotonic()
        waiting = {"a": a, "b": b}
        while waiting and time.monotonic() - committed < BOUND_SECONDS:
            waiting = {n: r for n, r in waiting.items() if not _type_found(r, WEBTALK_QUESTION, "webtalk")}
            time.sleep(0.05)
        assert not waiting, f"nach {BOUND_SECONDS} s noch ohne den neuen Abschnitt: {sorted(waiting)}"

        (cluster["corpus"] / "wlan.md").unlink()
        _ingest(cluster, "--prune")
        deadline = time.monotonic() + 2.0  # from the moment of the commit on, also before the replicas followed
        while time.monotonic() < deadline:
            for replica in (a, b):
                assert wlan not in _sources(replica, WLAN_QUESTION)
        assert _wait_for_snapshots(a, 3) == _wait_for_snapshots(b, 3) == 3.0  # start, webtalk, deletion

    # a replica that has not followed yet (long poll): the deleted document's chunks are still in its lexical index
    with _replica(cluster, "c", poll_seconds=60) as c:
        assert _updates(c) == {"snapshot": 1.0, "sync": 0.0}
        survey = _source_titled(c, "Passantenbefragung Marktheide Sitzgelegenheiten",
                                "Passantenbefragung in Marktheide")
        (cluster["corpus"] / "befragung.md").unlink()
        _ingest(cluster, "--prune")
        behind = _lexical_check(c)
        assert not behind["ok"] and "hinter der veröffentlichten Version" in behind["detail"]
        assert survey not in _sources(c, "Passantenbefragung Marktheide Sitzgelegenheiten")

    # the snapshots are gone: a new replica syncs from the store instead
    with sqlite3.connect(cluster["state"]) as connection:
        connection.execute("DELETE FROM index_snapshot_parts")
    with _replica(cluster, "d") as d:
        assert _updates(d) == {"snapshot": 0.0, "sync": 1.0}
        assert _lexical_check(d)["ok"]
        assert _type_found(d, WEBTALK_QUESTION, "webtalk")
        assert not _sources(d, WLAN_QUESTION) & {wlan, survey}
