"""Retrieval against a real Chroma, embedded and as a server: every mode, filters, the langchain retriever."""

from __future__ import annotations

from pathlib import Path

import pytest

from retriever.langchain_retriever import StadtretterRetriever
from retriever.models import SearchFilters
from services.container import Services
from core.settings import Settings
from tests.helpers import HashEmbeddings


@pytest.fixture
def services(store_settings: Settings, tiny_corpus: Path) -> Services:
    services = Services(store_settings, embeddings=HashEmbeddings())
    services.pipeline().run([tiny_corpus])
    return services


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_each_mode_finds_the_transcript(services: Services, mode: str) -> None:
    hits = services.search.search("Lasersensoren zählen Passanten Hauptstraße", k=3, mode=mode)
    assert hits and hits[0].metadata["type"] == "webtalk"
    assert hits[0].metadata["start"] >= 0 and hits[0].text


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_filters_hold_in_every_mode(services: Services, mode: str) -> None:
    only_articles = services.search.search("Innenstadt Samstag", k=10, filters=SearchFilters(types=["article"]), mode=mode)
    assert only_articles and {h.metadata["type"] for h in only_articles} == {"article"}
    recent = services.search.search("Innenstadt Samstag", k=10, filters=SearchFilters(date_from="2024-01-01"), mode=mode)
    assert recent and all(h.metadata["date"] >= "2024-01-01" for h in recent)
    nothing = services.search.search("Innenstadt", k=10, filters=SearchFilters(date_to="2000-01-01"), mode=mode)
    assert nothing == []


def test_langchain_retriever_returns_documents_with_scores(services: Services) -> None:
    retriever = StadtretterRetriever(service=services.search, k=2)
    documents = retriever.invoke("Sitzgelegenheiten Öffnungszeiten")
    assert documents and documents[0].metadata["title"] == "Passantenbefragung in Marktheide"
    assert "score" in documents[0].metadata and documents[0].id
