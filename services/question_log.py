"""The question log (Fragenprotokoll): every public question with its time, phase, whether the chat abstained or
answered only with reservation (`uncertain`), the filters, and a rating and comment when the participant gave one.
No IP address, no cookie, no key, no conversation id is stored. Rows older than the retention period
(settings.question_log_days) are deleted on every write and before every read.

The table lives in the state database (SQLAlchemy; created by the Alembic revision 0003_question_log). The question's
embedding is stored with it (the answer has just computed it), and the ids of the chunks it retrieves, so grouping
the log by meaning (services/question_groups.py) embeds nothing again.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
from sqlalchemy import (
    Boolean, Column, DateTime, Engine, Integer, LargeBinary, String, Table, Text, delete, false, func, insert,
    select, update,
)

from core.database import Base
from core.embeddings import StadtretterEmbeddings
from core.vocabulary import SearchMode
from retriever.models import Answer, PhaseTag, SearchFilters

logger = logging.getLogger("stadtretter.question_log")

# Created by the Alembic revision 0003_question_log, `uncertain` added by 0008_question_log_uncertain
# (core/migrations/versions).
question_log = Table(
    "question_log",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("asked_at", DateTime(timezone=True), nullable=False),
    Column("question", Text, nullable=False),
    Column("phase", String(16)),  # the answer's EKT phase (E, K, T, übergreifend); none when abstained
    Column("abstained", Boolean, nullable=False),
    # Answered with the notice to check the cited passage (Answer.uncertain); never set when abstained.
    Column("uncertain", Boolean, nullable=False, server_default=false()),
    Column("filters", Text, nullable=False, server_default="{}"),  # JSON: types, phases, dates, mode
    Column("rating", String(4)),  # up | down, when the participant rated the answer
    Column("comment", Text),
    Column("embedding_model", String(200)),
    Column("vector", LargeBinary),  # float32 question embedding of embedding_model
    Column("retrieved", Text),  # JSON: ids of the chunks the question retrieves, best first (for grouping)
)
RETRIEVED = 10  # chunks per question kept for grouping
RATING_WINDOW = timedelta(hours=24)  # a rating belongs to the newest unrated row with the same question in this window


@dataclass
class LoggedQuestion:
    id: int
    asked_at: datetime
    question: str
    phase: str | None
    abstained: bool
    uncertain: bool = False  # answered only with reservation ("mit Vorbehalt")
    filters: dict[str, Any] = field(default_factory=dict)
    rating: str | None = None
    comment: str | None = None
    retrieved: list[str] = field(default_factory=list, repr=False)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def filters_dict(filters: SearchFilters | None, mode: SearchMode | None) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if filters is not None:
        data.update({key: value for key, value in (("types", filters.types), ("phases", filters.phases),
                                                   ("date_from", filters.date_from), ("date_to", filters.date_to))
                     if value})
    if mode:
        data["mode"] = mode
    return data


class QuestionLog:
    def __init__(self, engine: Engine, retention_days: int, embeddings: StadtretterEmbeddings) -> None:
        self.engine = engine
        self.retention_days = retention_days
        self.embeddings = embeddings

    def record(self, question: str, answer: Answer, filters: SearchFilters | None = None,
               mode: SearchMode | None = None, vector: np.ndarray | None = None,
               retrieved: list[str] | None = None, asked_at: datetime | None = None) -> int:
        phase = answer.phase.phase if answer.phase is not None and not answer.abstained else None
        values = {
            "asked_at": _utc(asked_at or datetime.now(timezone.utc)), "question": question.strip(), "phase": phase,
            "abstained": bool(answer.abstained), "uncertain": bool(answer.uncertain) and not answer.abstained,
            "filters": json.dumps(filters_dict(filters, mode), ensure_ascii=False),
            "embedding_model": self.embeddings.model_name if vector is not None else None,
            "vector": np.asarray(vector, dtype=np.float32).tobytes() if vector is not None else None,
            "retrieved": json.dumps(retrieved or []),
        }
        with self.engine.begin() as db:
            self._expire(db)
            return int(db.execute(insert(question_log).values(**values)).inserted_primary_key[0])

    def rate(self, question: str, rating: str, comment: str | None) -> bool:
        """Attach a rating to the newest unrated row with this question asked within RATING_WINDOW."""
        since = datetime.now(timezone.utc) - RATING_WINDOW
        with self.engine.begin() as db:
            row_id = db.execute(
                select(question_log.c.id)
                .where(question_log.c.question == question.strip(), question_log.c.rating.is_(None),
                       question_log.c.asked_at >= since)
                .order_by(question_log.c.asked_at.desc(), question_log.c.id.desc()).limit(1)
            ).scalar()
            if row_id is None:
                return False
            db.execute(update(question_log).where(question_log.c.id == row_id).values(rating=rating, comment=comment))
        return True

    def expire(self) -> int:
        with self.engine.begin() as db:
            return self._expire(db)

    def _expire(self, db: Any) -> int:
        cutoff = datetime.now(timezone.utc) - timedelta(days=self.retention_days)
        return int(db.execute(delete(question_log).where(question_log.c.asked_at < cutoff)).rowcount or 0)

    def count(self) -> int:
        with self.engine.connect() as db:
            return int(db.execute(select(func.count()).select_from(question_log)).scalar() or 0)

    def entries(self, abstained: bool | None = None, phase: str | None = None, since: datetime | None = None,
                until: datetime | None = None, text: str | None = None, limit: int | None = None,
                uncertain: bool | None = None) -> list[LoggedQuestion]:
        self.expire()
        query = select(*[c for c in question_log.c if c.name not in ("vector", "embedding_model", "retrieved")])
        query = self._where(query, abstained, phase, since, until, text, uncertain)
        query = query.order_by(question_log.c.asked_at.desc(), question_log.c.id.desc())
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as db:
            return [self._entry(row) for row in db.execute(query).mappings()]

    def vectors(self, abstained: bool | None = None, phase: str | None = None, since: datetime | None = None,
                until: datetime | None = None, uncertain: bool | None = None
                ) -> tuple[list[LoggedQuestion], np.ndarray]:
        """Entries with their question embeddings (missing or other-model vectors are embedded now)."""
        self.expire()
        query = self._where(select(question_log), abstained, phase, since, until, None, uncertain)
        with self.engine.connect() as db:
            rows = list(db.execute(query.order_by(question_log.c.asked_at, question_log.c.id)).mappings())
        entries = [self._entry(row) for row in rows]
        if not rows:
            return [], np.empty((0, self.embeddings.dimension), np.float32)
        stale = [i for i, row in enumerate(rows)
                 if row["vector"] is None or row["embedding_model"] != self.embeddings.model_name]
        fresh = dict(zip(stale, self.embeddings.embed_queries([rows[i]["question"] for i in stale]))) if stale else {}
        vectors = [fresh[i] if i in fresh else np.frombuffer(row["vector"], dtype=np.float32)
                   for i, row in enumerate(rows)]
        return entries, np.stack(vectors).astype(np.float32)

    @staticmethod
    def _where(query: Any, abstained: bool | None, phase: str | None, since: datetime | None,
               until: datetime | None, text: str | None, uncertain: bool | None = None) -> Any:
        c = question_log.c
        if abstained is not None:
            query = query.where(c.abstained.is_(abstained))
        if uncertain is not None:
            query = query.where(c.uncertain.is_(uncertain))
        if phase:
            query = query.where(c.phase == phase)
        if since:
            query = query.where(c.asked_at >= _utc(since))
        if until:
            query = query.where(c.asked_at < _utc(until))
        if text:
            query = query.where(c.question.icontains(text, autoescape=True))  # "%" and "_" are literal
        return query

    @staticmethod
    def _entry(row: Any) -> LoggedQuestion:
        return LoggedQuestion(
            id=row["id"], asked_at=_utc(row["asked_at"]), question=row["question"], phase=row["phase"],
            abstained=bool(row["abstained"]), uncertain=bool(row["uncertain"]),
            filters=json.loads(row["filters"] or "{}"), rating=row["rating"], comment=row["comment"],
            retrieved=json.loads(row.get("retrieved") or "[]"),
        )


RATING_LABELS = {"up": "hilfreich", "down": "nicht hilfreich"}
CSV_COLUMNS = ("Zeit (UTC)", "Frage", "Phase", "Unbeantwortet", "Mit Vorbehalt", "Bewertung", "Kommentar", "Filter")


def to_csv(entries: Iterable[LoggedQuestion]) -> str:
    """The log as CSV (German headers, semicolons, as spreadsheet software in Germany expects)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        writer.writerow([
            entry.asked_at.strftime("%Y-%m-%d %H:%M:%S"), entry.question, entry.phase or "",
            "ja" if entry.abstained else "nein", "ja" if entry.uncertain else "nein",
            RATING_LABELS.get(entry.rating or "", ""), entry.comment or "",
            json.dumps(entry.filters, ensure_ascii=False) if entry.filters else "",
        ])
    return buffer.getvalue()


class LoggedQA:
    """QAService for public questions: answers as QAService does and logs each question. A failing log never
    stops an answer."""

    def __init__(self, qa: Any, log: QuestionLog) -> None:
        self.qa = qa
        self.log = log

    def ask(self, question: str, filters: SearchFilters | None = None, mode: SearchMode | None = None,
            history: Any = None, conversation_id: str | None = None) -> Answer:
        answer = self.qa.ask(question, filters=filters, mode=mode, history=history, conversation_id=conversation_id)
        self._record(question, answer, filters, mode)
        return answer

    def stream(self, question: str, filters: SearchFilters | None = None, mode: SearchMode | None = None,
               history: Any = None, conversation_id: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        phase: dict[str, Any] | None = None
        for event, data in self.qa.stream(question, filters=filters, mode=mode, history=history,
                                          conversation_id=conversation_id):
            if event == "phase":
                phase = data
            yield event, data
            if event == "done":  # after the client has the answer: logging adds no waiting
                answer = Answer(question, data.get("answer", ""), [], abstained=bool(data.get("abstained")),
                                phase=PhaseTag(**phase) if phase else None, uncertain=bool(data.get("uncertain")))
                self._record(question, answer, filters, mode)

    def _record(self, question: str, answer: Answer, filters: SearchFilters | None, mode: SearchMode | None) -> None:
        try:
            vector = self.qa.answerer.query_vector(question)  # just computed for the answer: a cache hit
            # What the question finds, unfiltered: two wordings of one need find the same passages (grouping).
            hits = self.qa.answerer.search.search(question, k=RETRIEVED, vector=vector)
            self.log.record(question, answer, filters, mode, vector=vector, retrieved=[h.chunk_id for h in hits])
        except Exception as exc:  # noqa: BLE001 - the participant gets the answer anyway
            logger.error("Frage nicht protokolliert: %s", exc)
