"""`stadtretter dossier THEMA`: a material dossier as Markdown, DOCX or PDF (by the file's extension)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from core.embeddings import EmbeddingUnavailable
from core.settings import get_settings
from core.store import StoreError
from core.vocabulary import PHASES, SOURCE_TYPES
from services.container import Services
from services.dossier import DossierRequest
from services.dossier_export import FORMATS, ExportUnavailable, export

err = Console(stderr=True)


def _split(values: list[str] | None, allowed: tuple[str, ...], option: str) -> list[str]:
    items = [item.strip() for value in values or [] for item in value.split(",") if item.strip()]
    unknown = [item for item in items if item not in allowed]
    if unknown:
        err.print(f"[red]Fehler:[/red] {option} kennt {', '.join(unknown)} nicht (erlaubt: {', '.join(allowed)})")
        raise typer.Exit(2)
    return items


def dossier_command(
    topic: Annotated[str, typer.Argument(help="Thema, z. B. „Passantenbefragung“")],
    phase: Annotated[Optional[list[str]], typer.Option("--phase", help="E,K,T (Standard: alle)")] = None,
    type_: Annotated[Optional[list[str]], typer.Option("--type", help="article,webtalk,course")] = None,
    size: Annotated[int, typer.Option("--size", min=1, max=20, help="Quellen je Phase")] = 5,
    date_from: Annotated[Optional[str], typer.Option("--von", help="JJJJ-MM-TT")] = None,
    date_to: Annotated[Optional[str], typer.Option("--bis", help="JJJJ-MM-TT")] = None,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Datei .md, .docx oder .pdf")] = None,
    base_url: Annotated[Optional[str], typer.Option("--basis-url", help="Adresse des Wissens-Chats für Links")] = None,
) -> None:
    """Materialmappe zu einem Thema je EKT-Phase: Quellen, wörtliche Auszüge mit Fundstelle, WebTalk-Momente."""
    extension = (output.suffix.lstrip(".").lower() if output else "md") or "md"
    if extension not in FORMATS:
        err.print(f"[red]Fehler:[/red] {output}: Format .{extension} unbekannt (erlaubt: .md, .docx, .pdf)")
        raise typer.Exit(2)
    phases = [p for p in PHASES if p in _split(phase, PHASES, "--phase")] or list(PHASES)
    request = DossierRequest(topic.strip(), phases, _split(type_, SOURCE_TYPES, "--type"), date_from, date_to, size)
    settings = get_settings()
    try:
        dossier = Services(settings).dossiers.build(
            request, base_url=(base_url or f"http://{settings.host}:{settings.port}").rstrip("/")
        )
        content = export(dossier, extension)
    except (StoreError, EmbeddingUnavailable, ExportUnavailable) as exc:
        err.print(f"[red]Fehler:[/red] {exc}")
        raise typer.Exit(1) from exc
    if output is None:
        sys.stdout.write(content.decode("utf-8"))
        return
    try:
        output.write_bytes(content)
    except OSError as exc:
        err.print(f"[red]Fehler:[/red] {output} konnte nicht geschrieben werden: {exc.strerror}")
        raise typer.Exit(1) from exc
    sources = len(dossier.all_sources())
    err.print(f"Materialmappe „{dossier.topic}“ mit {sources} Quellen gespeichert: {output}")
