"""Rate limits and login throttling count across API processes when they share Redis (STADTRETTER_REDIS_URL):
two real server processes, one real redis-server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from api.routers.auth import LOGIN_CSRF_COOKIE
from core.settings import Settings
from services.container import Services
from tests.auth_support import auth_client
from tests.conftest import free_port
from tests.redis_support import RedisServer, redis_server  # noqa: F401 - fixture
from tests.server_process import ServerProcess

pytestmark = pytest.mark.server

QUESTIONS_PER_MINUTE = 4
LOGIN_ATTEMPTS = 3
PASSWORD = "ein-langes-Testpasswort"


@pytest.fixture
def replicas(tmp_path: Path, redis_server: RedisServer):  # noqa: F811
    """Two API processes with their own data directories, one state database and one Redis."""
    state = f"sqlite:///{tmp_path / 'state.sqlite3'}"
    fast_hash = {"password_hash_memory_kib": 1024, "password_hash_iterations": 1}
    settings = Settings(_env_file=None, data_dir=tmp_path / "setup", database_url=state, **fast_hash)
    Services(settings).accounts.add("anna", "admin", PASSWORD)
    common = {"STADTRETTER_REDIS_URL": redis_server.url, "STADTRETTER_DATABASE_URL": state,
              "STADTRETTER_RATE_LIMIT_PER_MINUTE": str(QUESTIONS_PER_MINUTE),
              "STADTRETTER_LOGIN_ATTEMPTS_PER_ACCOUNT": str(LOGIN_ATTEMPTS),
              "STADTRETTER_PASSWORD_HASH_MEMORY_KIB": "1024", "STADTRETTER_PASSWORD_HASH_ITERATIONS": "1"}
    servers = []
    for name in ("a", "b"):
        (tmp_path / name / "corpus").mkdir(parents=True)
        env = common | {"STADTRETTER_DATA_DIR": str(tmp_path / name / "data"),
                        "STADTRETTER_CORPUS_DIR": str(tmp_path / name / "corpus")}
        servers.append(ServerProcess(env, tmp_path / f"server-{name}.log"))
    with servers[0] as a, servers[1] as b:
        yield a, b


def test_questions_spread_over_two_replicas_share_one_limit(replicas) -> None:
    a, b = replicas
    statuses = []
    for n in range(QUESTIONS_PER_MINUTE + 1):
        server = (a, b)[n % 2]
        response = httpx.post(f"{server.url}/v1/ask", json={"question": f"Wie misst man Passantenfrequenz {n}?"},
                              timeout=60)
        statuses.append(response.status_code)
    assert statuses == [200] * QUESTIONS_PER_MINUTE + [429], statuses
    assert "Zu viele Anfragen" in response.json()["detail"] and int(response.headers["Retry-After"]) >= 1


def _login(server: ServerProcess, password: str) -> httpx.Response:
    return httpx.post(f"{server.url}/anmelden", data={"name": "anna", "password": password, "form_token": "t"},
                      cookies={LOGIN_CSRF_COOKIE: "t"}, follow_redirects=False, timeout=30)


def test_failed_logins_on_two_replicas_count_together(replicas) -> None:
    a, b = replicas
    # no replica alone sees LOGIN_ATTEMPTS failures: A two, B one
    assert [_login(server, "falsch").status_code for server in (a, b, a)] == [401] * LOGIN_ATTEMPTS
    refused = _login(b, PASSWORD)
    assert refused.status_code == 429 and "Retry-After" in refused.headers


def test_questions_are_answered_while_the_shared_limit_storage_is_down(tmp_path: Path) -> None:
    client = auth_client(tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0")  # nobody listens there
    response = client.post("/v1/ask", json={"question": "Wie misst man Passantenfrequenz?"})
    assert response.status_code == 200, response.text
