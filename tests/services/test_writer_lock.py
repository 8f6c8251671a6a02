"""The writer lock: one writer at a time, across threads and processes; a dead holder does not block."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from services.writer_lock import LOCK_NAME, WriterBusy, writer_lock


def test_second_writer_waits_then_gives_up_with_a_german_message(tmp_path: Path) -> None:
    told: list[str] = []
    with writer_lock(tmp_path, 0):
        with pytest.raises(WriterBusy, match="anderer Schreibvorgang"):
            with writer_lock(tmp_path, 0.3, on_wait=told.append):
                pass
    assert told and "Prozess" in told[0]
    with writer_lock(tmp_path, 0):  # released on exit
        pass


def test_writers_in_threads_never_overlap(tmp_path: Path) -> None:
    inside: list[int] = []
    overlaps: list[int] = []

    def write() -> None:
        with writer_lock(tmp_path, 10):
            inside.append(1)
            if len(inside) > 1:
                overlaps.append(1)
            time.sleep(0.05)
            inside.pop()

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not overlaps


def test_a_killed_holder_releases_the_lock(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; from pathlib import Path; from services.writer_lock import writer_lock\n"
         f"with writer_lock(Path({str(tmp_path)!r}), 0):\n    print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert holder.stdout.readline().strip() == b"held"
        with pytest.raises(WriterBusy):
            with writer_lock(tmp_path, 0):
                pass
        holder.kill()
        holder.wait(10)
        with writer_lock(tmp_path, 2):  # the kernel released the dead holder's lock
            assert (tmp_path / LOCK_NAME).exists()
    finally:
        holder.kill()
