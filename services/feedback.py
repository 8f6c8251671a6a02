"""Feedback on answers (👍/👎 plus an optional comment), stored in SQLite at settings.app_db_path."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from core.sqlite import connect
from core.store import StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,            -- UTC, ISO 8601
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    citations TEXT NOT NULL DEFAULT '[]', -- JSON list as shown to the participant
    rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    comment TEXT,
    conversation_id TEXT
);
CREATE INDEX IF NOT EXISTS feedback_created ON feedback (created_at);
"""


class FeedbackUnavailable(StoreError):
    """The feedback database cannot be opened or written (German message)."""


@dataclass
class Feedback:
    question: str
    answer: str
    rating: Literal["up", "down"]
    citations: list[dict[str, Any]] = field(default_factory=list)  # as the participant saw them
    comment: str | None = None
    conversation_id: str | None = None
    id: int | None = None  # set when stored
    created_at: str | None = None  # UTC, ISO 8601; set when stored


class FeedbackStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _db(self, failure: str) -> Iterator[sqlite3.Connection]:
        """A connection to a database with the feedback table; errors become FeedbackUnavailable(`failure`)."""
        try:
            with connect(self.path) as db:
                db.executescript(SCHEMA)
                yield db
        except (OSError, sqlite3.Error) as exc:
            raise FeedbackUnavailable(f"{failure}: {exc}") from exc

    def add(self, feedback: Feedback) -> Feedback:
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._db("Feedback konnte nicht gespeichert werden") as db:
            cursor = db.execute(
                "INSERT INTO feedback (created_at, question, answer, citations, rating, comment, conversation_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (created, feedback.question, feedback.answer, json.dumps(feedback.citations, ensure_ascii=False),
                 feedback.rating, feedback.comment, feedback.conversation_id),
            )
            feedback_id = int(cursor.lastrowid or 0)
        return replace(feedback, id=feedback_id, created_at=created)

    def list(self, limit: int, rating: str | None = None) -> tuple[list[Feedback], int]:
        """The newest `limit` entries (optionally of one rating) and how many there are in all."""
        where, params = ("WHERE rating = ?", [rating]) if rating else ("", [])
        with self._db("Die Feedback-Datenbank ist nicht erreichbar") as db:
            total = db.execute(f"SELECT COUNT(*) FROM feedback {where}", params).fetchone()[0]
            rows = db.execute(
                f"SELECT * FROM feedback {where} ORDER BY created_at DESC, id DESC LIMIT ?", [*params, limit]
            ).fetchall()
        items = [
            Feedback(
                id=row["id"], created_at=row["created_at"], question=row["question"], answer=row["answer"],
                citations=json.loads(row["citations"] or "[]"), rating=row["rating"], comment=row["comment"],
                conversation_id=row["conversation_id"],
            )
            for row in rows
        ]
        return items, int(total)
