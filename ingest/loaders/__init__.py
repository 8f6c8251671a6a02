"""File loaders: one `load_file` entry point for every supported format.

Every failure caused by the input file surfaces as `LoaderError` with a German reason; no traceback escapes.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ingest.loaders.common import ParsedFile, build_document, read_text_file, source_id_for
from ingest.models import LoaderError, SourceDocument
from core.settings import Settings

__all__ = ["SUPPORTED_SUFFIXES", "LoaderError", "load_file", "source_id_for"]

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES: frozenset[str] = frozenset({".md", ".markdown", ".html", ".htm", ".txt", ".pdf", ".vtt", ".srt"})


def load_file(path: Path, settings: Settings, corpus_root: Path | None = None) -> SourceDocument:
    """Load one file into a SourceDocument (metadata: sidecar YAML > in-file metadata > defaults)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise LoaderError(f"Nicht unterstütztes Dateiformat: {suffix or '(ohne Endung)'}")
    try:
        parsed = _parse(path, suffix, settings)
        return build_document(path, corpus_root, parsed)
    except LoaderError:
        raise
    except RecursionError:
        raise LoaderError("Datei ist zu tief verschachtelt und kann nicht verarbeitet werden") from None
    except MemoryError:
        raise LoaderError("Datei ist zu groß für die Verarbeitung") from None
    except Exception as exc:  # a parser bug or an exotic file: never let a traceback reach the user
        log.warning("Unerwarteter Fehler beim Laden von %s", path, exc_info=True)
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise LoaderError(f"Datei konnte nicht verarbeitet werden: {detail}") from None


def _parse(path: Path, suffix: str, settings: Settings) -> ParsedFile:
    if suffix == ".pdf":
        from ingest.loaders.pdf import parse_pdf

        if not path.is_file():
            read_text_file(path)  # raises the matching "nicht gefunden"/"Verzeichnis" error
        if path.stat().st_size == 0:
            raise LoaderError("Datei ist leer")
        return parse_pdf(path, settings.pdf_max_pages, settings.file_timeout_seconds)

    text = read_text_file(path)
    if suffix in (".md", ".markdown"):
        from ingest.loaders.markdown import parse_markdown

        return parse_markdown(text)
    if suffix in (".html", ".htm"):
        from ingest.loaders.html import parse_html

        return parse_html(text)
    if suffix == ".txt":
        from ingest.loaders.text import parse_text

        return parse_text(text)
    if suffix == ".vtt":
        from ingest.loaders.transcript import parse_vtt

        return parse_vtt(text)
    from ingest.loaders.transcript import parse_srt

    return parse_srt(text)
