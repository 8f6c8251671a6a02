"""One writer at a time: CLI ingest, upload jobs, imports and reindex take this lock before they change the index.

One machine (the default): an advisory `flock` on a file in the data directory; the kernel releases it when the
holding process dies, so a crashed writer never blocks the next one. Several machines (STADTRETTER_REDIS_URL): a
Redis lock (redis-py) named after the collection, with a time to live that a thread of the holder renews; when the
holder dies, the lock lapses after at most that time (Settings.worker_heartbeat_seconds). Readers (questions,
search) never take it: Chroma, the registry and the lexical index stay readable while a writer works.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from redis import Redis
from redis.exceptions import LockError, RedisError

logger = logging.getLogger("stadtretter.writer_lock")

LOCK_NAME = "writer.lock"
POLL_SECONDS = 0.2


class WriterBusy(RuntimeError):
    """Another writer held the lock for longer than the caller wanted to wait. German message."""


def _busy(holder: str) -> WriterBusy:
    return WriterBusy(f"Ein anderer Schreibvorgang ({holder}) läuft noch; bitte später erneut versuchen")


@contextmanager
def writer_lock(
    data_dir: Path, wait_seconds: float, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the data directory's writer lock for the block. Waits up to `wait_seconds` (0 = do not wait);
    `on_wait` is told once who holds it, e.g. to print "waiting for ..." in the CLI."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_NAME
    # A separate open file description per holder: flock then also excludes other threads of this process.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_seconds
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told and on_wait is not None:
                    on_wait(_holder(fd))
                    told = True
                if time.monotonic() >= deadline:
                    raise _busy(_holder(fd)) from None
                time.sleep(POLL_SECONDS)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"Prozess {os.getpid()}".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    """Who holds the lock, as written by the holder (best effort: only for messages)."""
    try:
        return os.pread(fd, 100, 0).decode("utf-8", "replace").strip() or "unbekannt"
    except OSError:
        return "unbekannt"


@contextmanager
def redis_writer_lock(
    client: Redis, name: str, ttl_seconds: float, wait_seconds: float,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """The writer lock shared by all machines: like `writer_lock`, on Redis key `name`. The holder renews it every
    third of `ttl_seconds`; a dead holder's lock lapses after `ttl_seconds`."""
    holder = f"Prozess {os.getpid()} auf {socket.gethostname()}"
    token = f"{holder} #{uuid.uuid4().hex[:8]}"  # unique per holder; read back for the messages of the others
    lock = client.lock(name, timeout=ttl_seconds, thread_local=False)
    deadline = time.monotonic() + wait_seconds
    told = False
    while not _try_acquire(lock, token):
        if not told and on_wait is not None:
            on_wait(_redis_holder(client, name))
            told = True
        if time.monotonic() >= deadline:
            raise _busy(_redis_holder(client, name))
        time.sleep(POLL_SECONDS)
    stop = threading.Event()
    renewal = threading.Thread(target=_renew, args=(lock, ttl_seconds / 3, stop), name="writer-lock-renewal",
                               daemon=True)
    renewal.start()
    try:
        yield
    finally:
        stop.set()
        renewal.join()
        try:
            lock.release()
        except LockError:
            logger.error("Schreibsperre %s war schon abgelaufen (Erneuerung ausgefallen?)", name)


def _try_acquire(lock, token: str) -> bool:  # noqa: ANN001 - redis.lock.Lock
    try:
        return lock.acquire(blocking=False, token=token)
    except RedisError as exc:  # e.g. Redis down: no writer can go ahead, and the caller says so in German
        message = f"Die Schreibsperre in Redis ist nicht erreichbar ({exc}); bitte später erneut versuchen"
        raise WriterBusy(message) from None


def _renew(lock, interval: float, stop: threading.Event) -> None:  # noqa: ANN001 - redis.lock.Lock
    while not stop.wait(interval):
        try:
            lock.reacquire()
        except Exception as exc:  # noqa: BLE001 - lost or Redis unreachable: say so, the write itself goes on
            logger.error("Schreibsperre konnte nicht verlängert werden: %s", exc)


def _redis_holder(client: Redis, name: str) -> str:
    try:
        value = client.get(name)
    except Exception:  # noqa: BLE001 - only for messages
        return "unbekannt"
    if not value:
        return "unbekannt"
    return (value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)).split(" #")[0]
