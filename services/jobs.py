"""Background jobs (upload, import, reindex): stored in the state database, run by a worker.

A request only queues a job and answers 202 with its id; uploaded files are staged in the state database with it
(table `job_files`), so any worker can read them, and deleted when the job ends. The table records status,
progress, attempts and the per-file result (the shape of `stadtretter ingest --json`): it is what admins see.

Who runs a job: without Redis, a `JobWorker` thread in the server process polls the table; a job found `running`
when it starts was interrupted by a dead process and is queued once more. With Redis, the shared queue
(services/job_queue.py) delivers job ids to `stadtretter worker` processes and delivers a dead worker's job again;
`claim` counts that as the second attempt, and runs a job only for the message carrying its current
`dispatch_token` (a job sent again because its message seemed lost gets a new one). Either way a job runs at most
MAX_ATTEMPTS times, then fails with INTERRUPTED.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import (
    Column, Float, ForeignKey, Integer, LargeBinary, MetaData, String, Table, Text, delete, func, select, update,
)
from sqlalchemy.engine import Engine

from services.writer_lock import WriterBusy

logger = logging.getLogger("stadtretter.jobs")

JobKind = Literal["upload", "import", "reindex"]
MAX_ATTEMPTS = 2  # a job interrupted by a dead process runs once more
INTERRUPTED = (
    "Der Auftrag wurde unterbrochen (Server oder Arbeitsprozess beendet) und auch beim zweiten Versuch nicht "
    "abgeschlossen"
)

metadata = MetaData()
jobs_table = Table(
    "jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("params", Text, nullable=False),  # JSON: what to do (stored files, URL)
    Column("progress_done", Integer, nullable=False, default=0),
    Column("progress_total", Integer, nullable=False, default=0),
    Column("result", Text),  # JSON: the ingest report with per-file results
    Column("error", Text),  # German, when the job as a whole failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_by", String(200)),
    Column("created_at", Float, nullable=False, index=True),
    Column("started_at", Float),
    Column("finished_at", Float),
    # The queue message that may run the job (migration 0005_job_queue); a job sent again gets a new one, and an
    # older message still in the queue is then ignored.
    Column("dispatch_token", String(32)),
)
# Uploaded files of a job until it ends (migration 0005_job_queue): the worker may run on another machine.
job_files_table = Table(
    "job_files",
    metadata,
    Column("job_id", String(32), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("data", LargeBinary, nullable=False),
)


@dataclass
class Job:
    id: str
    kind: str
    status: str
    params: dict[str, Any]
    progress_done: int = 0
    progress_total: int = 0
    result: dict[str, Any] | None = None
    error: str | None = None
    attempts: int = 0
    created_by: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    dispatch_token: str | None = None


def _job(row: Any) -> Job:
    data = dict(row._mapping)
    data["params"] = json.loads(data["params"] or "{}")
    data["result"] = json.loads(data["result"]) if data["result"] else None
    return Job(**data)


class JobStore:
    """Data access for jobs. Every status change is one conditional UPDATE, so two workers never take one job."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, kind: JobKind, params: dict[str, Any], created_by: str | None = None,
               files: Sequence[tuple[str, bytes]] = ()) -> Job:
        """A queued job; `files` (name, content) are staged with it in one transaction."""
        job = Job(id=uuid.uuid4().hex, kind=kind, status="queued", params=params, created_by=created_by,
                  created_at=time.time(), dispatch_token=uuid.uuid4().hex)
        with self.engine.begin() as db:
            db.execute(jobs_table.insert().values(
                id=job.id, kind=kind, status="queued", params=json.dumps(params, ensure_ascii=False),
                progress_done=0, progress_total=0, attempts=0, created_by=created_by, created_at=job.created_at,
                dispatch_token=job.dispatch_token,
            ))
            if files:
                db.execute(job_files_table.insert(), [
                    {"job_id": job.id, "position": position, "name": name, "data": data}
                    for position, (name, data) in enumerate(files)
                ])
        return job

    def staged_files(self, job_id: str) -> list[tuple[str, bytes]]:
        query = (select(job_files_table.c.name, job_files_table.c.data)
                 .where(job_files_table.c.job_id == job_id).order_by(job_files_table.c.position))
        with self.engine.connect() as db:
            return [(name, bytes(data)) for name, data in db.execute(query)]

    def queue_length(self) -> int:
        """Jobs waiting for a worker (for the metrics)."""
        return self._count("queued")

    def running_count(self) -> int:
        """Jobs a worker is running now (for the metrics)."""
        return self._count("running")

    def _count(self, status: str) -> int:
        with self.engine.connect() as db:
            return db.execute(select(func.count()).select_from(jobs_table)
                              .where(jobs_table.c.status == status)).scalar_one()

    def get(self, job_id: str) -> Job | None:
        with self.engine.connect() as db:
            row = db.execute(select(jobs_table).where(jobs_table.c.id == job_id)).first()
        return _job(row) if row else None

    def recent(self, limit: int = 50) -> list[Job]:
        query = select(jobs_table).order_by(jobs_table.c.created_at.desc()).limit(limit)
        with self.engine.connect() as db:
            return [_job(row) for row in db.execute(query)]

    def claim_next(self) -> Job | None:
        """Take the oldest queued job (queued → running), or None."""
        with self.engine.begin() as db:
            candidates = db.execute(
                select(jobs_table.c.id).where(jobs_table.c.status == "queued")
                .order_by(jobs_table.c.created_at).limit(5)
            ).scalars().all()
            for job_id in candidates:
                taken = db.execute(
                    update(jobs_table).where(jobs_table.c.id == job_id, jobs_table.c.status == "queued")
                    .values(status="running", started_at=time.time(), attempts=jobs_table.c.attempts + 1,
                            progress_done=0)
                ).rowcount
                if taken:
                    break
            else:
                return None
        return self.get(job_id)

    def claim(self, job_id: str, token: str) -> Job | None:
        """Take a job the shared queue delivered with `token`: queued → running. A delivered job already `running`
        lost its worker (the queue delivers a dead worker's job again): it runs once more while attempts remain,
        else it fails with INTERRUPTED. None when there is nothing to run (unknown, finished, just failed, or the
        message was replaced by a newer one)."""
        with self.engine.begin() as db:
            row = db.execute(select(jobs_table.c.status, jobs_table.c.attempts, jobs_table.c.dispatch_token)
                             .where(jobs_table.c.id == job_id)).first()
            if row is None or row.status not in ("queued", "running") or row.dispatch_token != token:
                return None
            if row.status == "running" and row.attempts >= MAX_ATTEMPTS:
                self._fail_interrupted(db, job_id)
                return None
            taken = db.execute(
                update(jobs_table).where(jobs_table.c.id == job_id, jobs_table.c.status == row.status,
                                         jobs_table.c.attempts == row.attempts)
                .values(status="running", started_at=time.time(), attempts=row.attempts + 1,
                        progress_done=0)
            ).rowcount
        return self.get(job_id) if taken else None

    def redispatch_waiting(self, older_than_seconds: float) -> list[tuple[str, str]]:
        """Queued jobs waiting longer than that get a new token: (job id, token) to send again. Their message may
        have been lost (Redis restarted without persistence, an API process died between storing and sending); if
        it was not, it is ignored when it comes."""
        renewed = []
        with self.engine.begin() as db:
            waiting = db.execute(select(jobs_table.c.id).where(
                jobs_table.c.status == "queued", jobs_table.c.created_at < time.time() - older_than_seconds,
            )).scalars().all()
            for job_id in waiting:
                token = uuid.uuid4().hex
                if db.execute(update(jobs_table).where(jobs_table.c.id == job_id, jobs_table.c.status == "queued")
                              .values(dispatch_token=token)).rowcount:
                    renewed.append((job_id, token))
        return renewed

    def _fail_interrupted(self, db: Any, job_id: str) -> None:
        db.execute(update(jobs_table).where(jobs_table.c.id == job_id)
                   .values(status="failed", error=INTERRUPTED, finished_at=time.time()))
        db.execute(delete(job_files_table).where(job_files_table.c.job_id == job_id))

    def progress(self, job_id: str, done: int, total: int) -> None:
        with self.engine.begin() as db:
            db.execute(update(jobs_table).where(jobs_table.c.id == job_id)
                       .values(progress_done=done, progress_total=total))

    def finish(self, job_id: str, result: dict[str, Any] | None, error: str | None = None) -> None:
        values: dict[str, Any] = {"status": "failed" if error else "done", "error": error, "finished_at": time.time(),
                                  "result": json.dumps(result, ensure_ascii=False) if result is not None else None}
        with self.engine.begin() as db:
            db.execute(update(jobs_table).where(jobs_table.c.id == job_id).values(**values))
            db.execute(delete(job_files_table).where(job_files_table.c.job_id == job_id))

    def recover_interrupted(self) -> list[str]:
        """Jobs left `running` by a dead process: queued again once, failed after that. Returns their ids."""
        with self.engine.begin() as db:
            rows = db.execute(select(jobs_table.c.id, jobs_table.c.attempts)
                              .where(jobs_table.c.status == "running")).all()
            for job_id, attempts in rows:
                if attempts < MAX_ATTEMPTS:
                    db.execute(update(jobs_table).where(jobs_table.c.id == job_id)
                               .values(status="queued", started_at=None))
                else:
                    self._fail_interrupted(db, job_id)
        return [job_id for job_id, _ in rows]


ProgressCallback = Callable[[int, int], None]
Handler = Callable[[Job, ProgressCallback], dict[str, Any]]


class JobFailed(Exception):
    """A job cannot be done as a whole (German message); the partial result, if any, is kept."""

    def __init__(self, message: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class JobWorker:
    """Runs jobs one at a time: polling the table in a daemon thread (`start`, one machine), or as the shared queue
    delivers them (`run_delivered`, called by `stadtretter worker`). `handlers` map a job kind to its function."""

    store: JobStore
    handlers: dict[str, Handler]
    poll_seconds: float = 2.0  # a job queued by this process wakes the worker at once
    _wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        recovered = self.store.recover_interrupted()
        if recovered:
            logger.warning("Unterbrochene Aufträge nach Neustart: %s", ", ".join(recovered))
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="stadtretter-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        """A job was queued: look now instead of at the next poll."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_next()
            except Exception:  # noqa: BLE001 - e.g. the database is briefly unreachable: keep the worker alive
                logger.exception("Auftragsliste nicht lesbar; neuer Versuch in %s s", self.poll_seconds)
                busy = False
            if not busy:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()

    def run_next(self) -> bool:
        """Run one queued job; False when there was none."""
        job = self.store.claim_next()
        if job is None:
            return False
        self._run(job)
        return True

    def run_delivered(self, job_id: str, token: str) -> None:
        """Run a job the shared queue delivered (again, if its worker died)."""
        job = self.store.claim(job_id, token)
        if job is None:
            logger.info("Auftrag %s ist beendet, unbekannt oder neu versandt: Nachricht übergangen", job_id)
            return
        self._run(job)

    def _run(self, job: Job) -> None:
        logger.info("Auftrag %s (%s) begonnen, Versuch %s von %s", job.id, job.kind, job.attempts, MAX_ATTEMPTS)
        handler = self.handlers.get(job.kind)
        try:
            if handler is None:
                raise JobFailed(f"Unbekannte Auftragsart „{job.kind}“")
            result = handler(job, lambda done, total: self.store.progress(job.id, done, total))
        except JobFailed as exc:
            self.store.finish(job.id, exc.result, str(exc))
        except WriterBusy as exc:
            self.store.finish(job.id, None, str(exc))
        except Exception as exc:  # noqa: BLE001 - a job must end as failed with a message, never stay running
            logger.exception("Auftrag %s (%s) fehlgeschlagen", job.id, job.kind)
            self.store.finish(job.id, None, f"Unerwarteter Fehler: {exc}")
        else:
            self.store.finish(job.id, result)
