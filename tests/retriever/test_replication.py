"""The lexical index in step on replicas (retriever/replication.py), in one process: two data directories (two
replicas) over one Chroma server and one state database; the follower is stepped by hand."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update

from core.metrics import LEXICAL_UPDATES
from core.settings import Settings
from retriever.lexical import LexicalIndex
from retriever.replication import LexicalFollower, parts_table, versions_table
from services.container import Services
from tests.helpers import HashEmbeddings


def _replica(tmp_path: Path, name: str, chroma_url: str | None, collection: str, database_url: str,
             **extra: object) -> Services:
    settings = Settings(data_dir=tmp_path / name, corpus_dir=tmp_path / "corpus", chroma_url=chroma_url,
                        collection=collection, database_url=database_url, **extra)
    return Services(settings, embeddings=HashEmbeddings(), phase_tagger=None)


def _follower(services: Services) -> LexicalFollower:
    return LexicalFollower(lambda: services.lexical, lambda: services.store, services.index_versions, 60)


@pytest.fixture
def replicas(tmp_path: Path, request: pytest.FixtureRequest, chroma_server: str) -> tuple[Services, Services]:
    """A writer and a replica with their own data directories, one Chroma server, one state database."""
    collection = f"r{abs(hash(request.node.nodeid)) % 10**10}"
    database_url = f"sqlite:///{tmp_path / 'state.sqlite3'}"
    writer = _replica(tmp_path, "writer", chroma_server, collection, database_url)
    replica = _replica(tmp_path, "replica", chroma_server, collection, database_url)
    return writer, replica


def _counted(how: str) -> float:
    return LEXICAL_UPDATES.labels(how)._value.get()


def test_a_new_replica_installs_the_snapshot_instead_of_analysing(
    replicas: tuple[Services, Services], tiny_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer, replica = replicas
    writer.pipeline().run([tiny_corpus])
    published = writer.index_versions.latest()
    assert published is not None and published.snapshot_bytes and published.chunks == writer.store.count()
    assert writer.lexical.index_version == published.version

    monkeypatch.setattr(LexicalIndex, "sync", lambda *a, **k: pytest.fail("the replica re-analysed the chunks"))
    follower = _follower(replica)
    snapshots = _counted("snapshot")
    assert follower.step() == "snapshot"
    assert _counted("snapshot") == snapshots + 1
    assert replica.lexical.ids == writer.lexical.ids and replica.lexical.index_version == published.version
    hits = replica.search.search("Stadtmarketing GmbH Hotspot", k=3, mode="lexical")
    assert hits and "Stadtmarketing" in hits[0].text
    assert follower.step() == "current"  # nothing new: one SELECT, no download


def test_without_a_snapshot_the_replica_syncs_from_the_store(
    replicas: tuple[Services, Services], tiny_corpus: Path
) -> None:
    writer, replica = replicas
    writer.pipeline().run([tiny_corpus])
    with writer.database.engine.begin() as connection:
        connection.execute(delete(parts_table))
    syncs = _counted("sync")
    assert _follower(replica).step() == "sync"
    assert _counted("sync") == syncs + 1
    assert sorted(replica.lexical.ids) == sorted(writer.lexical.ids)
    assert replica.lexical.index_version == writer.index_versions.latest().version


def test_a_damaged_snapshot_is_refused_and_the_replica_syncs(
    replicas: tuple[Services, Services], tiny_corpus: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer, replica = replicas
    writer.pipeline().run([tiny_corpus])
    with writer.database.engine.begin() as connection:
        connection.execute(update(parts_table).values(data=b"kein tar"))
    with caplog.at_level(logging.WARNING, logger="stadtretter.lexical"):
        assert _follower(replica).step() == "sync"
    assert "unbrauchbar" in caplog.text
    assert sorted(replica.lexical.ids) == sorted(writer.lexical.ids)


def test_a_deleted_chunk_is_never_cited_by_a_replica_that_has_not_followed_yet(
    replicas: tuple[Services, Services], tiny_corpus: Path
) -> None:
    writer, replica = replicas
    writer.pipeline().run([tiny_corpus])
    follower = _follower(replica)
    follower.step()
    wlan = next(r for r in writer.registry.all() if r.path.endswith("wlan.md"))
    deleted = sorted(writer.store.ids_for_source(wlan.source_id))
    assert any(h.metadata["source_id"] == wlan.source_id
               for h in replica.search.search("Wer betreibt das WLAN in Lindenfeld?", k=5))

    writer.content.delete(wlan.source_id)
    assert replica.lexical.row_of(deleted[0]) is not None  # the replica's index still holds the deleted chunks
    for mode in ("hybrid", "lexical", "dense"):
        hits = replica.search.search("Wer betreibt das WLAN in Lindenfeld?", k=5, mode=mode)  # type: ignore[arg-type]
        assert not {h.chunk_id for h in hits} & set(deleted), mode
        assert not {h.chunk_id for h in replica.search.expand(hits)} & set(deleted), mode
    answer = replica.qa.ask("Wer betreibt das WLAN in Lindenfeld?")
    assert not {c.chunk_id for c in answer.citations} & set(deleted)
    check = next(c for c in replica.readiness() if c.name == "lexical_index")
    assert not check.ok and "hinter der veröffentlichten Version" in check.detail

    assert follower.step() == "snapshot"
    assert replica.lexical.row_of(deleted[0]) is None
    assert next(c for c in replica.readiness() if c.name == "lexical_index").ok


def test_a_new_chunk_is_cited_only_once_the_replica_has_it(
    replicas: tuple[Services, Services], tiny_corpus: Path, tmp_path: Path
) -> None:
    """Chroma is shared and sees new chunks at once; a replica cites them only with its lexical index in step."""
    writer, replica = replicas
    writer.pipeline().run([tiny_corpus / "articles"])
    follower = _follower(replica)
    follower.step()
    writer.pipeline().run([tiny_corpus])  # adds the WebTalk
    question = "Wie viele Lasersensoren zählen die Passanten in der Hauptstraße?"
    assert not any(h.metadata.get("type") == "webtalk" for h in replica.search.search(question, k=5))
    assert follower.step() == "snapshot"
    assert replica.search.search(question, k=5)[0].metadata.get("type") == "webtalk"


def test_only_the_last_snapshots_are_kept(tmp_path: Path, chroma_server: str, tiny_corpus: Path) -> None:
    writer = _replica(tmp_path, "writer", chroma_server, "keep2", f"sqlite:///{tmp_path / 's.sqlite3'}",
                      lexical_snapshots_keep=2)
    writer.pipeline().run([tiny_corpus])
    for _ in range(3):
        writer.lexical_publisher.publish(writer.store)
    with writer.database.engine.connect() as connection:
        versions = connection.execute(select(versions_table.c.version)).scalars().all()
        with_parts = connection.execute(select(parts_table.c.version).distinct()).scalars().all()
        parts = connection.execute(select(func.count()).select_from(parts_table)).scalar()
    assert len(versions) == 4 and sorted(with_parts) == sorted(versions)[-2:] and parts >= 2


def test_one_machine_publishes_versions_without_snapshots_and_follows_for_free(
    tmp_path: Path, tiny_corpus: Path
) -> None:
    """The default (embedded Chroma, SQLite): a version row per change, no snapshot; the process that published
    is in step without doing anything."""
    services = Services(Settings(data_dir=tmp_path / "data", corpus_dir=tiny_corpus), embeddings=HashEmbeddings(),
                        phase_tagger=None)
    services.pipeline().run([tiny_corpus])
    latest = services.index_versions.latest()
    assert latest is not None and latest.snapshot_bytes is None
    assert _follower(services).step() == "current"
    assert services.lexical.index_version == latest.version
    check = next(c for c in services.readiness() if c.name == "lexical_index")
    assert check.ok and f"Version {latest.version}" in check.detail


def test_after_a_reindex_elsewhere_the_replica_reopens_the_new_collection(
    replicas: tuple[Services, Services], tiny_corpus: Path
) -> None:
    writer, replica = replicas
    writer.pipeline().run([tiny_corpus])
    follower = LexicalFollower(lambda: replica.lexical, lambda: replica.store, replica.index_versions, 60,
                               store_replaced=replica.reset)
    follower.step()
    old_collection = replica.store.collection.id
    writer.reindex()  # a new collection under the same name; the old one is deleted
    follower.step()
    assert replica.store.collection.id != old_collection
    assert replica.lexical.index_version == writer.index_versions.latest().version
    hits = replica.search.search("Lasersensoren Passanten Hauptstraße", k=3)
    assert hits and hits[0].metadata.get("type") == "webtalk"


def test_a_fresh_local_build_about_to_be_published_is_left_alone(
    replicas: tuple[Services, Services], tiny_corpus: Path
) -> None:
    """A writer on this disk has synced but not yet published: the follower must not put the older published
    build back (nor sync over it)."""
    writer, _ = replicas
    writer.pipeline().run([tiny_corpus / "articles"])
    follower = _follower(writer)
    assert follower.step() == "current"
    writer.pipeline().run([tiny_corpus])  # as far as the listeners: lexical sync + publish ...
    with writer.database.engine.begin() as connection:  # ... minus the publish
        connection.execute(delete(versions_table).where(versions_table.c.version == 2))
    fresh = list(writer.lexical.ids)
    assert follower.step() == "behind"
    assert writer.lexical.ids == fresh


def test_readiness_says_when_the_published_version_cannot_be_read(tmp_path: Path, tiny_corpus: Path) -> None:
    from tests.conftest import free_port

    url = f"postgresql+psycopg://nobody:geheim@127.0.0.1:{free_port()}/state"  # nothing listens there
    services = Services(Settings(data_dir=tmp_path / "data", corpus_dir=tiny_corpus, database_url=url),
                        embeddings=HashEmbeddings(), phase_tagger=None)
    check = next(c for c in services.readiness() if c.name == "lexical_index")
    assert not check.ok and check.detail == "Indexversion nicht abrufbar: Zustandsdatenbank nicht erreichbar"
    assert "geheim" not in check.detail
