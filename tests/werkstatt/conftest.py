"""Trainer workspace suites: the browser suite's small corpus (three articles, one per phase, a WebTalk, a two-page
course PDF) ingested once per session with HashEmbeddings and the editors' phase tags."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from core.settings import Settings
from services.container import Services
from tests.browser.conftest import EditorPhases, write_corpus
from tests.helpers import HashEmbeddings, hash_answerability


@dataclass
class Trainer:
    settings: Settings
    services: Services
    corpus: dict[str, Path]

    def services_with(self, **overrides: object) -> Services:
        """Another container on the same index (e.g. with a language model)."""
        # Settings(...) validates the overrides (model_copy would not).
        settings = Settings(_env_file=None, **{**self.settings.model_dump(), **overrides})
        services = Services(settings, embeddings=HashEmbeddings(),
                            phase_tagger=EditorPhases())
        hash_answerability(services.answerer)
        return services


@pytest.fixture(scope="session")
def trainer(tmp_path_factory: pytest.TempPathFactory) -> Trainer:
    base = tmp_path_factory.mktemp("werkstatt")
    corpus = write_corpus(base / "corpus")
    settings = Settings(_env_file=None, data_dir=base / "data", corpus_dir=base / "corpus", chunk_chars=400,
                        transcript_chunk_seconds=60, rerank_depth=0)
    services = Services(settings, embeddings=HashEmbeddings(), phase_tagger=EditorPhases())
    report = services.pipeline().run([base / "corpus"])
    assert not report.failed, report.failed
    hash_answerability(services.answerer)  # bag-of-words vectors: the stand-in model, as in the browser suite
    return Trainer(settings, services, corpus)
