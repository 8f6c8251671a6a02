"""Background jobs (upload, import, reindex): stored in the state database, run by a worker thread.

A request only queues a job and answers 202 with its id; the worker takes queued jobs one after another and
records status, progress and the per-file result (the shape of `stadtretter ingest --json`). A job found `running`
when the worker starts was interrupted by a dead process: it is queued once more, and failed the second time.
The worker is a thread in the server process for now; the job table is what a shared queue will read later.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, func, select, update
from sqlalchemy.engine import Engine

from services.writer_lock import WriterBusy

logger = logging.getLogger("stadtretter.jobs")

JobKind = Literal["upload", "import", "reindex"]
MAX_ATTEMPTS = 2  # a job interrupted by a dead process runs once more
INTERRUPTED = "Der Auftrag wurde unterbrochen (Server beendet) und auch beim zweiten Versuch nicht abgeschlossen"

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


def _job(row: Any) -> Job:
    data = dict(row._mapping)
    data["params"] = json.loads(data["params"] or "{}")
    data["result"] = json.loads(data["result"]) if data["result"] else None
    return Job(**data)


class JobStore:
    """Data access for jobs. Every status change is one conditional UPDATE, so two workers never take one job."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, kind: JobKind, params: dict[str, Any], created_by: str | None = None) -> Job:
        job = Job(id=uuid.uuid4().hex, kind=kind, status="queued", params=params, created_by=created_by,
                  created_at=time.time())
        with self.engine.begin() as db:
            db.execute(jobs_table.insert().values(
                id=job.id, kind=kind, status="queued", params=json.dumps(params, ensure_ascii=False),
                progress_done=0, progress_total=0, attempts=0, created_by=created_by, created_at=job.created_at,
            ))
        return job

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
                    .values(status="running", started_at=time.time(), attempts=jobs_table.c.attempts + 1)
                ).rowcount
                if taken:
                    break
            else:
                return None
        return self.get(job_id)

    def progress(self, job_id: str, done: int, total: int) -> None:
        with self.engine.begin() as db:
            db.execute(update(jobs_table).where(jobs_table.c.id == job_id)
                       .values(progress_done=done, progress_total=total))

    def finish(self, job_id: str, result: dict[str, Any] | None, error: str | None = None) -> None:
        values: dict[str, Any] = {"status": "failed" if error else "done", "error": error, "finished_at": time.time(),
                                  "result": json.dumps(result, ensure_ascii=False) if result is not None else None}
        with self.engine.begin() as db:
            db.execute(update(jobs_table).where(jobs_table.c.id == job_id).values(**values))

    def recover_interrupted(self) -> list[str]:
        """Jobs left `running` by a dead process: queued again once, failed after that. Returns their ids."""
        with self.engine.begin() as db:
            rows = db.execute(select(jobs_table.c.id, jobs_table.c.attempts)
                              .where(jobs_table.c.status == "running")).all()
            for job_id, attempts in rows:
                if attempts < MAX_ATTEMPTS:
                    values: dict[str, Any] = {"status": "queued", "started_at": None}
                else:
                    values = {"status": "failed", "error": INTERRUPTED, "finished_at": time.time()}
                db.execute(update(jobs_table).where(jobs_table.c.id == job_id).values(**values))
        return [job_id for job_id, _ in rows]


ProgressCallback = Callable[[int, int], None]
Handler = Callable[[dict[str, Any], ProgressCallback], dict[str, Any]]


class JobFailed(Exception):
    """A job cannot be done as a whole (German message); the partial result, if any, is kept."""

    def __init__(self, message: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class JobWorker:
    """Runs queued jobs one at a time in a daemon thread. `handlers` map a job kind to the function doing it."""

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
        handler = self.handlers.get(job.kind)
        try:
            if handler is None:
                raise JobFailed(f"Unbekannte Auftragsart „{job.kind}“")
            result = handler(job.params, lambda done, total: self.store.progress(job.id, done, total))
        except JobFailed as exc:
            self.store.finish(job.id, exc.result, str(exc))
        except WriterBusy as exc:
            self.store.finish(job.id, None, str(exc))
        except Exception as exc:  # noqa: BLE001 - a job must end as failed with a message, never stay running
            logger.exception("Auftrag %s (%s) fehlgeschlagen", job.id, job.kind)
            self.store.finish(job.id, None, f"Unerwarteter Fehler: {exc}")
        else:
            self.store.finish(job.id, result)
        return True
