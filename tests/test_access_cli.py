"""`stadtretter db|users|keys`: German output and errors, exit codes, no traceback, secrets shown once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.database import Database
from core.settings import get_settings
from stadtretter import cli

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "ein-langes-Testpasswort"


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.setenv("STADTRETTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("STADTRETTER_PASSWORD_HASH_MEMORY_KIB", "1024")
    monkeypatch.setenv("STADTRETTER_PASSWORD_HASH_ITERATIONS", "1")
    get_settings.cache_clear()

    def invoke(*args: str, stdin: str | None = None):  # noqa: ANN202
        return CliRunner().invoke(cli.app, list(args), input=stdin)

    yield invoke
    get_settings.cache_clear()


def test_db_upgrade_applies_once(run, empty_state_database_url, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("STADTRETTER_DATABASE_URL", empty_state_database_url)
    head = Database("sqlite://").head_revision()
    first = run("db", "upgrade")
    assert first.exit_code == 0 and f"aktualisiert: leer → {head}" in first.stdout
    again = run("db", "upgrade")
    assert again.exit_code == 0 and f"ist aktuell (Version {head})" in again.stdout


def test_users_add_list_passwd_remove(run) -> None:  # noqa: ANN001
    added = run("users", "add", "anna", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert added.exit_code == 0 and "Konto angelegt: anna (Administrator*in)" in added.stdout
    prompted = run("users", "add", "ben", "--role", "trainer", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert prompted.exit_code == 0, prompted.output
    assert PASSWORD not in prompted.output  # hidden input is not echoed
    listed = json.loads(run("users", "list", "--json").stdout)
    assert [(u["name"], u["role"]) for u in listed] == [("anna", "admin"), ("ben", "trainer")]
    assert "Trainer*in" in run("users", "list").stdout
    changed = run("users", "passwd", "ben", "--password-stdin", stdin="ein-anderes-Passwort\n")
    assert changed.exit_code == 0 and "Passwort von ben geändert" in changed.stdout
    assert run("users", "remove", "ben").exit_code == 0
    assert [u["name"] for u in json.loads(run("users", "list", "--json").stdout)] == ["anna"]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("users", "add", "anna", "--role", "chef", "--password-stdin"), PASSWORD, "Rolle 'chef' gibt es nicht"),
        (("users", "add", "a", "--role", "admin", "--password-stdin"), PASSWORD, "Benutzername: 2–64 Zeichen"),
        (("users", "add", "anna", "--role", "admin", "--password-stdin"), "kurz", "mindestens 10 Zeichen"),
        (("users", "add", "anna", "--role", "admin", "--password-stdin"), "", "Kein Passwort"),
        (("users", "remove", "niemand"), None, "Benutzer 'niemand' gibt es nicht"),
        (("users", "passwd", "niemand", "--password-stdin"), PASSWORD, "Benutzer 'niemand' gibt es nicht"),
        (("keys", "create", "--name", "x", "--scope", "ask,root"), None, "unbekannt root"),
        (("keys", "revoke", "fehlt"), None, "Schlüssel 'fehlt' gibt es nicht"),
    ],
)
def test_bad_input_is_one_german_line(run, args, stdin, message) -> None:  # noqa: ANN001
    result = run(*args, stdin=stdin)
    assert result.exit_code == 1 and "Fehler:" in result.output and message in result.output.replace("\n", " ")
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)  # a clean exit, not a crash


def test_keys_create_prints_the_key_once_and_list_never(run) -> None:  # noqa: ANN001
    created = run("keys", "create", "--name", "Akademie-Website", "--scope", "ask,search")
    assert created.exit_code == 0
    key = created.stdout.strip()
    assert key.startswith("sr_") and len(key) > 40
    listed = run("keys", "list", "--json")
    rows = json.loads(listed.stdout)
    assert rows[0]["name"] == "Akademie-Website" and rows[0]["scopes"] == ["ask", "search"]
    assert rows[0]["prefix"] == key[:10] and rows[0]["last_used_at"] is None
    assert key not in listed.stdout and key not in run("keys", "list").stdout
    assert run("keys", "revoke", "Akademie-Website").exit_code == 0
    assert json.loads(run("keys", "list", "--json").stdout) == []


def test_a_real_process_fails_in_german_without_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "STADTRETTER_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "stadtretter.cli", "users", "add", "x", "--role", "admin", "--password-stdin"],
        input="kurz\n", capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Benutzername" in result.stderr
