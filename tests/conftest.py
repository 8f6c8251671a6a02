"""Shared fixtures: settings in tmp dirs, a real Chroma server, a tiny corpus."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from core.settings import Settings

pytest_plugins = ["tests.llm_fake"]  # the fake OpenAI-compatible server and its corpus, for every suite

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 60.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"Prozess beendet mit Code {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"Port {port} nicht erreichbar")


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory):
    """A real Chroma server (`chroma run` from the chromadb package) on a free local port."""
    path = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    chroma = Path(sys.executable).parent / "chroma"
    log = open(path / "server.log", "wb")
    process = subprocess.Popen([str(chroma), "run", "--path", str(path / "db"), "--port", str(port), "--host", "127.0.0.1"], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(params=["embedded", "server"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for the store/retrieval integration tests, once embedded and once against a Chroma server."""
    url = request.getfixturevalue("chroma_server") if request.param == "server" else None
    collection = f"t{abs(hash(request.node.nodeid)) % 10**10}"
    return Settings(data_dir=tmp_path / "data", corpus_dir=tmp_path / "corpus", chroma_url=url, collection=collection)


ARTICLE_WLAN = """---
title: WLAN für die Innenstadt von Lindenfeld
date: 2024-05-02
author: Petra Sommer
url: https://stadtretter.example/artikel/wlan-lindenfeld
type: article
---

# WLAN für die Innenstadt von Lindenfeld

## Finanzierung

Das kommunale WLAN in Lindenfeld wurde zu 60 Prozent aus dem Landesförderprogramm Digitale Innenstadt bezahlt.
Den Rest tragen die Stadtwerke als Sponsor. Pro Access Point fallen jährlich 380 Euro Betriebskosten an.

## Betrieb

Der Betrieb liegt bei der Stadtmarketing GmbH, die auch die Startseite des Hotspots pflegt.
"""

ARTICLE_SURVEY = """---
title: Passantenbefragung in Marktheide
date: 2023-09-14
author: Jonas Keller
url: https://stadtretter.example/artikel/befragung-marktheide
type: article
---

## Methode

An drei Samstagen wurden 412 Passantinnen und Passanten in der Fußgängerzone befragt.
Der Fragebogen hatte 18 Fragen zu Anreise, Aufenthaltsdauer und Wünschen.

## Ergebnisse

Am häufigsten wünschten sich die Befragten mehr Sitzgelegenheiten und längere Öffnungszeiten am Samstag.
"""

TRANSCRIPT = """WEBVTT

NOTE
title: WebTalk Frequenzmessung
date: 2024-02-20
url: https://stadtretter.example/webtalks/frequenz

00:00:01.000 --> 00:00:05.000
<v Maria Brandt>Herzlich willkommen zum WebTalk über Frequenzmessung in der Innenstadt.

00:00:06.000 --> 00:00:11.000
<v Tobias Lang>Wir zählen seit 2022 mit vier Lasersensoren die Passanten in der Hauptstraße.

00:01:15.000 --> 00:01:20.000
<v Tobias Lang>Am Samstag kommen im Schnitt 11.800 Menschen vorbei, unter der Woche etwa 6.400.
"""


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    (corpus / "articles").mkdir(parents=True)
    (corpus / "webtalks").mkdir()
    (corpus / "articles" / "wlan.md").write_text(ARTICLE_WLAN, encoding="utf-8")
    (corpus / "articles" / "befragung.md").write_text(ARTICLE_SURVEY, encoding="utf-8")
    (corpus / "webtalks" / "frequenz.vtt").write_text(TRANSCRIPT, encoding="utf-8")
    return corpus


# --- the state database: SQLite (default) or PostgreSQL -----------------------------------------------------------
# `STADTRETTER_TEST_DATABASE=postgresql pytest …` (the second pass of `make test`) gives every test, module and
# session a fresh PostgreSQL database, migrated to head, through STADTRETTER_DATABASE_URL: every Settings the tests
# build (and every server process they start) then uses it.
TEST_DATABASE = os.environ.get("STADTRETTER_TEST_DATABASE", "sqlite")
if TEST_DATABASE not in ("sqlite", "postgresql"):
    raise pytest.UsageError(f"STADTRETTER_TEST_DATABASE={TEST_DATABASE}: erlaubt sind sqlite und postgresql")


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for the session (tests/postgres_support.py); fails clearly when not installed."""
    from tests.postgres_support import PostgresServer

    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def _fresh_state_database(request: pytest.FixtureRequest) -> Iterator[None]:
    if TEST_DATABASE != "postgresql":
        yield
        return
    server = request.getfixturevalue("postgres_server")
    url = server.create_database()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STADTRETTER_DATABASE_URL", url)
        yield
    server.drop_database(url)


@pytest.fixture(scope="session", autouse=True)
def _session_state_database(request: pytest.FixtureRequest) -> Iterator[None]:
    with _fresh_state_database(request):
        yield


@pytest.fixture(scope="module", autouse=True)
def _module_state_database(request: pytest.FixtureRequest) -> Iterator[None]:
    with _fresh_state_database(request):
        yield


@pytest.fixture(autouse=True)
def _test_state_database(request: pytest.FixtureRequest) -> Iterator[None]:
    with _fresh_state_database(request):
        yield


def _new_state_database_url(request: pytest.FixtureRequest, path: Path, migrated: bool) -> str:
    if TEST_DATABASE != "postgresql":
        return f"sqlite:///{path}"  # SQLite is migrated on first use
    server = request.getfixturevalue("postgres_server")
    url = server.create_database(migrated=migrated)
    request.addfinalizer(lambda: server.drop_database(url))
    return url


def own_state_database_url(request: pytest.FixtureRequest, copy_of: str | None = None) -> str:
    """A state database of the calling fixture's own, migrated to head (or a copy of the one at copy_of), dropped
    when that fixture is torn down: a new PostgreSQL database in the PostgreSQL pass, else a SQLite file under a
    new tmp dir. Pass it as Settings(database_url=...).

    Every fixture that ingests a corpus needs one. The database that STADTRETTER_DATABASE_URL names is one per
    scope, so in the PostgreSQL pass all session-scoped fixtures share the session's database (all module-scoped
    ones of a module the module's), and its source registry decides which files the ingest pipeline skips as
    unchanged: a second fixture ingesting files with the same source ids and content (e.g. the browser suite's
    corpus in tests/browser and tests/werkstatt) would skip them and leave its own index empty."""
    if TEST_DATABASE == "postgresql":
        server = request.getfixturevalue("postgres_server")
        url = server.create_database(copy_of=copy_of)
        request.addfinalizer(lambda: server.drop_database(url))
        return url
    import sqlite3
    from contextlib import closing

    from sqlalchemy.engine import make_url

    from core.database import Database

    folder = request.getfixturevalue("tmp_path_factory").mktemp(f"state-{request.fixturename or 'test'}")
    path = folder / "state.sqlite3"
    if copy_of is not None:
        with closing(sqlite3.connect(make_url(copy_of).database)) as source, closing(sqlite3.connect(path)) as target:
            source.backup(target)
    database = Database(f"sqlite:///{path}")
    database.upgrade()  # the copy is at head already: a no-op then
    database.dispose()
    return database.url


@pytest.fixture
def empty_state_database_url(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A state database without any schema: SQLite in tmp_path, or a new empty PostgreSQL database."""
    return _new_state_database_url(request, tmp_path / "empty-state.sqlite3", migrated=False)


@pytest.fixture
def fresh_state_database_url(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Another state database for this test (beside the one STADTRETTER_DATABASE_URL names), ready to use."""
    return _new_state_database_url(request, tmp_path / "fresh-state.sqlite3", migrated=True)


@pytest.fixture
def state_database(tmp_path: Path) -> Iterator["Database"]:
    """The state database of Settings under tmp_path (SQLite there, or this test's PostgreSQL one), migrated."""
    from core.database import Database

    database = Database(Settings(_env_file=None, data_dir=tmp_path / "data").state_database_url)
    database.upgrade()
    yield database
    database.dispose()
