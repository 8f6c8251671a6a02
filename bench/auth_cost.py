"""What access control costs: Argon2id hash/verify at the configured cost (a login) and the per-request overhead of
resolving the caller (anonymous, API key, session cookie) on a cheap route (GET /v1/me), in-process.

    .venv/bin/python bench/auth_cost.py [--requests 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from services.container import Services


def per_request_ms(client: TestClient, headers: dict[str, str], requests: int) -> float:
    for _ in range(20):
        client.get("/v1/me", headers=headers)
    started = time.perf_counter()
    for _ in range(requests):
        client.get("/v1/me", headers=headers)
    return (time.perf_counter() - started) / requests * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    print(f"Last: {os.getloadavg()[0]:.2f} (1 min)")
    settings = Settings(_env_file=None, data_dir=Path(tempfile.mkdtemp()) / "data")
    hasher = PasswordHasher(time_cost=settings.password_hash_iterations, memory_cost=settings.password_hash_memory_kib)
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        hasher.verify(hasher.hash("ein-langes-Passwort"), "ein-langes-Passwort")
        timings.append((time.perf_counter() - started) / 2 * 1000)
    print(f"Argon2id (t={settings.password_hash_iterations}, m={settings.password_hash_memory_kib} KiB): "
          f"{statistics.median(timings):.0f} ms je Hash oder Prüfung (Median aus 5)")

    services = Services(settings)  # the embedding model is never loaded: /v1/me does not need it
    client = TestClient(create_app(settings, services))  # no lifespan: no model warm-up
    key = services.api_keys.create("bench", "ask").key
    services.accounts.add("bench", "admin", "ein-langes-Passwort")
    session = services.accounts.start_session(services.accounts.get("bench"))
    cookie = client.app.state.session_signer.sign(session.token)
    rows = {
        "anonym": {},
        "API-Schlüssel": {"Authorization": f"Bearer {key}"},
        "Sitzungs-Cookie": {"Cookie": f"stadtretter_session={cookie}"},
    }
    for label, headers in rows.items():
        print(f"GET /v1/me {label:16} {per_request_ms(client, headers, args.requests):6.2f} ms je Anfrage")


if __name__ == "__main__":
    main()
