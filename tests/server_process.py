"""The app in a real server process (uvicorn) for API tests, with the fast test embedding (HashEmbeddings).

    with ServerProcess(settings_env) as server:     # STADTRETTER_* variables of the server
        httpx.get(server.url + "/healthz")

Run as `python -m tests.server_process PORT`: settings come from the environment, as for `stadtretter serve`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[1]


class ServerProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PYTHONPATH": str(REPO), **env}
        self.log_path = log
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "ServerProcess":
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in __exit__
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.server_process", str(self.port)], cwd=REPO, env=self.env,
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, timeout=60, process=self.process)
        httpx.get(f"{self.url}/healthz", timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def main(port: int) -> None:
    import uvicorn

    from api.app import create_app
    from core.settings import Settings
    from services.container import Services
    from tests.helpers import HashEmbeddings, hash_answerability

    settings = Settings()
    services = Services(settings, embeddings=HashEmbeddings(), phase_tagger=None)
    hash_answerability(services.answerer)  # a bag of words is no language model (as in tests/browser/conftest.py)
    uvicorn.run(create_app(settings, services), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main(int(sys.argv[1]))
