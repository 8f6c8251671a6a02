"""The `stadtretter` command line. Messages in German; `--json` prints one JSON document shaped like the API."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from core.database import DatabaseUnusable
from core.embeddings import EmbeddingUnavailable
from core.settings import Settings, get_settings
from core.store import StoreError
from core.vocabulary import PHASES, SEARCH_MODES, SOURCE_TYPES, type_label
from ingest.pipeline import IngestReport
from services.container import Services
from stadtretter.startup import open_services
from services.presenters import source_info
from services.writer_lock import WriterBusy

app = typer.Typer(help="Stadtretter Wissens-Chat: Quellen einlesen, suchen, Fragen beantworten.", no_args_is_help=True, add_completion=False)
console = Console()
err = Console(stderr=True)


def _services() -> Services:
    services = open_services()
    try:
        services.database  # noqa: B018 - schema check (and the one-time copy of old state files) before any command
    except DatabaseUnusable as exc:
        _fail(str(exc))
    except SQLAlchemyError as exc:
        _fail(unreachable_database(exc))
    return services


def unreachable_database(exc: SQLAlchemyError) -> str:
    return f"Die Zustandsdatenbank ist nicht erreichbar: {getattr(exc, 'orig', None) or exc}"


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[red]Fehler:[/red] {message}")
    raise typer.Exit(code)


def _emit_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


class RichProgress:
    """Progress bar for files with a chunks/s figure."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("[bold]Einlesen[/bold]"), BarColumn(), MofNCompleteColumn(), TextColumn("Dateien"),
            TextColumn("· {task.fields[chunks]} Abschnitte eingebettet · {task.fields[rate]:.1f}/s"),
            TimeElapsedColumn(), console=err, transient=False,
        )
        self.task = None
        self.chunks = 0

    def __enter__(self) -> "RichProgress":
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start(self, total_files: int) -> None:
        self.task = self.progress.add_task("ingest", total=total_files, chunks=0, rate=0.0)

    def file_done(self, path: Path) -> None:
        self.progress.advance(self.task)

    def chunks_embedded(self, count: int) -> None:
        self.chunks += count
        elapsed = self.progress.tasks[0].elapsed or 1e-9
        self.progress.update(self.task, chunks=self.chunks, rate=self.chunks / elapsed)


def _print_report(report: IngestReport) -> None:
    console.print(
        f"[green]Fertig[/green] in {report.seconds:.1f} s: {report.added} neu, {report.updated} aktualisiert, "
        f"{report.unchanged} unverändert, {report.removed} entfernt, {len(report.failed)} fehlgeschlagen "
        f"({report.chunks_embedded} Abschnitte eingebettet, {report.chunks_reused} wiederverwendet)."
    )
    for warning in report.warnings:
        err.print(f"[yellow]Hinweis:[/yellow] {warning['path']}: {warning['message']}")
    for failed in report.failed:
        err.print(f"[red]Fehler:[/red] {failed.path}: {failed.reason}")


def _run_ingest(services: Services, run, as_json: bool) -> None:  # noqa: ANN001
    """Run an ingest or reindex under the writer lock: an upload job or import of the server waits meanwhile."""

    def waiting(holder: str) -> None:
        err.print(f"Warte auf einen anderen Schreibvorgang ({holder}) …")

    try:
        with services.content.lock(on_wait=waiting):
            if as_json or not err.is_terminal:
                report = run(None)
            else:
                with RichProgress() as progress:
                    report = run(progress)
    except (StoreError, EmbeddingUnavailable, WriterBusy) as exc:
        _fail(str(exc))
    if as_json:
        _emit_json(report.to_dict())
    else:
        _print_report(report)
    raise typer.Exit(1 if report.failed else 0)


@app.command()
def ingest(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Dateien oder Ordner (Standard: der Korpus-Ordner)")] = None,
    prune: Annotated[bool, typer.Option("--prune", help="Dokumente entfernen, deren Dateien fehlen")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Ergebnis als JSON")] = False,
) -> None:
    """Dokumente einlesen (inkrementell: Unverändertes wird übersprungen)."""
    services = _services()
    targets = paths or [services.settings.corpus_dir]
    _run_ingest(services, lambda progress: services.pipeline().run(targets, prune=prune, progress=progress),
                as_json)


@app.command()
def reindex(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Index vollständig neu aufbauen (z. B. nach einem Wechsel des Embedding-Modells)."""
    services = _services()
    _run_ingest(services, lambda progress: services.reindex(progress=progress), as_json)


def _filters(type_: list[str] | None, phase: list[str] | None):  # noqa: ANN202
    from retriever.models import SearchFilters

    for value in type_ or []:
        if value not in SOURCE_TYPES:
            _fail(f"Unbekannter Quellentyp '{value}' (erlaubt: {', '.join(SOURCE_TYPES)})", 2)
    for value in phase or []:
        if value not in PHASES:
            _fail(f"Unbekannte Phase '{value}' (erlaubt: {', '.join(PHASES)})", 2)
    return SearchFilters(types=list(type_ or []), phases=list(phase or []))


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="Suchanfrage")],
    k: Annotated[int, typer.Option("-k", min=1, max=50, help="Anzahl Treffer")] = 8,
    type_: Annotated[Optional[list[str]], typer.Option("--type", help="article | webtalk | course")] = None,
    phase: Annotated[Optional[list[str]], typer.Option("--phase", help="E | K | T")] = None,
    mode: Annotated[Optional[str], typer.Option("--mode", help="hybrid | dense | lexical")] = None,
    rerank: Annotated[bool, typer.Option("--rerank", help="die ersten Treffer nach ihrem besten Satz ordnen (wie in Antworten)")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Abschnitte suchen."""
    if mode and mode not in SEARCH_MODES:
        _fail(f"--mode muss {', '.join(SEARCH_MODES[:-1])} oder {SEARCH_MODES[-1]} sein", 2)
    services = _services()
    try:
        hits = services.search.search(query, k=k, filters=_filters(type_, phase), mode=mode)  # type: ignore[arg-type]
        if rerank:
            hits = services.answerer.rerank(query, hits)
    except (StoreError, EmbeddingUnavailable) as exc:
        _fail(str(exc))
    if as_json:
        _emit_json({
            "query": query, "mode": mode or services.settings.search_mode,
            "results": [{"chunk_id": h.chunk_id, "text": h.text, "score": round(h.score, 4), "source": source_info(h).model_dump()} for h in hits],
        })
        return
    if not hits:
        console.print("Keine Treffer.")
    for rank, hit in enumerate(hits, 1):
        info = source_info(hit)
        console.print(f"[bold]{rank}. {info.title}[/bold] ({type_label(info.type)}, {info.locator}) · Score {hit.score:.3f}")
        console.print(f"   {hit.text[:300].replace(chr(10), ' ')}{'…' if len(hit.text) > 300 else ''}")


def print_answer(answer) -> None:  # noqa: ANN001
    """Answer text with its sources below."""
    console.print()
    console.print(answer.answer, markup=False, highlight=False)
    print_sources(answer)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="Ihre Frage")],
    type_: Annotated[Optional[list[str]], typer.Option("--type", help="article | webtalk | course")] = None,
    phase: Annotated[Optional[list[str]], typer.Option("--phase", help="E | K | T")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Frage stellen: Antwort mit Quellenangaben."""
    if not question.strip():
        _fail("Die Frage darf nicht leer sein.", 2)
    if len(question) > 2000:
        _fail("Die Frage ist zu lang (höchstens 2000 Zeichen).", 2)
    services = _services()
    try:
        answer = services.qa.ask(question, filters=_filters(type_, phase))
    except (StoreError, EmbeddingUnavailable) as exc:
        _fail(str(exc))
    if as_json:
        _emit_json(answer.to_dict())
    else:
        print_answer(answer)


@app.command()
def sources(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Eingelesene Dokumente auflisten."""
    services = _services()
    records = services.registry.ingested()
    if as_json:
        _emit_json({"sources": [
            {"source_id": r.source_id, "title": r.title, "type": r.type, "url": r.url, "date": r.date,
             "author": r.author, "chunk_count": r.chunk_count, "phase": r.phase, "phase_scores": r.phase_scores}
            for r in records
        ]})
        return
    if not records:
        console.print("Noch keine Dokumente eingelesen: 'stadtretter ingest' ausführen.")
    for r in records:
        console.print(f"{type_label(r.type or ''):13} {r.date or '          '}  {r.chunk_count:4} Abschnitte  {r.title}")


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="Adresse")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port")] = None,
) -> None:
    """API und Web-Chat starten."""
    import uvicorn

    from api.app import create_app

    from pydantic import ValidationError

    from api.auth import StartRefused

    try:
        settings: Settings = get_settings()
        application = create_app(settings)
    except ValidationError as exc:
        reasons = "; ".join(f"{error['msg'].removeprefix('Value error, ')}" for error in exc.errors())
        _fail(f"Der Server startet nicht: {reasons}", 2)
    except (StartRefused, DatabaseUnusable) as exc:
        _fail(f"Der Server startet nicht: {exc}", 2)
    except SQLAlchemyError as exc:
        _fail(f"Der Server startet nicht: {unreachable_database(exc)}", 2)
    console.print(f"Stadtretter Wissens-Chat läuft auf http://{host or settings.host}:{port or settings.port}")
    uvicorn.run(application, host=host or settings.host, port=port or settings.port, log_level="info")


from stadtretter import access_cli  # noqa: E402
from stadtretter.dossier_cli import dossier_command  # noqa: E402
from stadtretter.eval_cli import eval_command  # noqa: E402
from stadtretter.import_cli import import_command  # noqa: E402
from stadtretter.worker_cli import worker_command  # noqa: E402

app.command("eval")(eval_command)
app.command("dossier")(dossier_command)
access_cli.register(app)  # db upgrade, users, keys
app.command("import")(import_command)
app.command("worker")(worker_command)


def print_sources(answer) -> None:  # noqa: ANN001
    """Phase, notice and sources below an answer (printed whole, or streamed by `chat`)."""
    if answer.phase:
        console.print(f"\n[bold]EKT-Phase:[/bold] {answer.phase.label} – {answer.phase.explanation}")
    if answer.notice:
        console.print(f"[yellow]{answer.notice}[/yellow]")
    if answer.citations:
        console.print("\n[bold]Nächstliegende Quellen:[/bold]" if answer.abstained else "\n[bold]Quellen:[/bold]")
    for c in answer.citations:
        phase = f" · Phase {c.phase}" if c.phase else ""
        console.print(f"[{c.n}] [bold]{c.title}[/bold] ({type_label(c.type)}, {c.locator}{phase})", highlight=False)
        if c.url:
            console.print(f"    {c.url}", highlight=False)
        console.print(f"    „{c.snippet}“", markup=False, highlight=False)


@app.command()
def chat(
    type_: Annotated[Optional[list[str]], typer.Option("--type", help="article | webtalk | course")] = None,
    phase: Annotated[Optional[list[str]], typer.Option("--phase", help="E | K | T")] = None,
) -> None:
    """Gespräch im Terminal: Folgefragen beziehen sich auf die vorigen. 'neu' beginnt von vorn, 'exit' beendet."""
    from retriever.models import Answer, Citation, PhaseTag

    services = _services()
    filters = _filters(type_, phase)
    try:
        qa = services.qa
    except (StoreError, EmbeddingUnavailable) as exc:
        _fail(str(exc))
    conversation_id: str | None = None
    console.print("Stadtretter Wissens-Chat – Ihre Frage eingeben. 'neu' beginnt ein neues Gespräch, 'exit' beendet.")
    while True:
        try:
            question = console.input("\n[bold]Frage>[/bold] ").strip()
        except (EOFError, KeyboardInterrupt):
            console.print()
            break
        if not question:
            continue
        if question.lower() in ("exit", "quit"):
            break
        if question.lower() == "neu":
            conversation_id = None
            console.print("Neues Gespräch.")
            continue
        if len(question) > 2000:
            err.print("[red]Fehler:[/red] Die Frage ist zu lang (höchstens 2000 Zeichen).")
            continue
        streamed, citations, phase_tag, done = "", [], None, None
        console.print()
        try:
            for event, data in qa.stream(question, filters=filters, conversation_id=conversation_id):
                if event == "meta":
                    conversation_id = data["conversation_id"]
                elif event == "token":
                    streamed += data["text"]
                    console.out(data["text"], end="", highlight=False)
                elif event == "citations":
                    citations = [Citation(**c) for c in data["citations"]]
                elif event == "phase":
                    phase_tag = PhaseTag(**data)
                elif event == "done":
                    done = data
                elif event == "error":
                    console.print()
                    err.print(f"[red]Fehler:[/red] {data['message']}")
        except KeyboardInterrupt:
            console.print("\n(abgebrochen)")
            continue
        if done is None:
            continue
        if done["answer"] != streamed:  # the model failed mid-answer: the fallback answer replaces the text
            console.print("\n")
            console.out(done["answer"], highlight=False)
        console.print()
        print_sources(Answer(question, done["answer"], citations, done["abstained"], phase=phase_tag,
                              notice=done["notice"], conversation_id=conversation_id))


if __name__ == "__main__":
    app()
