"""`stadtretter import` and the writer lock seen from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.settings import Settings, get_settings
from services.container import Services
from services.writer_lock import writer_lock
from tests.helpers import HashEmbeddings
from tests.services.site import Site


@pytest.fixture
def env(tmp_path: Path, tiny_corpus: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key, value in {"DATA_DIR": tmp_path / "data", "CORPUS_DIR": tiny_corpus, "FETCH_ALLOW_PRIVATE": "true",
                       "WRITER_WAIT_SECONDS": "0.3", "IMPORT_MAX_ENTRIES": "2"}.items():
        monkeypatch.setenv(f"STADTRETTER_{key}", str(value))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def test_import_prints_per_page_results_and_json(env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from stadtretter import cli, import_cli

    monkeypatch.setattr(import_cli, "Services",
                        lambda settings: Services(settings, embeddings=HashEmbeddings(), phase_tagger=None))
    with Site(feed_entries=5) as site:
        result = CliRunner().invoke(cli.app, ["import", f"{site.url}/feed.xml"])
        assert result.exit_code == 0, result.output
        assert f"neu             {site.url}/artikel/nr-0" in result.stdout and "2 neu" in result.stdout
        assert "enthält 5 Einträge; nur die ersten 2" in result.stderr
        again = CliRunner().invoke(cli.app, ["import", f"{site.url}/feed.xml", "--json"])
        assert again.exit_code == 0 and json.loads(again.stdout)["unchanged"] == 2
        missing = CliRunner().invoke(cli.app, ["import", f"{site.url}/fehlt"])
    assert missing.exit_code == 1 and "Status 404" in missing.stderr and "Traceback" not in missing.output


def test_cli_ingest_waits_for_another_writer_and_says_so(env: Settings) -> None:
    from stadtretter import cli

    with writer_lock(env.data_dir, 0):
        result = CliRunner().invoke(cli.app, ["ingest", "--json"])
    assert result.exit_code == 1
    assert "Warte auf einen anderen Schreibvorgang" in result.stderr and "anderer Schreibvorgang" in result.stderr
