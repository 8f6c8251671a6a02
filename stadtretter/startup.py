"""What every CLI command does first: build the services from the settings, or say in German which setting is
invalid (exit code 2), never a traceback."""

from __future__ import annotations

import typer
from rich.console import Console

from core.settings import get_settings
from services.container import Services

err = Console(stderr=True)


def open_services() -> Services:
    try:
        return Services(get_settings())
    except Exception as exc:  # invalid settings: say which, no traceback
        err.print(f"[red]Ungültige Einstellungen:[/red] {exc}")
        raise typer.Exit(2) from exc
