"""One-time copy of the chat state that older versions kept in their own SQLite files under the data directory
(`registry.sqlite`: the source registry; `app.sqlite`: conversations and feedback) into the state database.

Runs at start (services/container.py, after the schema check). Each file is copied in one transaction and then
renamed to `<name>.migrated`, so it is read once; a copy interrupted before the rename is repeated without
duplicates (rows already there are skipped). A file that cannot be read stops the start with a German message
naming it, and nothing of it is stored.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, and_, exists, select

from core.database import DatabaseUnusable
from ingest.registry import record_of, row_of, sources_table
from retriever.conversation import conversations_table, turns_table
from services.feedback import feedback_table

logger = logging.getLogger("stadtretter.legacy_state")

REGISTRY_FILE = "registry.sqlite"
APP_FILE = "app.sqlite"  # conversations and feedback
MIGRATED_SUFFIX = ".migrated"


class LegacyImportFailed(DatabaseUnusable):
    """An old state file cannot be copied (German message naming the file)."""


def import_legacy_files(engine: Engine, data_dir: Path, collection: str) -> dict[str, int]:
    """Copy the old files found in `data_dir` (registry rows into `collection`); returns the rows copied per table."""
    copied: dict[str, int] = {}
    registry_file, app_file = data_dir / REGISTRY_FILE, data_dir / APP_FILE
    if registry_file.is_file():
        with _reading(registry_file) as old, engine.begin() as db:
            copied["sources"] = _copy_registry(old, db, collection)
        _retire(registry_file)
    if app_file.is_file():
        with _reading(app_file) as old, engine.begin() as db:
            copied["conversations"] = _copy_conversations(old, db)
            copied["feedback"] = _copy_feedback(old, db)
        _retire(app_file)
    if copied:
        logger.warning("Alte Zustandsdateien in die Zustandsdatenbank übernommen: %s", copied)
    return copied


@contextmanager
def _reading(path: Path) -> Iterator[sqlite3.Connection]:
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as old:
            old.row_factory = sqlite3.Row
            yield old
    except (sqlite3.Error, KeyError, IndexError, ValueError) as exc:  # not SQLite, or not the expected tables/JSON
        raise LegacyImportFailed(
            f"Die alte Datei {path} konnte nicht in die Zustandsdatenbank übernommen werden ({exc}). Es wurde "
            "nichts aus ihr übernommen; bitte die Datei prüfen oder beiseitelegen und den Server erneut starten."
        ) from exc


def _retire(path: Path) -> None:
    path.replace(path.with_name(path.name + MIGRATED_SUFFIX))


def _tables(old: sqlite3.Connection) -> set[str]:
    return {row[0] for row in old.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _copy_registry(old: sqlite3.Connection, db: Connection, collection: str) -> int:
    if "sources" not in _tables(old):
        return 0
    present = set(db.execute(select(sources_table.c.source_id).where(sources_table.c.collection == collection))
                  .scalars())
    rows = [{"collection": collection, **row_of(record_of(dict(row)))}
            for row in old.execute("SELECT * FROM sources") if row["source_id"] not in present]
    if rows:
        db.execute(sources_table.insert(), rows)
    return len(rows)


def _copy_conversations(old: sqlite3.Connection, db: Connection) -> int:
    if not {"conversations", "conversation_turns"} <= _tables(old):
        return 0
    present = set(db.execute(select(conversations_table.c.id)).scalars())
    conversations = [dict(row) for row in old.execute("SELECT id, created_at, updated_at FROM conversations")
                     if row["id"] not in present]
    if not conversations:
        return 0
    db.execute(conversations_table.insert(), conversations)
    wanted = {conversation["id"] for conversation in conversations}
    turns = [  # new ids in the old order: the old ids would collide with the database's own sequence
        {key: row[key] for key in ("conversation_id", "question", "query", "answer", "created_at")}
        for row in old.execute("SELECT * FROM conversation_turns ORDER BY id") if row["conversation_id"] in wanted
    ]
    if turns:
        db.execute(turns_table.insert(), turns)
    return len(conversations)


def _copy_feedback(old: sqlite3.Connection, db: Connection) -> int:
    if "feedback" not in _tables(old):
        return 0
    f = feedback_table.c
    copied = 0
    for row in old.execute("SELECT * FROM feedback ORDER BY id"):
        values = {key: row[key] for key in ("created_at", "question", "answer", "citations", "rating", "comment",
                                             "conversation_id")}
        already = db.execute(select(exists().where(and_(
            f.created_at == values["created_at"], f.question == values["question"], f.rating == values["rating"]
        )))).scalar()
        if not already:
            db.execute(feedback_table.insert().values(**values))
            copied += 1
    return copied
