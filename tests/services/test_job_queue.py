"""The shared job queue with real processes: Redis (Debian's redis-server), a Chroma server, `stadtretter worker`
processes (tests/worker_process.py) and the state database (an SQLite file shared on this machine).

Upload jobs queued through the content service run on a worker; a worker killed with -9 in the middle of a job
hands it to another one within the heartbeat time (attempts = 2) and the index then equals a clean ingestion; a job
whose worker dies twice fails with the German reason.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from core.settings import Settings
from services.container import Services
from services.job_queue import RedisJobQueue
from services.jobs import INTERRUPTED, Job, MAX_ATTEMPTS
from services.uploads import UploadMetadata
from tests.conftest import REPO
from tests.helpers import HashEmbeddings
from tests.redis_support import RedisServer, redis_server  # noqa: F401 - fixture

pytestmark = pytest.mark.server

HEARTBEAT_SECONDS = 3.0
EMBED_DELAY = 0.6  # seconds per embedding batch in the workers: a job of FILES files runs for several seconds
FILES = 6


def _article(n: int) -> bytes:
    words = " ".join(f"Quartiersbegriff{n}x{i}" for i in range(40))
    return (f"---\ntitle: Quartiersartikel {n}\n---\n\n# Abschnitt {n}\n\nAuenstadt erprobt Maßnahme {n} im Quartier. "
            f"{words}\n").encode()


UPLOAD = [(f"quartier-{n}.md", _article(n)) for n in range(FILES)]


class Worker:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self.handle = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen([sys.executable, "-m", "tests.worker_process", str(EMBED_DELAY)], cwd=REPO,
                                        env=env, stdout=self.handle, stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while "Arbeitsprozess bereit" not in self.text():
            assert self.process.poll() is None, f"Arbeitsprozess beendet: {self.text()[-2000:]}"
            assert time.monotonic() < deadline, "Arbeitsprozess nicht bereit"
            time.sleep(0.2)

    def took(self, job_id: str, attempt: int) -> bool:
        return f"Auftrag {job_id} (upload) begonnen, Versuch {attempt} " in self.text()

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.handle.close()


@pytest.fixture
def cluster(tmp_path: Path, redis_server: RedisServer, chroma_server: str):  # noqa: F811
    """Settings of the queueing side and a way to start workers with the same settings. The data directory lies in
    the corpus folder, so stored uploads get the same source ids as in the clean reference run."""
    root = tmp_path / "root"
    values = {"data_dir": root / "data", "corpus_dir": root, "chroma_url": chroma_server,
              "collection": f"queue-{uuid.uuid4().hex[:8]}", "redis_url": redis_server.url,
              "worker_heartbeat_seconds": HEARTBEAT_SECONDS}
    settings = Settings(_env_file=None, **values)
    env = {key: value for key, value in os.environ.items() if not key.startswith("STADTRETTER_")}
    env |= {f"STADTRETTER_{key.upper()}": str(value) for key, value in values.items()} | {"PYTHONPATH": str(REPO)}
    env["STADTRETTER_DATABASE_URL"] = settings.state_database_url  # the workers share this test's state database
    workers: list[Worker] = []

    def start(ready: bool = True) -> Worker:
        worker = Worker(env, tmp_path / f"worker-{len(workers) + 1}.log")
        workers.append(worker)
        if ready:
            worker.wait_ready()
        return worker

    services = Services(settings, embeddings=HashEmbeddings(), phase_tagger=None)
    yield services, start
    for worker in workers:
        worker.stop()


def _wait(services: Services, job_id: str, until, timeout: float = 120) -> Job:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while True:
        job = services.jobs.get(job_id)
        if until(job):
            return job
        assert time.monotonic() < deadline, f"Auftrag {job_id}: {job}"
        time.sleep(0.1)


def _holder(workers: list[Worker], job_id: str, attempt: int) -> Worker:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for worker in workers:
            if worker.took(job_id, attempt):
                return worker
        time.sleep(0.1)
    raise AssertionError(f"kein Arbeitsprozess hat Auftrag {job_id} (Versuch {attempt}) begonnen")


def _mid_job(job: Job, attempt: int) -> bool:
    return job.status == "running" and job.attempts == attempt and 2 <= job.progress_done < FILES


def _index(services: Services) -> tuple[list[str], int]:
    ids = sorted(chunk_id for ids, *_ in services.store.iter_all() for chunk_id in ids)
    return ids, services.store.count()


def _clean_ingestion(tmp_path: Path) -> tuple[list[str], int]:
    """The same upload on one machine without Redis (today's default), never interrupted."""
    root = tmp_path / "clean" / "root"
    settings = Settings(_env_file=None, data_dir=root / "data", corpus_dir=root, collection="clean")
    services = Services(settings, embeddings=HashEmbeddings(), phase_tagger=None)
    job = services.content.queue_upload(UPLOAD, UploadMetadata(type="article"))
    services.job_worker().run_next()
    assert services.jobs.get(job.id).status == "done"
    return _index(services)


def test_a_job_whose_worker_is_killed_is_finished_by_another_and_equals_a_clean_ingestion(
    tmp_path: Path, cluster
) -> None:
    services, start = cluster
    workers = [start(), start()]
    job = services.content.queue_upload(UPLOAD, UploadMetadata(type="article"), created_by="redaktion")
    _wait(services, job.id, lambda j: _mid_job(j, 1))
    first = _holder(workers, job.id, 1)
    first.kill()
    killed_at = time.time()
    other = next(worker for worker in workers if worker is not first)

    retried = _wait(services, job.id, lambda j: j.attempts == 2)
    redelivery = retried.started_at - killed_at
    print(f"\nneu zugestellt nach {redelivery:.1f} s (Herzschlag {HEARTBEAT_SECONDS:.0f} s)")
    assert redelivery <= HEARTBEAT_SECONDS + 3.0
    done = _wait(services, job.id, lambda j: j.status in ("done", "failed"))
    print(f"fertig {done.finished_at - killed_at:.1f} s nach dem kill -9")
    assert (done.status, done.attempts, done.error) == ("done", MAX_ATTEMPTS, None), done
    assert other.took(job.id, 2) and not done.result["failed"]
    # files the first attempt finished count as unchanged in the second one
    assert done.result["added"] + done.result["unchanged"] == FILES and done.result["added"] < FILES
    assert services.jobs.staged_files(job.id) == [] and services.jobs.queue_length() == 0

    ids, count = _index(services)
    assert len(ids) == len(set(ids)) == count
    assert (ids, count) == _clean_ingestion(tmp_path)


def test_a_job_whose_worker_dies_twice_fails_with_the_reason(cluster) -> None:
    services, start = cluster
    workers = [start(), start()]
    job = services.content.queue_upload(UPLOAD, UploadMetadata(type="article"))
    for attempt in (1, 2):
        _wait(services, job.id, lambda j, attempt=attempt: _mid_job(j, attempt))
        _holder(workers, job.id, attempt).kill()
    start(ready=False)  # the only live worker now: it finds the dead one's job and ends it
    failed = _wait(services, job.id, lambda j: j.status in ("done", "failed"))
    assert (failed.status, failed.attempts, failed.error) == ("failed", MAX_ATTEMPTS, INTERRUPTED)
    assert services.jobs.staged_files(job.id) == []


def test_a_second_job_waits_for_a_free_worker_and_both_are_done(cluster) -> None:
    services, start = cluster
    jobs = [services.content.queue_upload(UPLOAD[:1], UploadMetadata()),
            services.content.queue_upload(UPLOAD[1:2], UploadMetadata())]
    # the queueing process wrote no file: the worker gets the uploads from the state database, on any machine
    assert not services.settings.uploads_path.exists() and services.jobs.queue_length() == 2
    start()
    finished = [_wait(services, job.id, lambda j: j.status in ("done", "failed")) for job in jobs]
    assert [(job.status, job.attempts) for job in finished] == [("done", 1), ("done", 1)]
    assert finished[0].finished_at <= finished[1].started_at  # one worker, one job at a time


def test_a_job_id_whose_taking_fails_is_delivered_again(redis_server: RedisServer) -> None:  # noqa: F811
    """What escapes the job runner (e.g. the state database briefly down) is retried by the queue."""
    queue = RedisJobQueue(redis_server.url, HEARTBEAT_SECONDS, min_backoff_ms=100)
    calls: list[tuple[str, str]] = []
    stop = threading.Event()

    def runner(job_id: str, token: str) -> None:
        calls.append((job_id, token))
        if len(calls) == 1:
            raise RuntimeError("Zustandsdatenbank nicht erreichbar")
        stop.set()

    queue.dispatch("job-1", "t1")
    worker = threading.Thread(target=queue.work, args=(runner, stop))
    worker.start()
    worker.join(timeout=30)
    stop.set()
    worker.join(timeout=30)
    assert calls == [("job-1", "t1"), ("job-1", "t1")]


def test_the_worker_sends_waiting_jobs_again(redis_server: RedisServer) -> None:  # noqa: F811
    """A job whose message was lost (nothing dispatched here) reaches a worker through the periodic resend."""
    queue = RedisJobQueue(redis_server.url, HEARTBEAT_SECONDS)
    calls: list[tuple[str, str]] = []
    stop = threading.Event()
    lost = [("job-2", "t2")]

    def runner(job_id: str, token: str) -> None:
        calls.append((job_id, token))
        stop.set()

    def resend() -> list[tuple[str, str]]:
        renewed, lost[:] = list(lost), []
        return renewed

    worker = threading.Thread(target=queue.work, args=(runner, stop, resend, 0.2))
    worker.start()
    worker.join(timeout=30)
    stop.set()
    worker.join(timeout=30)
    assert calls == [("job-2", "t2")]
