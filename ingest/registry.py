"""SQLite registry of ingested files: what was ingested from where, with which file hash and model.

It lets a re-run skip unchanged files without parsing or embedding them, marks documents whose replacement is
in progress (so a crash is repaired on the next run), and answers `GET /v1/sources` without scanning Chroma.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from core.sqlite import connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    source_id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    file_hash TEXT NOT NULL,
    status TEXT NOT NULL,            -- 'ok' or 'replacing' (crash during replacement: repair on next run)
    title TEXT, type TEXT, url TEXT, date TEXT, author TEXT,
    chunk_count INTEGER NOT NULL DEFAULT 0,
    phase TEXT,
    phase_scores TEXT,
    warnings TEXT,
    updated_at REAL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


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
    def __init__(self, path: Path) -> None:
        self.path = path
        with self._connect() as db:
            db.executescript(SCHEMA)

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return connect(self.path)

    def get(self, source_id: str) -> SourceRecord | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM sources WHERE source_id = ?", (source_id,)).fetchone()
        return _record(row) if row else None

    def all(self) -> list[SourceRecord]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM sources ORDER BY type, date DESC, title").fetchall()
        return [_record(row) for row in rows]

    def ingested(self) -> list[SourceRecord]:
        """The documents that were ingested successfully (what users can search and cite)."""
        return [record for record in self.all() if record.status == "ok"]

    def mark_replacing(self, source_id: str, path: str) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO sources (source_id, path, file_hash, status, updated_at) VALUES (?, ?, '', 'replacing', ?)"
                " ON CONFLICT(source_id) DO UPDATE SET status = 'replacing', updated_at = excluded.updated_at",
                (source_id, path, time.time()),
            )

    def save(self, record: SourceRecord) -> None:
        record.updated_at = time.time()
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO sources (source_id, path, file_hash, status, title, type, url, date, author,"
                " chunk_count, phase, phase_scores, warnings, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.source_id, record.path, record.file_hash, record.status, record.title, record.type,
                    record.url, record.date, record.author, record.chunk_count, record.phase,
                    json.dumps(record.phase_scores), json.dumps(record.warnings, ensure_ascii=False), record.updated_at,
                ),
            )

    def remove(self, source_id: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM sources WHERE source_id = ?", (source_id,))

    def clear(self) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM sources")

    def get_meta(self, key: str) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


def _record(row: sqlite3.Row) -> SourceRecord:
    data = dict(row)
    data["phase_scores"] = json.loads(data.get("phase_scores") or "{}")
    data["warnings"] = json.loads(data.get("warnings") or "[]")
    return SourceRecord(**data)
