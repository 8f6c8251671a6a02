"""own_state_database_url (tests/conftest.py): every fixture that ingests a corpus gets a state database of its own.

Two session-scoped fixtures here ingest the same file, as tests/browser's `live` and tests/werkstatt's `trainer` do
with the same corpus. On the one state database of the session (STADTRETTER_DATABASE_URL in the PostgreSQL pass),
the second one's ingestion found the file in the source registry as unchanged and skipped it: its index stayed
empty. Runs in both passes (SQLite files, PostgreSQL databases).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from core.settings import Settings
from services.container import Services
from tests.conftest import ARTICLE_SURVEY, ARTICLE_WLAN, TEST_DATABASE, own_state_database_url
from tests.helpers import HashEmbeddings


def _services(base: Path, database_url: str) -> Services:
    settings = Settings(_env_file=None, data_dir=base / "data", corpus_dir=base / "corpus", database_url=database_url)
    return Services(settings, embeddings=HashEmbeddings(), phase_tagger=None)


def _ingesting_fixture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Services:
    base = tmp_path_factory.mktemp("ingester")
    (base / "corpus" / "articles").mkdir(parents=True)
    (base / "corpus" / "articles" / "wlan.md").write_text(ARTICLE_WLAN, encoding="utf-8")
    services = _services(base, own_state_database_url(request))
    report = services.pipeline().run([base / "corpus"])
    assert report.added == 1 and not report.failed, report
    return services


@pytest.fixture(scope="session")
def first(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Services:
    return _ingesting_fixture(request, tmp_path_factory)


@pytest.fixture(scope="session")
def second(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Services:
    return _ingesting_fixture(request, tmp_path_factory)


def test_two_fixtures_ingest_the_same_file_each_into_its_own_database(first: Services, second: Services) -> None:
    urls = {first.settings.state_database_url, second.settings.state_database_url}
    assert len(urls) == 2 and os.environ.get("STADTRETTER_DATABASE_URL") not in urls
    assert all(url.startswith("postgresql" if TEST_DATABASE == "postgresql" else "sqlite") for url in urls)
    for services in (first, second):
        assert [record.title for record in services.registry.ingested()] == ["WLAN für die Innenstadt von Lindenfeld"]
        assert services.store.count() > 0


def test_a_copy_holds_the_original_registry_and_goes_its_own_way(
    first: Services, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    shutil.copytree(first.settings.data_dir, tmp_path / "data")  # the index beside the registry
    shutil.copytree(first.settings.corpus_dir, tmp_path / "corpus")
    copy = _services(tmp_path, own_state_database_url(request, copy_of=first.settings.database_url))
    assert copy.settings.state_database_url != first.settings.state_database_url
    assert copy.registry.all() == first.registry.all()
    again = copy.pipeline().run([tmp_path / "corpus"])
    assert (again.added, again.unchanged) == (0, 1)  # known from the copied registry
    (tmp_path / "corpus" / "articles" / "befragung.md").write_text(ARTICLE_SURVEY, encoding="utf-8")
    assert copy.pipeline().run([tmp_path / "corpus"]).added == 1
    assert len(copy.registry.all()) == 2 and len(first.registry.all()) == 1  # the original is untouched


@pytest.mark.skipif(TEST_DATABASE != "postgresql", reason="PostgreSQL databases only")
def test_the_database_is_dropped_when_its_fixture_is_torn_down(request: pytest.FixtureRequest) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    from tests.postgres_support import SUPERUSER

    class FixtureRequest:  # stands in for a fixture's request: keeps the finalizers the helper adds
        fixturename = "owner"

        def __init__(self) -> None:
            self.finalizers: list = []

        def getfixturevalue(self, name: str) -> object:
            return request.getfixturevalue(name)

        def addfinalizer(self, finalizer) -> None:  # noqa: ANN001
            self.finalizers.append(finalizer)

    owner = FixtureRequest()
    name = make_url(own_state_database_url(owner)).database  # type: ignore[arg-type] - duck-typed request
    port = request.getfixturevalue("postgres_server").port

    def exists() -> bool:
        with psycopg.connect(f"host=127.0.0.1 port={port} user={SUPERUSER} dbname=postgres") as connection:
            return connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None

    assert exists()
    for finalizer in owner.finalizers:
        finalizer()
    assert not exists()
