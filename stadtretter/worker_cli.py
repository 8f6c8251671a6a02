"""`stadtretter worker`: runs upload, import and reindex jobs from the shared queue (STADTRETTER_REDIS_URL)."""

from __future__ import annotations

import logging
import signal
import threading

import typer
from rich.console import Console

from core.database import DatabaseOutdated
from services.container import Services
from stadtretter.startup import open_services

err = Console(stderr=True)


def worker_command() -> None:
    """Aufträge (Hochladen, Web-Import, Neuaufbau) aus der gemeinsamen Warteschlange ausführen.

    Braucht STADTRETTER_REDIS_URL und dieselbe Zustandsdatenbank (STADTRETTER_DATABASE_URL) und denselben
    Chroma-Server (STADTRETTER_CHROMA_URL) wie die API-Prozesse. Beliebig viele Arbeitsprozesse dürfen laufen;
    Strg+C bzw. SIGTERM beendet nach dem laufenden Auftrag.
    """
    services = open_services()
    run_worker(services)


def run_worker(services: Services) -> None:
    """Run jobs until SIGTERM or SIGINT (also used by the tests with their own Services)."""
    if not services.settings.redis_url:
        err.print("[red]Fehler:[/red] STADTRETTER_REDIS_URL ist nicht gesetzt: ohne gemeinsame Warteschlange führt "
                  "der Server (`stadtretter serve`) die Aufträge selbst aus.")
        raise typer.Exit(2)
    try:
        services.jobs.queue_length()  # the state database is reachable and migrated, before taking any job
    except DatabaseOutdated as exc:
        err.print(f"[red]Fehler:[/red] {exc}")
        raise typer.Exit(2) from exc
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    err.print("Arbeitsprozess bereit: wartet auf Aufträge (Beenden mit Strg+C).")
    services.run_queue_worker(stop)
    err.print("Arbeitsprozess beendet.")
