"""Accounts, sessions and API keys against a real SQLite state database migrated by Alembic."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import text

from core.database import Database, DatabaseOutdated
from services.accounts import AccountError, AccountService
from services.api_keys import ApiKeyError, ApiKeyService

PASSWORD = "korrekt-Pferd-Batterie"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # Argon2id, cheap for tests


@pytest.fixture
def database(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture
def accounts(database: Database) -> AccountService:
    return AccountService(database, timedelta(hours=1), hasher=FAST_HASHER)


def test_upgrade_creates_the_schema_and_is_idempotent(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'sub' / 'state.sqlite3'}")
    assert database.current_revision() is None
    assert database.upgrade() == (None, "0002_jobs")
    assert database.upgrade() == ("0002_jobs", "0002_jobs")
    with database.engine.connect() as connection:
        tables = {row[0] for row in connection.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))}
    assert {"users", "api_keys", "sessions", "alembic_version"} <= tables


def test_an_outdated_database_is_refused_in_german_or_migrated(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    with pytest.raises(DatabaseOutdated, match="stadtretter db upgrade"):
        database.ensure_current(apply=False)
    database.ensure_current(apply=True)
    assert database.current_revision() == database.head_revision() == "0002_jobs"


def test_passwords_are_stored_as_argon2id_and_checked(accounts: AccountService, database: Database) -> None:
    accounts.add("anna", "admin", PASSWORD)
    with database.engine.connect() as connection:
        stored = connection.execute(text("SELECT password_hash FROM users")).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert accounts.authenticate("anna", PASSWORD).role == "admin"
    assert accounts.authenticate("anna", PASSWORD + "x") is None
    assert accounts.authenticate("niemand", PASSWORD) is None
    assert accounts.count_admins() == 1


@pytest.mark.parametrize(
    ("name", "role", "password", "message"),
    [
        ("a", "admin", PASSWORD, "Benutzername"),
        ("../x", "admin", PASSWORD, "Benutzername"),
        ("berta", "chef", PASSWORD, "Rolle 'chef'"),
        ("berta", "trainer", "kurz", "mindestens 10 Zeichen"),
    ],
)
def test_bad_account_input_is_a_german_error(accounts: AccountService, name, role, password, message) -> None:
    with pytest.raises(AccountError, match=message):
        accounts.add(name, role, password)
    assert accounts.list() == []


def test_duplicate_and_unknown_accounts(accounts: AccountService) -> None:
    accounts.add("anna", "trainer", PASSWORD)
    with pytest.raises(AccountError, match="gibt es schon"):
        accounts.add("anna", "admin", PASSWORD)
    with pytest.raises(AccountError, match="gibt es nicht"):
        accounts.remove("berta")
    with pytest.raises(AccountError, match="gibt es nicht"):
        accounts.set_password("berta", PASSWORD)


def test_sessions_end_on_logout_password_change_and_removal(accounts: AccountService) -> None:
    account = accounts.add("anna", "trainer", PASSWORD)
    first, second = accounts.start_session(account), accounts.start_session(account)
    assert accounts.session(first.token).account.name == "anna"
    assert first.session.csrf_token != second.session.csrf_token
    accounts.end_session(first.token)
    assert accounts.session(first.token) is None and accounts.session(second.token) is not None
    accounts.set_password("anna", "ein-ganz-neues-Passwort")
    assert accounts.session(second.token) is None
    assert accounts.authenticate("anna", PASSWORD) is None
    third = accounts.start_session(accounts.authenticate("anna", "ein-ganz-neues-Passwort"))
    accounts.remove("anna")
    assert accounts.session(third.token) is None


def test_expired_sessions_are_refused(database: Database) -> None:
    accounts = AccountService(database, timedelta(seconds=-1), hasher=FAST_HASHER)
    new = accounts.start_session(accounts.add("anna", "admin", PASSWORD))
    assert accounts.session(new.token) is None


def test_api_keys_are_hashed_shown_once_and_revocable(database: Database) -> None:
    keys = ApiKeyService(database)
    created = keys.create("Akademie-Website", "ask, search")
    assert created.key.startswith("sr_") and created.info.prefix == created.key[:10]
    assert created.info.scopes == ("ask", "search") and created.info.last_used_at is None
    with database.engine.connect() as connection:
        stored = connection.execute(text("SELECT key_hash FROM api_keys")).scalar_one()
    assert created.key not in stored and len(stored) == 64
    used = keys.authenticate(created.key)
    assert used.name == "Akademie-Website" and used.last_used_at is not None
    assert keys.list()[0].last_used_at is not None
    assert keys.authenticate(created.key[:-1] + "x") is None and keys.authenticate("Bearer") is None
    keys.revoke("Akademie-Website")
    assert keys.authenticate(created.key) is None and keys.list() == []


@pytest.mark.parametrize(
    ("name", "scopes", "message"),
    [("", "ask", "name"), ("x", "", "mindestens ein Recht"), ("x", "ask,root", "unbekannt root")],
)
def test_bad_key_input_is_a_german_error(database: Database, name: str, scopes: str, message: str) -> None:
    with pytest.raises(ApiKeyError, match=message):
        ApiKeyService(database).create(name, scopes)


def test_key_names_are_unique_and_unknown_keys_cannot_be_revoked(database: Database) -> None:
    keys = ApiKeyService(database)
    keys.create("cms", "admin")
    with pytest.raises(ApiKeyError, match="gibt es schon"):
        keys.create("cms", "ask")
    with pytest.raises(ApiKeyError, match="gibt es nicht"):
        keys.revoke("fehlt")


def test_a_database_from_a_newer_program_is_refused(database: Database) -> None:
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    with pytest.raises(DatabaseOutdated, match="0099_future, die dieses Programm nicht kennt"):
        database.ensure_current(apply=True)


def test_the_last_admin_cannot_be_removed(accounts: AccountService) -> None:
    accounts.add("anna", "admin", PASSWORD)
    with pytest.raises(AccountError, match="letzte Administrator-Konto"):
        accounts.remove("anna")
    accounts.add("berta", "admin", PASSWORD)
    accounts.remove("anna")
    assert [account.name for account in accounts.list()] == ["berta"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "STADTRETTER_SESSION_SECRET fehlt"),
        ({"session_secret": "zu-kurz"}, "kürzer als 32 Zeichen"),
        ({"session_secret": "s" * 40, "allowed_origins": "*"}, "nicht '\\*' enthalten"),
    ],
)
def test_production_settings_refuse_unsafe_values(values: dict, message: str, tmp_path: Path) -> None:
    from pydantic import ValidationError

    from core.settings import Settings

    with pytest.raises(ValidationError, match=message):
        Settings(_env_file=None, environment="production", data_dir=tmp_path, **values)
    Settings(_env_file=None, environment="production", data_dir=tmp_path, session_secret="s" * 40)
