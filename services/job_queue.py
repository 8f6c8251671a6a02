"""The shared job queue for several machines: dramatiq on Redis (STADTRETTER_REDIS_URL).

API processes only `dispatch` a job id (the job itself, with its staged files, is in the state database);
`stadtretter worker` processes `work` through the queue, one job at a time each. Why dramatiq: its Redis broker
keeps a taken message in the worker's acknowledgement set until the job ends, every worker sends a heartbeat with
each fetch (also while a job runs: the delay-queue consumer keeps fetching), and a worker fetching messages moves
the unacknowledged messages of a worker silent for `heartbeat_seconds` back to the queue. So a job whose worker
was killed goes to another worker after heartbeat_seconds plus one fetch interval, however long the job runs.
A job's own failure never leaves the worker (it ends `failed` in the jobs table); attempts are counted there
(`JobStore.claim`), so "retried once, then failed" holds however often the message comes back. dramatiq's retries
only cover what escapes: the state database briefly unreachable while a job is taken or finished.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import dramatiq
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker
from dramatiq.middleware import Retries

logger = logging.getLogger("stadtretter.job_queue")

NAMESPACE = "stadtretter"
QUEUE_NAME = "jobs"
ACTOR_NAME = "run_job"
FETCH_INTERVAL_MS = 1000  # longest pause between two fetches (and heartbeats) of an idle worker
STOP_TIMEOUT_MS = 600_000  # on SIGTERM a running job may finish within this time
LOST_AFTER_SECONDS = 600.0  # a job queued this long is sent again (its message may be lost); see JobStore
INFRASTRUCTURE_RETRIES = 10  # with backoff from min_backoff_ms up to a minute: rides out a database restart


class RedisJobQueue:
    def __init__(self, url: str, heartbeat_seconds: float, min_backoff_ms: int = 1000) -> None:
        # Maintenance (finding dead workers) on every fetch instead of dramatiq's one in a thousand: it bounds the
        # redelivery time, and a handful of workers fetching once a second costs Redis nothing.
        self.broker = RedisBroker(
            url=url, namespace=NAMESPACE, heartbeat_timeout=int(heartbeat_seconds * 1000),
            middleware=[Retries(max_retries=INFRASTRUCTURE_RETRIES, min_backoff=min_backoff_ms, max_backoff=60_000)],
            maintenance_chance=MAINTENANCE_SCALE,
        )
        self._runner: Callable[[str, str], None] | None = None
        self.actor = dramatiq.Actor(self._perform, broker=self.broker, actor_name=ACTOR_NAME, queue_name=QUEUE_NAME,
                                    priority=0, options={})

    def dispatch(self, job_id: str, token: str) -> None:
        """Queue a job (already stored in the jobs table with `token`) for the workers."""
        self.actor.send(job_id, token)

    def work(self, runner: Callable[[str, str], None], stop: threading.Event,
             resend: Callable[[], list[tuple[str, str]]] | None = None, resend_seconds: float = LOST_AFTER_SECONDS,
             ) -> None:
        """Run delivered (job id, token) with `runner`, one at a time, until `stop` is set; a running job is finished
        first. Every `resend_seconds`, what `resend` returns is sent again."""
        self._runner = runner
        worker = dramatiq.Worker(self.broker, worker_threads=1, worker_timeout=FETCH_INTERVAL_MS)
        worker.queue_prefetch = 1  # take one job at a time: a second one waits in the queue for another worker
        worker.start()
        try:
            while not stop.wait(resend_seconds):
                self._resend(resend)
        finally:
            worker.stop(timeout=STOP_TIMEOUT_MS)
            self.broker.close()

    def _resend(self, resend: Callable[[], list[tuple[str, str]]] | None) -> None:
        if resend is None:
            return
        try:
            for job_id, token in resend():
                logger.warning("Auftrag %s wartet zu lange: erneut in die Warteschlange gelegt", job_id)
                self.dispatch(job_id, token)
        except Exception:  # noqa: BLE001 - the database or Redis briefly away: next round
            logger.exception("Wartende Aufträge nicht prüfbar")

    def _perform(self, job_id: str, token: str) -> None:
        if self._runner is None:  # only processes that called `work` consume messages
            raise RuntimeError("Dieser Prozess führt keine Aufträge aus")
        self._runner(job_id, token)
