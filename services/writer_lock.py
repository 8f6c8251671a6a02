"""One writer at a time: CLI ingest, upload jobs, imports and reindex take this lock before they change the index.

An advisory `flock` on a file in the data directory: the kernel releases it when the holding process dies, so a
crashed writer never blocks the next one. Readers (questions, search) never take it: Chroma, the registry and the
lexical index stay readable while a writer works.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = "writer.lock"
POLL_SECONDS = 0.2


class WriterBusy(RuntimeError):
    """Another writer held the lock for longer than the caller wanted to wait. German message."""


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
                    raise WriterBusy(
                        f"Ein anderer Schreibvorgang ({_holder(fd)}) läuft noch; bitte später erneut versuchen"
                    ) from None
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
