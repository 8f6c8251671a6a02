"""SearchService: modes, fusion, filters (fast path and fallback), de-duplication, neighbour expansion."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from retriever.lexical import LexicalIndex
from retriever.models import SearchFilters
from retriever.search import FusionParams, SearchService, _normalise, chroma_where
from core.settings import Settings
from core.store import ChunkStore
from tests.helpers import HashEmbeddings

TEXTS = {
    "wlan": [
        "Das kommunale WLAN in Lindenfeld wurde zu 60 Prozent aus Fördermitteln bezahlt.",
        "Pro Access Point fallen jährlich 380 Euro Betriebskosten an.",
        "Der Betrieb liegt bei der Stadtmarketing GmbH, die auch die Startseite pflegt.",
    ],
    "befragung": [
        "An drei Samstagen wurden 412 Passantinnen und Passanten in der Fußgängerzone befragt.",
        "Der Fragebogen hatte 18 Fragen zu Anreise, Aufenthaltsdauer und Wünschen.",
        "Am häufigsten wünschten sich die Befragten mehr Sitzgelegenheiten.",
    ],
    "frequenz": [
        "Wir zählen seit 2022 mit vier Lasersensoren die Passanten in der Hauptstraße.",
        "Am Samstag kommen im Schnitt 11.800 Menschen vorbei, unter der Woche etwa 6.400.",
    ],
    "kopie": [  # the same text as befragung/2, ingested a second time (e.g. PDF and HTML of one document)
        "Am häufigsten wünschten sich die Befragten mehr Sitzgelegenheiten.",
    ],
}
META = {
    "wlan": {"type": "article", "phase": "T", "date_int": 20240502},
    "befragung": {"type": "article", "phase": "E", "date_int": 20230914},
    "frequenz": {"type": "webtalk", "phase": "E", "date_int": 20240220},
    "kopie": {"type": "course", "phase": "K", "date_int": 20220101},
}


def _rows() -> list[tuple[str, str, dict]]:
    rows = []
    for source, texts in TEXTS.items():
        for index, text in enumerate(texts):
            chunk_id = hashlib.sha256(f"{source}\x00{text}".encode()).hexdigest()[:32]
            meta = {
                "source_id": source, "chunk_index": index, "title": source.title(), "path": f"/corpus/{source}.md",
                "content_hash": hashlib.sha256(f"{source}{text}".encode()).hexdigest(), **META[source],
            }
            rows.append((chunk_id, text, meta))
    return rows


ROWS = _rows()
ID = {(meta["source_id"], meta["chunk_index"]): cid for cid, _, meta in ROWS}


def _build(settings: Settings, tmp_path: Path, **fusion) -> SearchService:
    embeddings = HashEmbeddings()
    store = ChunkStore(settings, embeddings.model_name, embeddings.dimension)
    ids, texts, metas = zip(*ROWS)
    store.upsert(list(ids), list(texts), list(metas), embeddings.embed_passages(list(texts)))
    lexical = LexicalIndex(tmp_path / "lexical")
    lexical.sync(store)
    return SearchService(embeddings, store, lexical, fusion=FusionParams(**fusion) if fusion else None)


@pytest.fixture
def service(tmp_path: Path) -> SearchService:
    settings = Settings(data_dir=tmp_path / "data", corpus_dir=tmp_path / "corpus", collection="searchtest")
    return _build(settings, tmp_path)


def test_modes_all_answer_and_hybrid_finds_the_keyword(service: SearchService) -> None:
    for mode in ("dense", "lexical", "hybrid"):
        hits = service.search("Lasersensoren Hauptstraße", k=3, mode=mode)
        assert hits and len(hits) <= 3
        if mode != "dense":  # the hash test embedding collides too much to rank reliably
            assert hits[0].chunk_id == ID[("frequenz", 0)], mode
    assert service.search("Lasersensoren", k=0) == []


def test_hybrid_with_rrf_and_with_minmax(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", corpus_dir=tmp_path / "corpus", collection="rrftest")
    for params in ({"method": "rrf"}, {"normalisation": "minmax", "coverage_weight": 0.0}):
        service = _build(settings, tmp_path / params.get("method", "minmax"), **params)
        assert service.search("Access Point Betriebskosten", k=2)[0].chunk_id == ID[("wlan", 1)]


def test_normalisation() -> None:
    assert _normalise({"a": 2.0, "b": 4.0}) == {"a": 0.0, "b": 1.0}
    assert _normalise({"a": 3.0}) == {"a": 1.0}
    dbsf = _normalise({"a": 1.0, "b": 2.0, "c": 3.0}, "dbsf")
    assert 0.0 < dbsf["a"] < dbsf["b"] < dbsf["c"] < 1.0


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_filters_hold_in_every_mode(service: SearchService, mode: str) -> None:
    cases = [
        (SearchFilters(types=["webtalk"]), lambda m: m["type"] == "webtalk"),
        (SearchFilters(phases=["E"]), lambda m: m["phase"] == "E"),
        (SearchFilters(date_from="2024-01-01"), lambda m: m["date_int"] >= 20240101),
        (SearchFilters(date_to="2023-12-31"), lambda m: m["date_int"] <= 20231231),
        (SearchFilters(types=["article"], phases=["T"]), lambda m: m["type"] == "article" and m["phase"] == "T"),
    ]
    for filters, ok in cases:
        hits = service.search("Passanten Samstag WLAN Betrieb", k=5, filters=filters, mode=mode)
        assert hits, (mode, filters)
        assert all(ok(hit.metadata) for hit in hits), (mode, filters)
    assert service.search("Passanten", k=5, filters=SearchFilters(types=["nichts"]), mode=mode) == []


def _exact_filtered(service: SearchService, query: str, allowed: set[str], n: int) -> list[str]:
    vector = service.embeddings.embed_queries([query])[0]
    vectors = service.store.get_vectors([cid for cid, _, _ in ROWS if cid in allowed])
    scored = sorted(vectors.items(), key=lambda item: -float(item[1] @ vector))
    return [cid for cid, _ in scored[:n]]


def test_filtered_dense_overfetch_and_fallback_agree_with_exact_search(service: SearchService) -> None:
    filters = SearchFilters(phases=["E"])
    allowed = {cid for cid, _, meta in ROWS if meta["phase"] == "E"}
    query = "Passanten zählen am Samstag"
    expected = _exact_filtered(service, query, allowed, 3)
    vector = service.embeddings.embed_queries([query])[0]
    fast = [cid for cid, _ in service._dense_candidates(vector, 3, filters)]
    service.MAX_FETCH = 1  # force Chroma's own where
    fallback = [cid for cid, _ in service._dense_candidates(vector, 3, filters)]
    assert fast == expected == fallback


def test_filtered_dense_without_lexical_index_uses_chroma_where(service: SearchService) -> None:
    service.lexical = None
    hits = service.search("Passanten", k=3, filters=SearchFilters(types=["webtalk"]))
    assert hits and all(hit.metadata["type"] == "webtalk" for hit in hits)


def test_duplicate_chunks_are_collapsed(service: SearchService) -> None:
    hits = service.search("Sitzgelegenheiten wünschten Befragten", k=5)
    texts = [hit.text for hit in hits]
    assert texts.count(TEXTS["kopie"][0]) == 1
    no_dedup = SearchService(service.embeddings, service.store, service.lexical, fusion=FusionParams(dedup_overlap=1.01))
    assert [h.text for h in no_dedup.search("Sitzgelegenheiten wünschten Befragten", k=5)].count(TEXTS["kopie"][0]) == 2


def test_expand_adds_neighbours_in_document_order(service: SearchService) -> None:
    hit = service.search("Access Point Betriebskosten", k=1, mode="lexical")[0]
    assert hit.chunk_id == ID[("wlan", 1)]
    expanded = service.expand([hit])
    assert [h.chunk_id for h in expanded] == [ID[("wlan", 0)], ID[("wlan", 1)], ID[("wlan", 2)]]
    assert expanded[0].metadata["neighbour_of"] == hit.chunk_id and "neighbour_of" not in expanded[1].metadata
    assert service.expand([hit], window=0) == [hit]


def test_expand_does_not_repeat_chunks_and_works_without_lexical_index(service: SearchService) -> None:
    first, second = (service.search(q, k=1, mode="lexical")[0] for q in ("Access Point", "Stadtmarketing GmbH"))
    expanded = service.expand([first, second])
    ids = [h.chunk_id for h in expanded]
    assert len(ids) == len(set(ids)) == 3
    service.lexical = None
    assert [h.chunk_id for h in service.expand([first])] == [ID[("wlan", 0)], ID[("wlan", 1)], ID[("wlan", 2)]]


def test_empty_store(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", corpus_dir=tmp_path / "corpus", collection="emptytest")
    embeddings = HashEmbeddings()
    store = ChunkStore(settings, embeddings.model_name, embeddings.dimension)
    lexical = LexicalIndex(tmp_path / "lexical")
    lexical.sync(store)
    service = SearchService(embeddings, store, lexical)
    for mode in ("dense", "lexical", "hybrid"):
        assert service.search("WLAN", k=3, mode=mode) == []
    assert service.search("WLAN", k=3, filters=SearchFilters(types=["article"])) == []


def test_fusion_parameters_come_from_settings(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", corpus_dir=tmp_path / "corpus", collection="paramtest",
        fusion_dense_weight=0.9, fusion_candidates=12, fusion_method="rrf",
    )
    params = FusionParams.from_settings(settings)
    assert (params.dense_weight, params.candidates, params.method) == (0.9, 12, "rrf")
    assert FusionParams.from_settings(Settings(data_dir=tmp_path)).lexical_weight == FusionParams().lexical_weight


def test_chroma_where_translation() -> None:
    assert chroma_where(None) is None
    assert chroma_where(SearchFilters(types=["article"])) == {"type": {"$in": ["article"]}}
    where = chroma_where(SearchFilters(phases=["E"], date_from="2024-01-01"))
    assert where == {"$and": [{"phase": {"$in": ["E"]}}, {"date_int": {"$gte": 20240101}}]}


def test_same_results_against_a_chroma_server(store_settings: Settings, tmp_path: Path) -> None:
    """Hybrid search, filters and expansion work identically with an embedded Chroma and a Chroma server."""
    service = _build(store_settings, tmp_path)
    hits = service.search("Passanten Samstag", k=4, filters=SearchFilters(phases=["E"]))
    assert hits and all(hit.metadata["phase"] == "E" for hit in hits)
    assert {h.chunk_id for h in hits} <= {cid for cid, _, m in ROWS if m["phase"] == "E"}
    assert service.expand(hits[:1])
    scores = np.array([h.score for h in hits])
    assert (np.diff(scores) <= 1e-9).all()
