"""Helpers for tests of protected routes: an app on a temporary data directory, accounts and keys.

    client = auth_client(tmp_path)                       # TestClient, HashEmbeddings, tmp data dir
    headers = key_headers(client, "admin")               # {"Authorization": "Bearer sr_…"} for a new key
    csrf = login(client, "anna", "admin")                # session cookie set on the client; returns the CSRF token
    client.post(url, headers={"X-CSRF-Token": csrf})
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from services.container import Services
from tests.helpers import HashEmbeddings

PASSWORD = "ein-langes-Testpasswort"
_names = itertools.count(1)


def auth_settings(tmp_path: Path, **overrides: Any) -> Settings:
    (tmp_path / "corpus").mkdir(exist_ok=True)
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data", "corpus_dir": tmp_path / "corpus", "llm_backend": "none",
        "password_hash_memory_kib": 1024, "password_hash_iterations": 1,  # still Argon2id, but fast
    }
    return Settings(_env_file=None, **(values | overrides))


def auth_client(tmp_path: Path, **overrides: Any) -> TestClient:
    settings = auth_settings(tmp_path, **overrides)
    return TestClient(create_app(settings, Services(settings, embeddings=HashEmbeddings(), phase_tagger=None)))


def services_of(client: TestClient) -> Services:
    return client.app.state.services


def key_headers(client: TestClient, scopes: str) -> dict[str, str]:
    created = services_of(client).api_keys.create(f"test-key-{next(_names)}", scopes)
    return {"Authorization": f"Bearer {created.key}"}


def add_user(client: TestClient, role: str, name: str | None = None) -> str:
    name = name or f"{role}{next(_names)}"
    services_of(client).accounts.add(name, role, PASSWORD)
    return name


def login(client: TestClient, role: str, name: str | None = None) -> str:
    """Create an account with `role`, log the client in (session cookie), return the CSRF token."""
    accounts = services_of(client).accounts
    account = accounts.get(name) if name else None
    if account is None:
        name = add_user(client, role, name)
    new = accounts.start_session(accounts.get(name))
    client.cookies.set("stadtretter_session", client.app.state.session_signer.sign(new.token))
    return new.session.csrf_token
