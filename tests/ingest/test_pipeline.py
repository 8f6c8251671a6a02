"""Ingestion pipeline against a real Chroma (embedded and server): idempotence, updates, prune, failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.database import Database
from ingest.registry import Registry
from services.container import Services
from core.settings import Settings
from core.store import ChunkStore, EmbeddingMismatch
from tests.helpers import HashEmbeddings


def make_services(settings: Settings, embeddings: HashEmbeddings | None = None) -> Services:
    return Services(settings, embeddings=embeddings or HashEmbeddings())


def registry_of(settings: Settings) -> Registry:
    """The registry as a separate process would open it (not the one the services hold)."""
    return Registry(Database(settings.state_database_url).engine, settings.collection)


def all_chunks(services: Services) -> list[tuple[str, dict]]:
    return [(cid, meta) for ids, _, metas, _ in services.store.iter_all() for cid, meta in zip(ids, metas)]


def test_second_run_embeds_nothing(store_settings: Settings, tiny_corpus: Path) -> None:
    embeddings = HashEmbeddings()
    services = make_services(store_settings, embeddings)
    first = services.pipeline().run([tiny_corpus])
    assert (first.added, first.updated, first.unchanged, first.failed) == (3, 0, 0, [])
    stored = services.store.count()
    assert stored == first.chunks_embedded > 0

    embedded_before = embeddings.embedded
    second = make_services(store_settings, embeddings).pipeline().run([tiny_corpus])
    assert (second.added, second.updated, second.unchanged) == (0, 0, 3)
    assert second.chunks_embedded == 0 and embeddings.embedded == embedded_before
    assert services.store.count() == stored


def test_a_moved_corpus_folder_updates_the_paths_without_embedding_again(
    store_settings: Settings, tiny_corpus: Path
) -> None:
    embeddings = HashEmbeddings()
    make_services(store_settings, embeddings).pipeline().run([tiny_corpus])
    moved = tiny_corpus.rename(tiny_corpus.with_name("korpus-neu"))
    settings = store_settings.model_copy(update={"corpus_dir": moved})
    embedded_before = embeddings.embedded

    services = make_services(settings, embeddings)
    report = services.pipeline().run([moved], prune=True)
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 0, 3, 0)
    assert embeddings.embedded == embedded_before  # same content, same source ids: nothing embedded again
    paths = {meta["path"] for _, meta in all_chunks(services)}
    assert paths and all(Path(path).parent.parent == moved for path in paths), paths
    assert all(Path(record.path).is_file() for record in registry_of(settings).all())
    # The recorded paths are what a reindex reads again: it must find every file at its new place.
    rebuilt = services.pipeline().reindex()
    assert (rebuilt.added, rebuilt.failed) == (3, [])


def test_changed_file_replaces_only_its_changed_chunks(store_settings: Settings, tiny_corpus: Path) -> None:
    embeddings = HashEmbeddings()
    services = make_services(store_settings, embeddings)
    services.pipeline().run([tiny_corpus])
    article = tiny_corpus / "articles" / "wlan.md"
    article.write_text(article.read_text(encoding="utf-8").replace("380 Euro", "420 Euro"), encoding="utf-8")

    report = services.pipeline().run([tiny_corpus])
    assert (report.updated, report.unchanged) == (1, 2)
    assert report.chunks_embedded == 1  # only the chunk whose text changed
    texts = [text for _, texts, _, _ in services.store.iter_all() for text in texts]
    assert any("420 Euro" in t for t in texts) and not any("380 Euro" in t for t in texts)
    ids = [cid for cid, _ in all_chunks(services)]
    assert len(ids) == len(set(ids))


def test_prune_removes_documents_whose_files_are_gone(store_settings: Settings, tiny_corpus: Path) -> None:
    services = make_services(store_settings)
    services.pipeline().run([tiny_corpus])
    (tiny_corpus / "webtalks" / "frequenz.vtt").unlink()

    kept = services.pipeline().run([tiny_corpus])  # without --prune nothing is removed
    assert kept.removed == 0 and any(m["type"] == "webtalk" for _, m in all_chunks(services))

    pruned = services.pipeline().run([tiny_corpus], prune=True)
    assert pruned.removed == 1
    assert not any(m["type"] == "webtalk" for _, m in all_chunks(services))
    assert [r.type for r in services.registry.all()].count("webtalk") == 0
    assert not services.search.search("Lasersensoren Passanten", k=5, mode="lexical") or all(
        hit.metadata["type"] != "webtalk" for hit in services.search.search("Lasersensoren Passanten", k=5, mode="lexical")
    )


def test_bad_files_are_reported_and_good_ones_ingested(store_settings: Settings, tiny_corpus: Path) -> None:
    (tiny_corpus / "articles" / "kaputt.pdf").write_bytes(b"%PDF-1.4 this is not a pdf")
    (tiny_corpus / "articles" / "muell.bin").write_bytes(b"\x00\x01\x02binary")
    (tiny_corpus / "articles" / "leer.md").write_text("   \n", encoding="utf-8")
    (tiny_corpus / "articles" / "latin1.txt").write_bytes("Größe und Maße".encode("latin-1"))
    report = make_services(store_settings).pipeline().run([tiny_corpus, tiny_corpus / "fehlt"])
    assert report.added == 3
    failed = {Path(f.path).name: f.reason for f in report.failed}
    assert set(failed) == {"kaputt.pdf", "muell.bin", "leer.md", "latin1.txt", "fehlt"}
    assert "Pfad nicht gefunden" in failed["fehlt"]
    assert "Nicht unterstütztes Dateiformat" in failed["muell.bin"]
    assert all(reason and "Traceback" not in reason for reason in failed.values())


def test_crash_during_replacement_is_repaired_on_next_run(
    store_settings: Settings, tiny_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = make_services(store_settings)
    services.pipeline().run([tiny_corpus])
    article = tiny_corpus / "articles" / "befragung.md"
    article.write_text(article.read_text(encoding="utf-8").replace("412", "415"), encoding="utf-8")

    def crash(self: ChunkStore, ids: list[str]) -> None:
        raise RuntimeError("Stromausfall")

    monkeypatch.setattr(ChunkStore, "delete", crash)
    with pytest.raises(RuntimeError):
        services.pipeline().run([tiny_corpus])
    monkeypatch.undo()

    # The document was never missing: old and new chunks are there, and the registry knows it is unfinished.
    record = registry_of(store_settings).get(next(r.source_id for r in services.registry.all() if r.path.endswith("befragung.md")))
    assert record is not None and record.status == "replacing"

    report = services.pipeline().run([tiny_corpus])
    assert report.updated == 1
    texts = [t for _, texts, metas, _ in services.store.iter_all() for t, m in zip(texts, metas) if "befragt" in t]
    assert len(texts) == 1 and "415" in texts[0]


def test_other_embedding_model_is_refused_with_reindex_hint(store_settings: Settings, tiny_corpus: Path) -> None:
    make_services(store_settings).pipeline().run([tiny_corpus])
    other = HashEmbeddings(dimension=32, model_name="test:other")
    with pytest.raises(EmbeddingMismatch, match="stadtretter reindex"):
        ChunkStore(store_settings, other.model_name, other.dimension)


def test_reindex_switches_model_and_keeps_every_document(store_settings: Settings, tiny_corpus: Path) -> None:
    make_services(store_settings).pipeline().run([tiny_corpus])
    other = HashEmbeddings(dimension=32, model_name="test:other")
    services = make_services(store_settings, other)
    report = services.reindex()
    assert report.added == 3 and not report.failed
    store = ChunkStore(store_settings, other.model_name, other.dimension)
    assert store.count() == report.chunks_embedded
    assert {r.type for r in registry_of(store_settings).all()} == {"article", "webtalk"}
    assert services.search.search("Sitzgelegenheiten", k=3, mode="lexical")
