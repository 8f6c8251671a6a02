"""The processes the fault tests start, with the test embedding (no model): settings come from STADTRETTER_* as for
the product.

    python -m tests.faults.child ingest PATH...    the CLI's `stadtretter ingest --json`
    python -m tests.faults.child rerun PATH...     print the registry ("partial"), ingest again (the CLI), then print
                                                   the snapshot as JSON
    python -m tests.faults.child snapshot          print what the data directory holds (see `snapshot`)
    python -m tests.faults.child serve PORT [PATH]  the API on 127.0.0.1:PORT; with PATH, a background thread
                                                   ingests PATH in the server process (as an upload job does) once
                                                   the file `start-ingest` appears beside the data directory, then
                                                   writes the report to `ingest-done` there
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from core.settings import Settings, get_settings
from retriever.lexical import LexicalIndex
from services.container import Services
from tests.helpers import HashEmbeddings

# Questions whose citations must not depend on whether an ingestion was interrupted.
QUESTIONS = ("Wie hoch war die Förderung für den Marktplatz?", "Welche Sensoren zählen die Passanten?",
             "Wer betreibt das WLAN in der Innenstadt?")


def test_services(settings: Settings | None = None) -> Services:
    return Services(settings or get_settings(), embeddings=HashEmbeddings(), phase_tagger=None)


def snapshot(services: Services) -> dict:
    """Store ids, registry rows, lexical index ids (read from disk) and the citations of QUESTIONS."""
    ids = [chunk_id for batch, _ in services.store.iter_metadata() for chunk_id in batch]
    lexical = LexicalIndex(services.settings.lexical_path)
    lexical.load()
    registry = [
        [r.source_id, r.path, r.file_hash, r.status, r.chunk_count, r.title] for r in services.registry.all()
    ]
    citations = {q: [c.chunk_id for c in services.qa.ask(q).citations] for q in QUESTIONS}
    return {"ids": ids, "registry": sorted(registry), "lexical_ids": list(lexical.ids), "citations": citations}


def _cli(arguments: list[str]) -> int:
    """The CLI's exit code."""
    from stadtretter import cli

    cli._services = test_services  # the CLI exactly as shipped, with the test embedding
    return int(cli.app(arguments, standalone_mode=False) or 0)


def _ingest_on_signal(services: Services, path: Path) -> None:
    beside = services.settings.data_dir.parent
    while not (beside / "start-ingest").exists():
        time.sleep(0.05)
    report = services.pipeline().run([path])
    (beside / "ingest-done").write_text(json.dumps(report.to_dict()), encoding="utf-8")


def main() -> None:
    command, *arguments = sys.argv[1:]
    if command == "ingest":
        print("ingest-start", flush=True)
        raise SystemExit(_cli(["ingest", "--json", *arguments]))
    elif command == "rerun":
        registry = sorted([r.source_id, r.status, r.file_hash] for r in test_services().registry.all())
        print("partial " + json.dumps(registry), flush=True)
        code = _cli(["ingest", "--json", *arguments])
        print("snapshot " + json.dumps(snapshot(test_services())), flush=True)
        raise SystemExit(code)
    elif command == "snapshot":
        print("snapshot " + json.dumps(snapshot(test_services())), flush=True)
    elif command == "serve":
        import uvicorn

        from api.app import create_app

        services = test_services()
        if len(arguments) > 1:
            threading.Thread(target=_ingest_on_signal, args=(services, Path(arguments[1])), daemon=True).start()
        uvicorn.run(create_app(services.settings, services), host="127.0.0.1", port=int(arguments[0]),
                    log_level="warning")
    else:
        raise SystemExit(f"Unbekannter Befehl: {command}")


if __name__ == "__main__":
    main()
