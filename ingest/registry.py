"""Registry of ingested files: what was ingested from where, with which file hash and model.

It lets a re-run skip unchanged files without parsing or embedding them, marks documents whose replacement is
in progress (so a crash is repaired on the next run), and answers `GET /v1/sources` without scanning Chroma.

The table `sources` lives in the state database (core/database.py, Alembic revision 0004_chat_state). Each row
belongs to a Chroma collection: a reindex fills the rows of its side collection and `adopt` swaps them in within
one transaction.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Engine, Float, Integer, String, Table, Text, delete, select, update

from core.database import Base, upsert

sources_table = Table(
    "sources",
    Base.metadata,
    Column("collection", String(200), primary_key=True),  # the Chroma collection holding the chunks
    Column("source_id", Text, primary_key=True),
    Column("path", Text, nullable=False),
    Column("file_hash", String(128), nullable=False),
    Column("status", String(16), nullable=False),  # 'ok' or 'replacing' (crash during replacement: repair next run)
    Column("title", Text),
    Column("type", String(32)),
    Column("url", Text),
    Column("date", String(32)),
    Column("author", Text),
    Column("chunk_count", Integer, nullable=False, default=0),
    Column("phase", String(16)),
    Column("phase_scores", Text),  # JSON object
    Column("warnings", Text),  # JSON list
    Column("updated_at", Float),  # Unix time
)
_COLUMNS = [column.name for column in sources_table.columns if column.name not in ("collection", "source_id")]


@dataclass
class SourceRecord:
    source_id: str
    path: str
    file_hash: str
    status: str = "ok"
    title: str | None = None
    type: str | None = None
    url: str | None = None
    date: str | None = None
    author: str | None = None
    chunk_count: int = 0
    phase: str | None = None
    phase_scores: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    updated_at: float = 0.0


class Registry:
    """The registry rows of one Chroma collection."""

    def __init__(self, engine: Engine, collection: str) -> None:
        self.engine = engine
        self.collection = collection

    def _mine(self) -> Any:
        return sources_table.c.collection == self.collection

    def get(self, source_id: str) -> SourceRecord | None:
        with self.engine.connect() as db:
            row = db.execute(select(sources_table).where(self._mine(), sources_table.c.source_id == source_id)).first()
        return record_of(row._mapping) if row else None

    def all(self) -> list[SourceRecord]:
        c = sources_table.c
        # NULLs placed explicitly: SQLite and PostgreSQL sort them at opposite ends by default
        query = select(sources_table).where(self._mine()).order_by(
            c.type.asc().nulls_first(), c.date.desc().nulls_last(), c.title.asc().nulls_first()
        )
        with self.engine.connect() as db:
            return [record_of(row._mapping) for row in db.execute(query)]

    def ingested(self) -> list[SourceRecord]:
        """The documents that were ingested successfully (what users can search and cite)."""
        return [record for record in self.all() if record.status == "ok"]

    def mark_replacing(self, source_id: str, path: str) -> None:
        values = {"collection": self.collection, "source_id": source_id, "path": path, "file_hash": "",
                  "status": "replacing", "chunk_count": 0, "updated_at": time.time()}
        with self.engine.begin() as db:
            upsert(db, sources_table, values, key=("collection", "source_id"), update=("status", "updated_at"))

    def save(self, record: SourceRecord) -> None:
        record.updated_at = time.time()
        with self.engine.begin() as db:
            upsert(db, sources_table, {"collection": self.collection, **row_of(record)},
                   key=("collection", "source_id"), update=_COLUMNS)

    def remove(self, source_id: str) -> None:
        with self.engine.begin() as db:
            db.execute(delete(sources_table).where(self._mine(), sources_table.c.source_id == source_id))

    def clear(self) -> None:
        with self.engine.begin() as db:
            db.execute(delete(sources_table).where(self._mine()))

    def adopt(self, other: Registry) -> None:
        """Replace this collection's rows by those of `other` (a reindex's side collection), in one transaction:
        a reader sees either the old registry or the new one."""
        with self.engine.begin() as db:
            db.execute(delete(sources_table).where(self._mine()))
            db.execute(update(sources_table).where(sources_table.c.collection == other.collection)
                       .values(collection=self.collection))


def row_of(record: SourceRecord) -> dict[str, Any]:
    """A record as column values (JSON for the score and warning lists)."""
    return {
        "source_id": record.source_id, "path": record.path, "file_hash": record.file_hash, "status": record.status,
        "title": record.title, "type": record.type, "url": record.url, "date": record.date, "author": record.author,
        "chunk_count": record.chunk_count, "phase": record.phase, "phase_scores": json.dumps(record.phase_scores),
        "warnings": json.dumps(record.warnings, ensure_ascii=False), "updated_at": record.updated_at,
    }


def record_of(row: Any) -> SourceRecord:
    """A record from a row mapping (of this table, or of the old registry file: services/legacy_state.py)."""
    data = {name: row.get(name) for name in ("source_id", *_COLUMNS)}
    data["phase_scores"] = json.loads(data["phase_scores"] or "{}")
    data["warnings"] = json.loads(data["warnings"] or "[]")
    data["updated_at"] = data["updated_at"] or 0.0
    data["chunk_count"] = data["chunk_count"] or 0
    return SourceRecord(**data)
