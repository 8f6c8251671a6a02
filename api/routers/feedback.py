"""Feedback on answers (👍/👎 plus an optional comment), stored in SQLite at settings.app_db_path."""

from __future__ import annotations

import json
import sqlite3
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from api.deps import SettingsDep
from api.security import same_origin
from api.web_schemas import FeedbackCitation, FeedbackItem, FeedbackList, FeedbackRequest, FeedbackSaved
from core.sqlite import connect

router = APIRouter(prefix="/v1", tags=["Feedback"])

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


class FeedbackStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        with self._connect() as db:
            db.executescript(SCHEMA)

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return connect(self.path)

    def add(self, item: FeedbackRequest) -> tuple[int, str]:
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        citations = json.dumps([c.model_dump(exclude_none=True) for c in item.citations], ensure_ascii=False)
        with self._connect() as db:
            cursor = db.execute(
                "INSERT INTO feedback (created_at, question, answer, citations, rating, comment, conversation_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (created, item.question, item.answer, citations, item.rating, item.comment, item.conversation_id),
            )
            return int(cursor.lastrowid or 0), created

    def list(self, limit: int, rating: str | None = None) -> tuple[list[FeedbackItem], int]:
        where, params = ("WHERE rating = ?", [rating]) if rating else ("", [])
        with self._connect() as db:
            total = db.execute(f"SELECT COUNT(*) FROM feedback {where}", params).fetchone()[0]
            rows = db.execute(
                f"SELECT * FROM feedback {where} ORDER BY created_at DESC, id DESC LIMIT ?", [*params, limit]
            ).fetchall()
        items = [
            FeedbackItem(
                id=row["id"], created_at=row["created_at"], question=row["question"], answer=row["answer"],
                citations=[FeedbackCitation(**c) for c in json.loads(row["citations"] or "[]")],
                rating=row["rating"], comment=row["comment"], conversation_id=row["conversation_id"],
            )
            for row in rows
        ]
        return items, int(total)


def _store(settings) -> FeedbackStore:  # noqa: ANN001 - Settings
    try:
        return FeedbackStore(settings.app_db_path)
    except (OSError, sqlite3.Error) as exc:
        raise HTTPException(status_code=503, detail=f"Die Feedback-Datenbank ist nicht erreichbar: {exc}") from exc


@router.post("/feedback", response_model=FeedbackSaved, status_code=201, summary="Feedback zu einer Antwort speichern")
def post_feedback(body: FeedbackRequest, settings: SettingsDep) -> FeedbackSaved:
    try:
        feedback_id, created = _store(settings).add(body)
    except sqlite3.Error as exc:
        raise HTTPException(status_code=503, detail=f"Feedback konnte nicht gespeichert werden: {exc}") from exc
    return FeedbackSaved(id=feedback_id, created_at=created)


@router.get("/feedback", response_model=FeedbackList, summary="Feedback für Trainer*innen (neueste zuerst)")
def list_feedback(
    request: Request,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Höchstzahl der Einträge")] = 100,
    rating: Annotated[str | None, Query(pattern="^(up|down)$", description="nur 'up' oder nur 'down'")] = None,
) -> FeedbackList:
    # Trainers read feedback on the server itself; embedding sites (widget origins) may send it but never read it.
    if request.headers.get("origin") and not same_origin(request.scope):
        raise HTTPException(status_code=403, detail="Die Feedback-Liste kann nur direkt beim Wissens-Chat abgerufen werden.")
    items, total = _store(settings).list(limit, rating)
    return FeedbackList(feedback=items, total=total)
