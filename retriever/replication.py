"""The lexical index in step on every replica (issue 18; design in docs/architecture.md).

Writers record an index version in the state database after each commit to the store (`LexicalPublisher`, an
ingestion listener in place of the bare index) and, when replicas may live on other machines, a snapshot of their
lexical build in parts beside it. Every API process runs a `LexicalFollower`: one cheap SELECT per poll; on a newer
version it installs the snapshot (or, without one, syncs incrementally from the store).
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import (
    BigInteger, Column, Float, ForeignKey, Integer, LargeBinary, MetaData, String, Table, delete, insert, select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from core.metrics import LEXICAL_UPDATES, LEXICAL_VERSION
from core.store import ChunkStore
from retriever.lexical import LexicalIndex

logger = logging.getLogger("stadtretter.lexical")

PART_BYTES = 4 * 1024 * 1024  # one row per part: well below PostgreSQL's and SQLite's value limits
COMPRESSLEVEL = 1  # the postings are float/int arrays that compress little; level 1 is several times faster than 6

metadata = MetaData()
versions_table = Table(
    "index_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=True),
    Column("chunks", Integer, nullable=False),
    Column("signature", String(64), nullable=False),  # LexicalIndex.content_signature of the build
    Column("collection_id", String(64)),  # the Chroma collection it was built from (a reindex replaces it)
    Column("snapshot_bytes", BigInteger),  # None: published without a snapshot
    Column("created_at", Float, nullable=False),
)
parts_table = Table(
    "index_snapshot_parts",
    metadata,
    Column("version", Integer, ForeignKey("index_versions.version", ondelete="CASCADE"), primary_key=True),
    Column("part", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
)


@dataclass(frozen=True)
class IndexVersion:
    version: int
    chunks: int
    signature: str
    collection_id: str | None
    snapshot_bytes: int | None
    created_at: float


def pack(directory: Path) -> bytes:
    """The build's files (postings, fields, word cache, marker) as a compressed tar."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=COMPRESSLEVEL) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.add(path, arcname=str(path.relative_to(directory)))
    return buffer.getvalue()


def install(index: LexicalIndex, snapshot: bytes, expected_signature: str) -> None:
    """Unpack a snapshot beside the index and swap it in; refuses (ValueError) one that is not the expected build,
    keeping the old index."""
    incoming = index.path.with_name(index.path.name + ".incoming")
    shutil.rmtree(incoming, ignore_errors=True)
    incoming.mkdir(parents=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(snapshot), mode="r:gz") as archive:
            archive.extractall(incoming, filter="data")
        marker = json.loads((incoming / "ids.json").read_text(encoding="utf-8"))
        if marker.get("content_signature") != expected_signature:
            raise ValueError("Schnappschuss passt nicht zu seiner Version")
        index.replace_with(incoming)
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)
        raise


class VersionLog:
    """Published index versions and their snapshots in the state database."""

    def __init__(self, engine: Engine, keep_snapshots: int = 3) -> None:
        self.engine = engine
        self.keep_snapshots = keep_snapshots

    def latest(self) -> IndexVersion | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(versions_table).order_by(versions_table.c.version.desc()).limit(1)
            ).first()
        return IndexVersion(**row._mapping) if row is not None else None

    def publish(self, index: LexicalIndex, snapshot: bool, collection_id: str | None = None) -> IndexVersion:
        """Record the index's current build as the newest version (with its snapshot), in one transaction; older
        snapshots beyond `keep_snapshots` are deleted."""
        index.load()
        data = pack(index.path) if snapshot else None
        created = time.time()
        with self.engine.begin() as connection:
            version = connection.execute(
                insert(versions_table).values(
                    chunks=len(index.ids), signature=index.content_signature, collection_id=collection_id,
                    snapshot_bytes=len(data) if data is not None else None, created_at=created,
                )
            ).inserted_primary_key[0]
            if data is not None:
                connection.execute(insert(parts_table), [
                    {"version": version, "part": n, "data": data[start : start + PART_BYTES]}
                    for n, start in enumerate(range(0, len(data), PART_BYTES))
                ])
                kept = select(versions_table.c.version).where(versions_table.c.snapshot_bytes.is_not(None)) \
                    .order_by(versions_table.c.version.desc()).limit(self.keep_snapshots)
                connection.execute(delete(parts_table).where(parts_table.c.version.not_in(kept)))
        index.mark_version(version, index.content_signature)
        return IndexVersion(version, len(index.ids), index.content_signature, collection_id,
                            len(data) if data is not None else None, created)

    def snapshot(self, version: int) -> bytes | None:
        """The snapshot of `version`, None when it has none (any more)."""
        with self.engine.connect() as connection:
            parts = connection.execute(
                select(parts_table.c.data).where(parts_table.c.version == version).order_by(parts_table.c.part)
            ).scalars().all()
        return b"".join(parts) if parts else None


def collection_id(store: ChunkStore) -> str:
    return str(store.collection.id)


class LexicalPublisher:
    """An ingestion listener in place of the lexical index: syncs it after a run, then publishes the version."""

    def __init__(self, index: LexicalIndex, log: VersionLog, snapshots: bool) -> None:
        self.index, self.log, self.snapshots = index, log, snapshots

    def sync(self, store: ChunkStore) -> None:
        with self.index.updating:
            self.index.sync(store)
            self.publish(store)

    def is_current(self, store: ChunkStore) -> bool:
        """In step with the store and published (a run that died between syncing and publishing is finished by
        the next one)."""
        if not self.index.is_current(store):
            return False
        try:
            latest = self.log.latest()
        except SQLAlchemyError:
            return True  # nothing to do about it now; publish reports the database error when there is a change
        return latest is not None and latest.signature == self.index.content_signature

    def publish(self, store: ChunkStore) -> IndexVersion | None:
        """A failing state database costs the replicas their update, never the ingestion (logged; the next run
        publishes again)."""
        try:
            with self.index.updating:
                return self.log.publish(self.index, self.snapshots, collection_id(store))
        except SQLAlchemyError as exc:
            logger.error("Indexversion nicht veröffentlicht (Zustandsdatenbank): %s", exc)
            return None


FollowOutcome = Literal["none", "current", "snapshot", "sync", "behind"]


class LexicalFollower:
    """Brings this process's lexical index to the newest published version; `step` once, or `start` a daemon
    thread stepping every `interval` seconds. The index and the store are asked for at each step (the services
    rebuild them after a reindex). `store_replaced` is called when a version was built from another collection
    than this process has open (a reindex elsewhere replaced it): the caller reopens the store."""

    def __init__(
        self, index: Callable[[], LexicalIndex], store: Callable[[], ChunkStore], log: VersionLog, interval: float,
        store_replaced: Callable[[], None] = lambda: None,
    ) -> None:
        self.index, self.store, self.log, self.interval = index, store, log, interval
        self.store_replaced = store_replaced
        self._unusable_snapshot: int | None = None
        self._handled: int | None = None  # the newest version this follower has dealt with
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> FollowOutcome:
        latest = self.log.latest()
        if latest is None:
            return "none"
        if latest.collection_id and latest.collection_id != collection_id(self.store()):
            logger.info("Indexversion %s stammt aus einer neu aufgebauten Sammlung: öffne sie", latest.version)
            self.store_replaced()
        index = self.index()
        with index.updating:
            index.load()
            if index.content_signature == latest.signature:
                index.mark_version(latest.version)
                self._handled = latest.version
                LEXICAL_VERSION.set(latest.version)
                return "current"
            if latest.version == self._handled:
                # handled already (synced from the store, its snapshot was missing), or the local build is newer
                # than this version: a writer on this disk has just built it and is about to publish it
                return "behind"
            outcome = self._update(index, latest)
            self._handled = latest.version
            return outcome

    def _update(self, index: LexicalIndex, latest: IndexVersion) -> FollowOutcome:
        started = time.perf_counter()
        snapshot = None
        if latest.snapshot_bytes and self._unusable_snapshot != latest.version:
            snapshot = self.log.snapshot(latest.version)
        if snapshot is not None:
            try:
                install(index, snapshot, latest.signature)
            except (tarfile.TarError, OSError, ValueError, KeyError) as exc:
                self._unusable_snapshot = latest.version
                logger.warning("Schnappschuss der Indexversion %s unbrauchbar (%s): synchronisiere aus dem Store",
                               latest.version, exc)
            else:
                return self._reached(index, latest.version, "snapshot", started)
        index.sync(self.store())
        return self._reached(index, latest.version, "sync", started)

    def _reached(self, index: LexicalIndex, version: int, how: Literal["snapshot", "sync"],
                 started: float) -> FollowOutcome:
        index.mark_version(version)
        LEXICAL_UPDATES.labels(how).inc()
        LEXICAL_VERSION.set(version)
        logger.info("Stichwortindex auf Version %s gebracht (%s, %.2f s)", version,
                    "Schnappschuss" if how == "snapshot" else "aus dem Store synchronisiert",
                    time.perf_counter() - started)
        return how

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="lexical-follower", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.step()
            except Exception as exc:  # noqa: BLE001 - the old index stays in use; the next poll tries again
                logger.error("Stichwortindex nicht nachgeführt: %s", exc)
