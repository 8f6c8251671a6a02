"""`stadtretter import URL`: a page, a sitemap or an RSS/Atom feed from the web into the index."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console

from core.embeddings import EmbeddingUnavailable
from core.settings import get_settings
from core.store import StoreError
from services.container import Services
from services.jobs import JobFailed
from services.writer_lock import WriterBusy

console = Console()
err = Console(stderr=True)


def import_command(
    url: Annotated[str, typer.Argument(help="Seite, Sitemap oder RSS/Atom-Feed (http/https)")],
    as_json: Annotated[bool, typer.Option("--json", help="Ergebnis als JSON")] = False,
) -> None:
    """Seiten von der Website importieren (unveränderte werden übersprungen, geänderte aktualisiert)."""
    try:
        services = Services(get_settings())
    except Exception as exc:  # invalid settings: say which, no traceback
        err.print(f"[red]Ungültige Einstellungen:[/red] {exc}")
        raise typer.Exit(2) from exc
    try:
        result = services.content.import_url(url, lambda done, total: None)
    except JobFailed as exc:
        err.print(f"[red]Fehler:[/red] {exc}", soft_wrap=True)
        if as_json and exc.result is not None:
            sys.stdout.write(json.dumps(exc.result, ensure_ascii=False, indent=2) + "\n")
        raise typer.Exit(1) from None
    except (WriterBusy, StoreError, EmbeddingUnavailable) as exc:
        err.print(f"[red]Fehler:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from None
    if as_json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    else:
        labels = {"added": "neu", "updated": "aktualisiert", "unchanged": "unverändert", "failed": "fehlgeschlagen"}
        for entry in result["files"]:
            console.print(f"{labels[entry['outcome']]:15} {entry['name']}", highlight=False, soft_wrap=True)
        console.print(f"[green]Fertig[/green]: {result['added']} neu, {result['updated']} aktualisiert, "
                      f"{result['unchanged']} unverändert, {len(result['failed'])} fehlgeschlagen.")
        for warning in result["warnings"]:
            err.print(f"[yellow]Hinweis:[/yellow] {warning['message']}", highlight=False, soft_wrap=True)
        for failed in result["failed"]:
            err.print(f"[red]Fehler:[/red] {failed['path']}: {failed['reason']}", highlight=False, soft_wrap=True)
    raise typer.Exit(1 if result["failed"] else 0)
