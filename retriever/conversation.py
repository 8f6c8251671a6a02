"""Conversations: question/answer turns in the state database, and the rewriting of follow-up questions
("Und wie finanziert man das?") into standalone queries before retrieval.

Extractive mode rewrites without a model, by a rule that is easy to explain: a follow-up (very short, starting
with "und"/"aber"/…, or pointing back with "dafür", "dort", "diese …", "… das?") gets the content words of the
previous standalone question appended in parentheses. LLM mode asks the model (prompts/condense_question.txt) and
falls back to the same rule.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column, Connection, Engine, Float, ForeignKey, Index, Integer, String, Table, Text, delete, func, select,
)

from core.database import Base, upsert
from retriever.text import analyze, fold, key_terms

logger = logging.getLogger("stadtretter.conversation")

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DAY = 86400.0

# Created by the Alembic revision 0004_chat_state (core/migrations/versions).
conversations_table = Table(
    "conversations",
    Base.metadata,
    Column("id", String(64), primary_key=True),
    Column("created_at", Float, nullable=False),  # Unix time
    Column("updated_at", Float, nullable=False, index=True),
)
turns_table = Table(
    "conversation_turns",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("conversation_id", String(64), ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
    Column("question", Text, nullable=False),
    Column("query", Text),  # the standalone form used for retrieval
    Column("answer", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_conversation_turns_conversation", "conversation_id", "id"),
)


def new_conversation_id() -> str:
    return uuid.uuid4().hex


def valid_conversation_id(value: str | None) -> bool:
    return bool(value and _ID.match(value))


@dataclass
class Turn:
    question: str
    answer: str
    query: str | None
    created_at: float


class ConversationStore:
    """Tables `conversations` (id, created_at, updated_at) and `conversation_turns` (one row per question and
    answer) in the state database. Conversations idle longer than retention_days are deleted; each keeps at most
    max_turns turns (the oldest are dropped)."""

    def __init__(self, engine: Engine, retention_days: int = 30, max_turns: int = 20) -> None:
        self.engine = engine
        self.retention_days = retention_days
        self.max_turns = max_turns

    def _cutoff(self, now: float) -> float:
        return now - self.retention_days * DAY

    def add_turn(self, conversation_id: str, question: str, answer: str, query: str | None = None,
                 now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.engine.begin() as db:
            upsert(db, conversations_table, {"id": conversation_id, "created_at": now, "updated_at": now},
                   key=("id",), update=("updated_at",))
            db.execute(turns_table.insert().values(
                conversation_id=conversation_id, question=question, query=query, answer=answer, created_at=now
            ))
            newest = (select(turns_table.c.id).where(turns_table.c.conversation_id == conversation_id)
                      .order_by(turns_table.c.id.desc()).limit(self.max_turns))
            db.execute(delete(turns_table).where(
                turns_table.c.conversation_id == conversation_id, turns_table.c.id.not_in(newest)
            ))
            self._prune(db, now)

    def turns(self, conversation_id: str, now: float | None = None) -> list[Turn]:
        """The turns of a conversation, oldest first; nothing for unknown or expired conversations."""
        now = time.time() if now is None else now
        t, c = turns_table.c, conversations_table.c
        query = (select(t.question, t.answer, t.query, t.created_at)
                 .join_from(turns_table, conversations_table, c.id == t.conversation_id)
                 .where(t.conversation_id == conversation_id, c.updated_at >= self._cutoff(now)).order_by(t.id))
        with self.engine.connect() as db:
            return [Turn(*row) for row in db.execute(query)]

    def history(self, conversation_id: str, now: float | None = None) -> list[dict[str, Any]]:
        """The turns as chat messages ({role, content}; user messages also carry the standalone `query`)."""
        messages: list[dict[str, Any]] = []
        for turn in self.turns(conversation_id, now):
            messages.append({"role": "user", "content": turn.question, "query": turn.query})
            messages.append({"role": "assistant", "content": turn.answer})
        return messages

    def prune(self, now: float | None = None) -> int:
        with self.engine.begin() as db:
            return self._prune(db, time.time() if now is None else now)

    def _prune(self, db: Connection, now: float) -> int:
        expired = select(conversations_table.c.id).where(conversations_table.c.updated_at < self._cutoff(now))
        db.execute(delete(turns_table).where(turns_table.c.conversation_id.in_(expired)))
        return db.execute(delete(conversations_table).where(conversations_table.c.id.in_(expired))).rowcount

    def delete(self, conversation_id: str) -> None:
        with self.engine.begin() as db:
            db.execute(delete(turns_table).where(turns_table.c.conversation_id == conversation_id))
            db.execute(delete(conversations_table).where(conversations_table.c.id == conversation_id))

    def count(self) -> int:
        with self.engine.connect() as db:
            return int(db.execute(select(func.count()).select_from(conversations_table)).scalar_one())


# --- follow-up questions ----------------------------------------------------------------------------------------

_SURFACE = re.compile(r"[0-9A-Za-zÀ-ÖØ-öø-ÿß]+(?:[-–][0-9A-Za-zÀ-ÖØ-öø-ÿß]+)*")
# Words that open a question continuing the previous one.
FOLLOW_UP_OPENERS = {"und", "aber", "auch", "ausserdem", "sonst", "noch", "oder", "dann", "ebenso"}
# Pronominal adverbs and demonstratives pointing back to something said before (folded forms).
ANAPHORIC = {
    "dafur", "dazu", "damit", "davon", "daruber", "daran", "darauf", "dabei", "dadurch", "darin", "daraus",
    "dagegen", "danach", "davor", "dort", "dorthin", "dortige", "hierfur", "hierzu", "hiervon", "hierbei",
    "dies", "diese", "dieser", "dieses", "diesen", "diesem", "solche", "solcher", "solches", "solchen",
    "jene", "jener", "jenes", "derselbe", "dieselbe", "dasselbe", "deren", "dessen",
}
# Pronouns that point back only when they end the question ("Was kostet das?", "Wer bezahlt sie?"); "es" too,
# except in "… gibt es?".
CLOSING_PRONOUNS = {"das", "es", "sie", "er", "ihn", "ihm", "ihr", "ihnen", "dem", "den", "die"}
MAX_CONTEXT_WORDS = 8


def is_follow_up(question: str) -> bool:
    """True for questions that only make sense with the previous one."""
    tokens = [fold(word) for word in _SURFACE.findall(question)]
    if not tokens:
        return False
    if not key_terms(question):
        return True  # "Wie genau?", "Warum?"
    if tokens[0] in FOLLOW_UP_OPENERS:
        return True
    if any(token in ANAPHORIC for token in tokens):
        return True
    if tokens[-1] == "es" and len(tokens) > 1 and tokens[-2] == "gibt":
        return False
    return tokens[-1] in CLOSING_PRONOUNS


def content_words(text: str) -> list[str]:
    """Surface words of a text that carry content (not stop or question words), in order, without repeats."""
    seen: set[str] = set()
    out: list[str] = []
    for word in _SURFACE.findall(re.sub(r"[()]", " ", text)):
        stems = analyze(word)
        if not stems or set(stems) <= seen:
            continue
        seen.update(stems)
        out.append(word)
    return out


def _topic_words(text: str) -> set[str]:
    """Nouns and names (capitalised; question words are stop words anyway), numbers, adjectives before a noun."""
    tokens = _SURFACE.findall(re.sub(r"[()]", " ", text))
    topic: set[str] = set()
    for index, word in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else ""
        if any(ch.isdigit() for ch in word) or word[:1].isupper():
            topic.add(word)
        elif word[:1].islower() and following[:1].isupper() and re.search(r"(?:e|en|er|es|em)$", word):
            topic.add(word)
    return topic


def combine(question: str, previous_query: str) -> str:
    """The follow-up with the previous question's topic that it does not already contain.

    The topic is the previous question's nouns and names (capitalised in German) and numbers; its verbs carry
    the previous intent ("finanziert"), which would pull the follow-up back to the old answer. Questions typed
    all in lower case have no such cue: then all content words are the topic."""
    own = key_terms(question)
    candidates = content_words(previous_query)
    topic_words = _topic_words(previous_query)
    topic = [w for w in candidates if w in topic_words] or candidates
    words = [w for w in topic if not set(analyze(w)) <= own][:MAX_CONTEXT_WORDS]
    if not words:
        return question
    return f"{question} ({' '.join(words)})"


def previous_query(history: Iterable[dict[str, Any]]) -> str | None:
    """The standalone form of the last user question in the history: its stored query, or else the user
    questions folded from the start with the same rule."""
    users = [item for item in history if item.get("role") == "user" and str(item.get("content", "")).strip()]
    if not users:
        return None
    if users[-1].get("query"):
        return str(users[-1]["query"])
    standalone: str | None = None
    for item in users:
        question = str(item["content"]).strip()
        standalone = combine(question, standalone) if standalone and is_follow_up(question) else question
    return standalone


def rewrite_follow_up(question: str, history: Iterable[dict[str, Any]]) -> str:
    """Standalone query for retrieval, without a model. Unchanged when the question stands on its own."""
    history = list(history)
    previous = previous_query(history)
    if not previous or not is_follow_up(question):
        return question
    return combine(question, previous)


def history_text(history: Iterable[dict[str, Any]], limit: int = 6, chars: int = 600) -> str:
    """The recent conversation as plain text for the condense prompt."""
    from retriever.generation import strip_markers

    lines = []
    for item in list(history)[-limit:]:
        speaker = "Assistent" if item.get("role") == "assistant" else "Nutzer"
        content = " ".join(strip_markers(str(item.get("content", ""))).split())[:chars]
        if content:
            lines.append(f"{speaker}: {content}")
    return "\n".join(lines)


def clean_condensed(text: str) -> str:
    """The first line of the model's output without labels or quotes; "" when unusable."""
    for line in text.strip().splitlines():
        line = line.strip()
        if not line:
            continue
        line = re.sub(r"^(?:eigenständige\s+frage|frage)\s*:\s*", "", line, flags=re.I)
        line = line.strip().strip("\"'„“”»«").strip()
        return line if 0 < len(line) <= 2000 else ""
    return ""
