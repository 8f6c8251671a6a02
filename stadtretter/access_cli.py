"""`stadtretter db|users|keys`: the state database, accounts for people and API keys for machines.
Messages in German; errors without traceback."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from core.database import Database, DatabaseOutdated
from core.settings import Settings, get_settings
from services.accounts import ROLE_LABELS, ROLES, AccountError, check_name, check_role
from services.api_keys import SCOPES, ApiKeyError
from services.container import Services

console = Console()
err = Console(stderr=True)

db_app = typer.Typer(help="Zustandsdatenbank (Konten, Schlüssel): Migrationen anwenden.", no_args_is_help=True)
users_app = typer.Typer(help="Konten für Trainer*innen und Administrator*innen.", no_args_is_help=True)
keys_app = typer.Typer(help="API-Schlüssel für Maschinen (Akademie-Website, CMS).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.add_typer(users_app, name="users")
    app.add_typer(keys_app, name="keys")


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[red]Fehler:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def _settings() -> Settings:
    try:
        return get_settings()
    except Exception as exc:  # noqa: BLE001 - invalid settings: say which, no traceback
        _fail(f"Ungültige Einstellungen: {exc}", 2)
        raise  # unreachable; keeps type checkers calm


@contextmanager
def _german_errors() -> Iterator[None]:
    """The errors users can cause or meet, as one German line each."""
    try:
        yield
    except (AccountError, ApiKeyError, DatabaseOutdated) as exc:
        _fail(str(exc))
    except SQLAlchemyError as exc:
        _fail(f"Die Zustandsdatenbank ist nicht erreichbar oder beschädigt: {exc.__class__.__name__}: {exc}")


def _services() -> Services:
    return Services(_settings())


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%d.%m.%Y %H:%M") if moment else "nie"


def _read_password(password_stdin: bool, prompt: str) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            _fail("Kein Passwort auf der Standardeingabe erhalten")
        return password
    try:
        return typer.prompt(prompt, hide_input=True, confirmation_prompt="Passwort wiederholen")
    except typer.Abort:
        _fail("Abgebrochen")
        raise


# stadtretter db
@db_app.command("upgrade")
def db_upgrade() -> None:
    """Alle ausstehenden Migrationen der Zustandsdatenbank anwenden."""
    settings = _settings()
    with _german_errors():
        database = Database(settings.state_database_url)
        try:
            before, after = database.upgrade()
        finally:
            database.dispose()
    if before == after:
        console.print(f"Zustandsdatenbank ist aktuell (Version {after}).")
    else:
        console.print(f"[green]Zustandsdatenbank aktualisiert:[/green] {before or 'leer'} → {after}.")


# stadtretter users
RoleOption = Annotated[str, typer.Option("--role", help=f"Rolle: {' | '.join(ROLES)}")]
StdinOption = Annotated[bool, typer.Option("--password-stdin", help="Passwort aus der ersten Zeile der Eingabe lesen")]


@users_app.command("add")
def users_add(name: str, role: RoleOption, password_stdin: StdinOption = False) -> None:
    """Konto anlegen (Passwort wird abgefragt oder mit --password-stdin gelesen)."""
    services = _services()
    with _german_errors():
        check_name(name)
        check_role(role)
        if services.accounts.get(name) is not None:
            _fail(f"Benutzer '{name}' gibt es schon")
        account = services.accounts.add(name, role, _read_password(password_stdin, "Passwort"))
    console.print(f"[green]Konto angelegt:[/green] {account.name} ({ROLE_LABELS[account.role]}).")


@users_app.command("list")
def users_list(as_json: Annotated[bool, typer.Option("--json", help="als JSON")] = False) -> None:
    """Alle Konten mit Rolle."""
    with _german_errors():
        accounts = _services().accounts.list()
    if as_json:
        rows = [{"name": a.name, "role": a.role, "created_at": a.created_at.isoformat()} for a in accounts]
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
        return
    if not accounts:
        console.print("Noch keine Konten. Anlegen mit: stadtretter users add NAME --role admin")
        return
    table = Table("Name", "Rolle", "angelegt")
    for account in accounts:
        table.add_row(account.name, ROLE_LABELS[account.role], _when(account.created_at))
    console.print(table)


@users_app.command("remove")
def users_remove(name: str) -> None:
    """Konto löschen (offene Anmeldungen enden)."""
    with _german_errors():
        _services().accounts.remove(name)
    console.print(f"Konto {name} gelöscht.")


@users_app.command("passwd")
def users_passwd(name: str, password_stdin: StdinOption = False) -> None:
    """Neues Passwort setzen (offene Anmeldungen enden)."""
    services = _services()
    with _german_errors():
        if services.accounts.get(name) is None:
            _fail(f"Benutzer '{name}' gibt es nicht")
        services.accounts.set_password(name, _read_password(password_stdin, "Neues Passwort"))
    console.print(f"Passwort von {name} geändert; bestehende Anmeldungen sind beendet.")


# stadtretter keys
@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="wofür, z. B. 'Akademie-Website'")],
    scope: Annotated[str, typer.Option("--scope", help=f"Rechte, mit Komma: {', '.join(SCOPES)}")] = "ask,search",
) -> None:
    """Schlüssel erzeugen; er wird nur dieses eine Mal angezeigt."""
    with _german_errors():
        created = _services().api_keys.create(name, scope)
    err.print(f"[green]Schlüssel '{created.info.name}' erzeugt[/green] (Rechte: {', '.join(created.info.scopes)}). "
              "Er wird nur jetzt angezeigt – bitte sicher aufbewahren:")
    sys.stdout.write(created.key + "\n")


@keys_app.command("list")
def keys_list(as_json: Annotated[bool, typer.Option("--json", help="als JSON")] = False) -> None:
    """Alle Schlüssel: Name, Rechte, Anfang, erzeugt, zuletzt benutzt (nie der Schlüssel selbst)."""
    with _german_errors():
        keys = _services().api_keys.list()
    if as_json:
        rows = [
            {"name": k.name, "scopes": list(k.scopes), "prefix": k.prefix, "created_at": k.created_at.isoformat(),
             "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None}
            for k in keys
        ]
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
        return
    if not keys:
        console.print("Noch keine Schlüssel. Erzeugen mit: stadtretter keys create --name NAME --scope ask,search")
        return
    table = Table("Name", "Rechte", "Anfang", "erzeugt", "zuletzt benutzt")
    for key in keys:
        scopes = ", ".join(key.scopes)
        table.add_row(key.name, scopes, key.prefix + "…", _when(key.created_at), _when(key.last_used_at))
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(name: str) -> None:
    """Schlüssel widerrufen: er gilt sofort nicht mehr."""
    with _german_errors():
        revoked = _services().api_keys.revoke(name)
    console.print(f"Schlüssel {revoked.name} ({revoked.prefix}…) widerrufen.")
