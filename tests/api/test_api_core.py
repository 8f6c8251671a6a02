"""The JSON API over a real (embedded) Chroma with the deterministic test embedding."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from services.container import Services
from core.settings import Settings
from tests.helpers import HashEmbeddings


@pytest.fixture
def client(tmp_path: Path, tiny_corpus: Path):
    settings = Settings(data_dir=tmp_path / "data", corpus_dir=tiny_corpus)
    services = Services(settings, embeddings=HashEmbeddings())
    services.pipeline().run([tiny_corpus])
    with TestClient(create_app(settings, services)) as test_client:
        yield test_client


def test_search_returns_results_with_source_metadata(client: TestClient) -> None:
    response = client.post("/v1/search", json={"query": "Lasersensoren Passanten Hauptstraße", "k": 3})
    assert response.status_code == 200
    results = response.json()["results"]
    assert results and results[0]["source"]["type"] == "webtalk"
    assert results[0]["source"]["start"] is not None and results[0]["source"]["title"] == "WebTalk Frequenzmessung"


def test_search_filters_by_type_and_date(client: TestClient) -> None:
    body = {"query": "Innenstadt", "k": 10, "filters": {"type": ["article"]}}
    types = {r["source"]["type"] for r in client.post("/v1/search", json=body).json()["results"]}
    assert types == {"article"}
    body = {"query": "Innenstadt", "k": 10, "filters": {"date_from": "2024-01-01"}}
    dates = {r["source"]["date"] for r in client.post("/v1/search", json=body).json()["results"]}
    assert dates and all(d >= "2024-01-01" for d in dates)


def test_search_with_rerank_reorders_only_the_first_hits(client: TestClient) -> None:
    body = {"query": "Wer trägt die Kosten für das WLAN in Lindenfeld?", "k": 6}
    plain = client.post("/v1/search", json=body).json()["results"]
    reranked = client.post("/v1/search", json={**body, "rerank": True}).json()["results"]
    assert len(plain) == len(reranked) >= 4
    ids = [[r["chunk_id"] for r in results] for results in (plain, reranked)]
    assert sorted(ids[0][:3]) == sorted(ids[1][:3]) and ids[0][3:] == ids[1][3:]


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_every_search_mode_answers(client: TestClient, mode: str) -> None:
    response = client.post("/v1/search", json={"query": "Sitzgelegenheiten Samstag", "k": 3, "mode": mode})
    assert response.status_code == 200 and response.json()["mode"] == mode
    assert response.json()["results"]


def test_ask_returns_answer_with_citations(client: TestClient) -> None:
    response = client.post("/v1/ask", json={"question": "Wer trägt die Kosten für das WLAN in Lindenfeld?"})
    assert response.status_code == 200
    data = response.json()
    assert set(data) >= {"answer", "citations", "abstained"}
    for citation in data["citations"]:
        assert {"n", "title", "type", "url", "locator", "snippet", "score", "source_id"} <= set(citation)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/ask", {"question": "x" * 2001}, "question"),
        ("/v1/ask", {"question": "   "}, "question"),
        ("/v1/ask", {}, "question"),
        ("/v1/search", {"query": "WLAN", "k": 51}, "k"),
        ("/v1/search", {"query": "WLAN", "filters": {"type": ["video"]}}, "type"),
        ("/v1/search", {"query": "WLAN", "filters": {"date_from": "1.1.2024"}}, "date_from"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(client: TestClient, path: str, body: dict, field: str) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 422
    assert any(field in [str(part) for part in error["loc"]] for error in response.json()["detail"])


def test_sources_lists_documents_with_counts(client: TestClient) -> None:
    sources = client.get("/v1/sources").json()["sources"]
    assert {s["type"] for s in sources} == {"article", "webtalk"}
    assert all(s["chunk_count"] > 0 and s["title"] for s in sources)


def test_healthz_reports_store_and_model(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "ok" and data["store_reachable"] and data["model_loaded"]
    assert data["chunks"] > 0 and data["sources"] == 3


def test_store_built_with_another_model_gives_503_with_reindex_hint(tmp_path: Path, tiny_corpus: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", corpus_dir=tiny_corpus)
    Services(settings, embeddings=HashEmbeddings()).pipeline().run([tiny_corpus])
    other = Services(settings, embeddings=HashEmbeddings(dimension=32, model_name="test:other"))
    with TestClient(create_app(settings, other)) as client:
        response = client.post("/v1/search", json={"query": "WLAN"})
        assert response.status_code == 503 and "stadtretter reindex" in response.json()["detail"]
        assert client.get("/healthz").status_code == 503


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    assert "/v1/ask" in client.get("/openapi.json").json()["paths"]
