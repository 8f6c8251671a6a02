"""The writer lock: one writer at a time, across threads and processes; a dead holder does not block."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from redis import Redis

from services.writer_lock import LOCK_NAME, WriterBusy, redis_writer_lock, writer_lock
from tests.conftest import free_port
from tests.redis_support import RedisServer, redis_server  # noqa: F401 - fixture


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


# --- the Redis lock shared by several machines (STADTRETTER_REDIS_URL) ------------------------------------------

REDIS_LOCK = "stadtretter:writer-lock:test"


def test_redis_lock_excludes_a_second_writer_is_renewed_and_lapses_when_its_holder_dies(
    tmp_path: Path, redis_server: RedisServer  # noqa: F811
) -> None:
    client = Redis.from_url(redis_server.url)
    told: list[str] = []
    with redis_writer_lock(client, REDIS_LOCK, ttl_seconds=1.0, wait_seconds=0):
        time.sleep(1.5)  # longer than its time to live: the holder's renewal keeps it
        with pytest.raises(WriterBusy, match=r"Ein anderer Schreibvorgang \(Prozess \d+ auf .+\) läuft noch"):
            with redis_writer_lock(client, REDIS_LOCK, 1.0, wait_seconds=0.3, on_wait=told.append):
                pass
    assert told and told[0].startswith("Prozess ")
    with redis_writer_lock(client, REDIS_LOCK, 1.0, wait_seconds=0):  # released on exit
        pass

    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; from redis import Redis; from services.writer_lock import "
         f"redis_writer_lock\nwith redis_writer_lock(Redis.from_url({redis_server.url!r}), {REDIS_LOCK!r}, 1.0, 0):\n"
         "    print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert holder.stdout.readline().strip() == b"held"
        with pytest.raises(WriterBusy):
            with redis_writer_lock(client, REDIS_LOCK, 1.0, wait_seconds=0):
                pass
        holder.kill()
        holder.wait(10)
        started = time.monotonic()
        with redis_writer_lock(client, REDIS_LOCK, 1.0, wait_seconds=5):  # lapsed after its time to live
            assert time.monotonic() - started <= 1.5
    finally:
        holder.kill()
        holder.wait(10)


def test_an_unreachable_redis_refuses_the_writer_in_german() -> None:
    client = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(WriterBusy, match="Schreibsperre in Redis ist nicht erreichbar"):
        with redis_writer_lock(client, REDIS_LOCK, 1.0, wait_seconds=0):
            pass
