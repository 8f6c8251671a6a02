"""The state database: everything that is not vectors (source registry, conversations, feedback, question log,
accounts, API keys, sessions, jobs). SQLAlchemy 2 with Alembic migrations shipped as package data
(core/migrations), so `stadtretter db upgrade` works from an installed wheel.

One URL decides the backend (`Settings.state_database_url`): SQLite under the data directory by default, a
PostgreSQL URL (psycopg 3) works through the same code path; `upsert` is the one statement the dialects spell
differently.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker


class Base(DeclarativeBase):
    """Declarative base of every table in the state database; schema changes go through a migration."""


class DatabaseUnusable(RuntimeError):
    """The server must not start on this state database; the message (German) says why and what to do."""


class DatabaseOutdated(DatabaseUnusable):
    """The schema does not match the code (behind: `stadtretter db upgrade`; unknown: newer); message in German."""


_DIALECT_INSERT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def upsert(connection: Connection, table: Table, values: Mapping[str, Any], key: Sequence[str],
           update: Sequence[str]) -> None:
    """INSERT, or on a conflict on the `key` columns UPDATE the `update` columns (atomic: no read before the write,
    so two processes writing the same row never fail on the primary key)."""
    statement = _DIALECT_INSERT[connection.dialect.name](table).values(**values)
    connection.execute(statement.on_conflict_do_update(
        index_elements=list(key), set_={column: statement.excluded[column] for column in update}
    ))


def _enable_sqlite_foreign_keys(dbapi_connection, _record) -> None:  # noqa: ANN001 - DB-API connection
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Database:
    """Engine, session factory and migrations for one URL."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.url = url
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # SQLite: wait up to 30 s for another writer's lock. PostgreSQL: give up connecting after 10 s (a probe of
        # /readyz must not hang on an unreachable server); SQLAlchemy's pool holds up to 5 + 10 connections per
        # process and tests each one before use (pool_pre_ping), so a restarted server costs no failed request.
        connect_args = {"timeout": 30} if self.is_sqlite else {"connect_timeout": 10}
        self.engine: Engine = create_engine(url, pool_pre_ping=not self.is_sqlite, connect_args=connect_args)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _enable_sqlite_foreign_keys)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: commits when the block ends, rolls back on an exception."""
        with self._sessions.begin() as session:
            yield session

    def _alembic_config(self, engine: Engine | None = None) -> Config:
        config = Config()
        config.set_main_option("script_location", str(resources.files("core") / "migrations"))
        config.attributes["engine"] = engine or self.engine
        return config

    def _migration_engine(self) -> Engine:
        """PostgreSQL runs DDL in transactions anyway. Python's sqlite3 commits before every DDL statement, so a
        process killed mid-migration would leave tables without their version (and every later start failing on
        "table already exists"): for migrations SQLite gets real transactions, BEGIN IMMEDIATE … COMMIT, which also
        lets a second process starting at the same time wait and then find the schema current."""
        if not self.is_sqlite:
            return self.engine
        engine = create_engine(self.url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _no_implicit_transactions(dbapi_connection, _record) -> None:  # noqa: ANN001 - DB-API connection
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin_immediate(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    def head_revision(self) -> str | None:
        return ScriptDirectory.from_config(self._alembic_config()).get_current_head()

    def _known_revisions(self) -> set[str]:
        return {script.revision for script in ScriptDirectory.from_config(self._alembic_config()).walk_revisions()}

    def current_revision(self) -> str | None:
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def upgrade(self) -> tuple[str | None, str | None]:
        """Apply all pending migrations; returns (revision before, revision after)."""
        before = self.current_revision()
        engine = self._migration_engine()
        try:
            command.upgrade(self._alembic_config(engine), "head")
        finally:
            if engine is not self.engine:
                engine.dispose()
        return before, self.current_revision()

    def ensure_current(self, *, apply: bool) -> None:
        """At start: apply pending migrations (`apply`), or refuse to run on an outdated schema."""
        current, head = self.current_revision(), self.head_revision()
        if current == head:
            return
        if current is not None and current not in self._known_revisions():
            raise DatabaseOutdated(
                f"Die Zustandsdatenbank hat die Version {current}, die dieses Programm nicht kennt "
                f"(es kennt bis {head}). Wurde eine ältere Version des Wissens-Chats installiert?"
            )
        if apply:
            self.upgrade()
            return
        raise DatabaseOutdated(
            f"Die Zustandsdatenbank ist nicht auf dem aktuellen Stand (Version {current or 'leer'}, benötigt {head}). "
            "Bitte zuerst `stadtretter db upgrade` ausführen."
        )

    def dispose(self) -> None:
        self.engine.dispose()
