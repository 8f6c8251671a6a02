"""A real Redis for tests: Debian's redis-server (`make redis`) on a free local port in a temporary directory,
without persistence.

    with RedisServer(tmp_path) as redis_server:
        settings = Settings(redis_url=redis_server.url, ...)
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from redis import Redis

from tests.conftest import free_port, wait_for_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "RedisServer":
        if not Path(REDIS_SERVER).exists():
            raise RuntimeError("redis-server fehlt: bitte `make redis` ausführen (Debian-Paket redis-server)")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log = open(self.directory / "redis.log", "wb")  # noqa: SIM115 - closed in __exit__
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--save", "", "--appendonly", "no", "--protected-mode", "yes"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, timeout=30, process=self.process)
        client = Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while not client.ping() and time.monotonic() < deadline:
            time.sleep(0.1)
        client.close()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture
def redis_server(tmp_path: Path):
    with RedisServer(tmp_path / "redis") as server:
        yield server
