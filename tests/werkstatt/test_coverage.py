"""The coverage map: every chunk in one topic, counts per phase and type, readable labels, gaps, the cache."""

from __future__ import annotations

import shutil

from fastapi.testclient import TestClient

from api.app import create_app
from core.vocabulary import PHASES
from services.coverage import CoverageService, topic_count
from tests.auth_support import key_headers
from tests.conftest import own_state_database_url


def test_topics_cells_labels_and_gaps(trainer, tmp_path) -> None:  # noqa: ANN001
    services = trainer.services
    coverage = CoverageService(services.store, services.lexical, services.registry, tmp_path / "c.json").coverage()
    assert coverage.chunks == services.store.count() and len(coverage.topics) == topic_count(coverage.chunks)
    assert sum(topic.chunks for topic in coverage.topics) == coverage.chunks
    texts = " ".join(text for _, docs, _, _ in services.store.iter_all() for text in docs)
    for topic in coverage.topics:
        cell_chunks = sum(cell.chunks for types in topic.cells.values() for cell in types.values())
        assert cell_chunks == topic.chunks
        assert all(term in texts and term[:1].isupper() for term in topic.terms)  # surface words, not stems
        for phase in PHASES:
            documents = {s for cell in topic.cells[phase].values() for s in cell.sources}
            gap = [g for g in coverage.gaps if g.topic == topic.id and g.phase == phase]
            assert bool(gap) == (len(documents) <= 1)
    pdf_cells = [(t.id, p) for t in coverage.topics for p, types in t.cells.items() if types["course"].chunks]
    assert pdf_cells and all(p == "E" for _, p in pdf_cells)  # the course PDF is tagged E by the editors
    assert any("keine Quelle zur" in g.message or "nur eine Quelle zur" in g.message for g in coverage.gaps)
    assert {s["type"] for s in coverage.sources.values()} == {"article", "webtalk", "course"}


def test_cached_until_the_index_changes_and_recomputed_by_the_ingestion(
    trainer, tmp_path, request  # noqa: ANN001
) -> None:
    # A copy of the index and of its registry: this test ingests.
    shutil.copytree(trainer.settings.data_dir, tmp_path / "data")
    database_url = own_state_database_url(request, copy_of=trainer.settings.database_url)
    services = trainer.services_with(data_dir=tmp_path / "data", database_url=database_url)
    first = services.coverage.coverage()
    calls = []
    original = services.coverage.compute
    services.coverage.compute = lambda signature="": calls.append(signature) or original(signature)
    assert services.coverage.coverage().signature == first.signature and not calls
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "radwege.md").write_text("---\ntitle: Radwege in die Innenstadt\nekt: [K]\n---\n\nDie Radwege führen "
                                      "vom Bahnhof in die Fußgängerzone. Abstellanlagen stehen am Markt.\n",
                                      encoding="utf-8")
    services.pipeline().run([extra])
    assert len(calls) == 1  # the pipeline's listener recomputed the map
    services.reset()
    fresh = services.coverage
    fresh.compute = lambda signature="": calls.append(signature) or original(signature)
    again = fresh.coverage()
    assert len(calls) == 1  # the request reads what the ingestion computed
    assert again.signature != first.signature and again.chunks == first.chunks + 1


def test_coverage_route_is_for_trainers(trainer) -> None:  # noqa: ANN001
    with TestClient(create_app(trainer.settings, trainer.services)) as client:
        assert client.get("/v1/coverage").status_code == 401
        data = client.get("/v1/coverage", headers=key_headers(client, "trainer")).json()
    assert data["topics"] and data["topics"][0]["cells"]["E"]["article"].keys() == {"chunks", "sources"}
