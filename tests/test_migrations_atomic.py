"""A migration run that fails halfway leaves the SQLite state database as it was (core/migrations/env.py): no
tables without their Alembic version, so the next start can migrate again."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from core.database import Database


def test_a_failed_migration_on_sqlite_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with sqlite3.connect(path) as connection:  # makes the last migration fail after the earlier ones ran
        connection.execute("CREATE TABLE index_versions (x INTEGER)")
    database = Database(f"sqlite:///{path}")
    with pytest.raises(OperationalError):
        database.upgrade()
    database.dispose()
    with sqlite3.connect(path) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"index_versions"}
