"""Trainer workspace suites: the browser suite's small corpus (three articles, one per phase, a WebTalk, a two-page
course PDF) ingested once per session with HashEmbeddings and the editors' phase tags."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from core.settings import Settings
from services.container import Services
from tests.browser.conftest import EditorPhases, write_corpus
from tests.conftest import own_state_database_url
from tests.helpers import HashEmbeddings, hash_answerability


@dataclass
class Trainer:
    settings: Settings
    services: Services
    corpus: dict[str, Path]

    def services_with(self, **overrides: object) -> Services:
        """Another container on the same index and state database (e.g. with a language model); a test that
        ingests passes a copy of both (data_dir, database_url: own_state_database_url(request, copy_of=...))."""
        # Settings(...) validates the overrides (model_copy would not).
        settings = Settings(_env_file=None, **{**self.settings.model_dump(), **overrides})
        services = Services(settings, embeddings=HashEmbeddings(),
                            phase_tagger=EditorPhases())
        hash_answerability(services.answerer)
        return services


@pytest.fixture(scope="session")
def trainer(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Trainer:
    base = tmp_path_factory.mktemp("werkstatt")
    corpus = write_corpus(base / "corpus")
    # Its own registry: the browser suite's `live` ingests the same corpus (same source ids and content).
    settings = Settings(_env_file=None, data_dir=base / "data", corpus_dir=base / "corpus", chunk_chars=400,
                        transcript_chunk_seconds=60, rerank_depth=0, database_url=own_state_database_url(request))
    services = Services(settings, embeddings=HashEmbeddings(), phase_tagger=EditorPhases())
    report = services.pipeline().run([base / "corpus"])
    assert report.added == len(corpus) and not report.failed, report  # all new: no registry of another fixture
    hash_answerability(services.answerer)  # bag-of-words vectors: the stand-in model, as in the browser suite
    return Trainer(settings, services, corpus)
