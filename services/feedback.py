"""Feedback on answers (👍/👎 plus an optional comment), stored in the table `feedback` of the state database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Literal

from sqlalchemy import CheckConstraint, Column, Connection, Engine, Integer, String, Table, Text, func, select, true
from sqlalchemy.exc import SQLAlchemyError

from core.database import Base
from core.store import StoreError

# Created by the Alembic revision 0004_chat_state (core/migrations/versions).
feedback_table = Table(
    "feedback",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", String(32), nullable=False, index=True),  # UTC, ISO 8601 to the second: sorts as text
    Column("question", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("citations", Text, nullable=False, server_default="[]"),  # JSON list as shown to the participant
    Column("rating", String(4), CheckConstraint("rating IN ('up', 'down')", name="ck_feedback_rating"),
           nullable=False),
    Column("comment", Text),
    Column("conversation_id", String(64)),
)


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
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _db(self, failure: str) -> Iterator[Connection]:
        """A transaction; database errors become FeedbackUnavailable(`failure`)."""
        try:
            with self.engine.begin() as db:
                yield db
        except SQLAlchemyError as exc:
            raise FeedbackUnavailable(f"{failure}: {getattr(exc, 'orig', None) or exc}") from exc  # the driver's words

    def add(self, feedback: Feedback) -> Feedback:
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._db("Feedback konnte nicht gespeichert werden") as db:
            result = db.execute(feedback_table.insert().values(
                created_at=created, question=feedback.question, answer=feedback.answer,
                citations=json.dumps(feedback.citations, ensure_ascii=False), rating=feedback.rating,
                comment=feedback.comment, conversation_id=feedback.conversation_id,
            ))
            feedback_id = int(result.inserted_primary_key[0])
        return replace(feedback, id=feedback_id, created_at=created)

    def list(self, limit: int, rating: str | None = None) -> tuple[list[Feedback], int]:
        """The newest `limit` entries (optionally of one rating) and how many there are in all."""
        condition = feedback_table.c.rating == rating if rating else true()
        f = feedback_table.c
        with self._db("Die Feedback-Datenbank ist nicht erreichbar") as db:
            total = db.execute(select(func.count()).select_from(feedback_table).where(condition)).scalar_one()
            rows = db.execute(select(feedback_table).where(condition)
                              .order_by(f.created_at.desc(), f.id.desc()).limit(limit)).all()
        items = [
            Feedback(
                id=row.id, created_at=row.created_at, question=row.question, answer=row.answer,
                citations=json.loads(row.citations or "[]"), rating=row.rating, comment=row.comment,
                conversation_id=row.conversation_id,
            )
            for row in rows
        ]
        return items, int(total)
