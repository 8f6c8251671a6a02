"""The web chat: the page, its static assets, the widget script and the source view (`/quellen/...`).

Everything a participant reads is German. The source view is rendered on the server from the store's chunks, so it
shows exactly the text the answers cite.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse, HTMLResponse, Response

from api.deps import ServicesDep, SettingsDep
from ingest.registry import SourceRecord
from services.container import Services
from core.store import StoreError

router = APIRouter(tags=["Web-Chat"], include_in_schema=False)

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'self'; object-src 'none'"
)
# Source pages may show the PDF viewer of the browser for the original file (object-src 'self' not needed: link only).
SOURCE_CSP = PAGE_CSP

TYPE_LABELS = {"article": "Artikel", "webtalk": "WebTalk", "course": "Kursmaterial"}
PHASE_LABELS = {"E": "Evaluation", "K": "Konzeption", "T": "Transformation", "übergreifend": "übergreifend"}

# Inline SVG icons (same drawings as web/icons.js), decorative: the text label next to them carries the meaning.
_SVG = '<svg class="sr-icon" viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" focusable="false" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">{}</svg>'  # noqa: E501
TYPE_ICONS = {
    "article": _SVG.format('<path d="M14 3H6a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V9z"/><path d="M14 3v6h6"/><path d="M8 13h8M8 17h5"/>'),  # noqa: E501
    "webtalk": _SVG.format('<rect x="3" y="5" width="13" height="14" rx="2"/><path d="m16 10 5-3v10l-5-3z"/>'),
    "course": _SVG.format('<path d="M2 9.5 12 5l10 4.5-10 4.5z"/><path d="M6 11.5V16c0 1.5 2.7 3 6 3s6-1.5 6-3v-4.5"/>'),
}


# --------------------------------------------------------------------------------------------------------------
# Page, assets, widget


def _file(path: Path, media_type: str, cors: bool = False, csp: str | None = None) -> FileResponse:
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if cors:
        # Public, secret-free code: any page may load the widget and its UI modules. The API itself stays
        # restricted to settings.allowed_origins (api/security.py).
        headers["Access-Control-Allow-Origin"] = "*"
    if csp:
        headers["Content-Security-Policy"] = csp
    return FileResponse(path, media_type=media_type, headers=headers)


def page_csp(allowed_origins: list[str]) -> str:
    """The chat page may be framed (/?embed=1) only by itself and by the origins allowed for the widget."""
    ancestors = " ".join(["'self'", *(o for o in allowed_origins if o != "*" and "'" not in o and " " not in o)])
    return PAGE_CSP.replace("frame-ancestors 'self'", f"frame-ancestors {ancestors}")


@router.get("/", response_class=HTMLResponse)
def index(settings: SettingsDep) -> FileResponse:
    return _file(WEB_DIR / "index.html", "text/html; charset=utf-8", csp=page_csp(list(settings.allowed_origins)))


@router.get("/widget.js")
def widget() -> FileResponse:
    return _file(WEB_DIR / "widget.js", STATIC_TYPES[".js"], cors=True)


@router.get("/static/{name:path}")
def static(name: str) -> FileResponse:
    root = WEB_DIR.resolve()
    path = (root / name).resolve()
    if root not in path.parents or path.suffix not in STATIC_TYPES or not path.is_file():
        raise HTTPException(status_code=404, detail="Datei nicht gefunden")
    return _file(path, STATIC_TYPES[path.suffix], cors=True)


# --------------------------------------------------------------------------------------------------------------
# Original files


def original_file(record: SourceRecord | None, corpus_dir: Path) -> Path | None:
    """The registered file of a source, but only when it lies inside the corpus folder (never arbitrary paths)."""
    if record is None or record.status != "ok" or not record.path:
        return None
    try:
        root = corpus_dir.resolve()
        path = Path(record.path).resolve()
    except (OSError, RuntimeError):
        return None
    if root not in path.parents or not path.is_file():
        return None
    return path


@router.get("/quellen/{source_id}/datei")
def source_file(source_id: str, services: ServicesDep) -> Response:
    path = original_file(services.registry.get(source_id), services.settings.corpus_dir)
    if path is None:
        raise HTTPException(status_code=404, detail="Die Originaldatei dieser Quelle ist nicht verfügbar.")
    suffix = path.suffix.lower()
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
    if suffix == ".pdf":
        return FileResponse(path, media_type="application/pdf", headers=headers,
                            filename=path.name, content_disposition_type="inline")  # fmt: skip
    if suffix in {".html", ".htm", ".xhtml"}:
        # Never render corpus HTML on our own origin: offered as a download.
        return FileResponse(path, media_type="application/octet-stream", headers=headers, filename=path.name)
    headers["Content-Security-Policy"] = "sandbox"
    return FileResponse(path, media_type="text/plain; charset=utf-8", headers=headers,
                        filename=path.name, content_disposition_type="inline")  # fmt: skip


# --------------------------------------------------------------------------------------------------------------
# Source view


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def format_time(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def format_date(value: str | None) -> str | None:
    if value and len(value) == 10 and value[4] == "-" and value[7] == "-":
        return f"{value[8:10]}.{value[5:7]}.{value[0:4]}"
    return value


def phase_badge(phase: str | None) -> str:
    if not phase:
        return ""
    key = phase if phase in ("E", "K", "T") else "X"
    label = PHASE_LABELS.get(phase, phase)
    letter = f'<span class="sr-phase-letter" aria-hidden="true">{_e(phase)}</span> ' if key != "X" else ""
    return f'<span class="sr-phase sr-phase-{key}">{letter}<span>EKT-Phase: {_e(label)}</span></span>'


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = f"""<!doctype html>
<html lang="de">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)} – Stadtretter Wissens-Chat</title>
<link rel="stylesheet" href="/static/styles.css">
<script type="module" src="/static/quelle.js"></script>
</head>
<body class="sr-page">
<div class="sr-app sr-source-page">
{body}
</div>
</body>
</html>"""
    headers = {"Content-Security-Policy": SOURCE_CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
    return HTMLResponse(document, status_code=status, headers=headers)


def _message_page(title: str, message: str, status: int) -> HTMLResponse:
    body = f"""<header class="sr-source-header"><a class="sr-back" href="/">← Zurück zum Wissens-Chat</a>
<h1>{_e(title)}</h1></header>
<main id="inhalt"><p class="sr-notice">{_e(message)}</p></main>"""
    return _page(title, body, status)


def _paragraphs(text: str) -> str:
    parts = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return "".join(f"<p>{_e(p)}</p>" for p in parts)


def _transcript_lines(text: str, meta: dict[str, Any], t: float | None = None) -> str:
    cues = []
    try:
        cues = json.loads(meta.get("cues") or "[]")
    except (TypeError, ValueError):
        cues = []
    lines = []
    for index, line in enumerate(l for l in text.split("\n") if l.strip()):
        speaker, sep, rest = line.partition(": ")
        stamp, attrs = "", ""
        if index < len(cues) and cues[index]:
            start = float(cues[index][0])
            end = float(cues[index][1]) if len(cues[index]) > 1 else start
            stamp = f'<span class="sr-line-time">{format_time(start)}</span> '
            if t is not None and start <= t <= end:
                attrs = ' class="sr-line-target"'
        if sep and 1 < len(speaker) <= 60:
            lines.append(f'<p{attrs}>{stamp}<strong class="sr-speaker">{_e(speaker)}:</strong> {_e(rest)}</p>')
        else:
            lines.append(f"<p{attrs}>{stamp}{_e(line)}</p>")
    return "".join(lines)


def _target_chunk(chunks: list, chunk: str | None, t: float | None) -> str | None:
    if chunk and any(c.id == chunk for c in chunks):
        return chunk
    if t is not None:
        timed = [c for c in chunks if c.metadata.get("start") is not None]
        for c in timed:
            if float(c.metadata["start"]) <= t <= float(c.metadata.get("end", c.metadata["start"])):
                return c.id
        before = [c for c in timed if float(c.metadata["start"]) <= t]
        if before:
            return before[-1].id
        if timed:
            return timed[0].id
    return None


def render_source(services: Services, record: SourceRecord, chunk: str | None, t: float | None) -> HTMLResponse:
    chunks = services.store.get_where({"source_id": record.source_id})
    chunks.sort(key=lambda c: int(c.metadata.get("chunk_index", 0)))
    target = _target_chunk(chunks, chunk, t)
    source_type = record.type or (chunks[0].metadata.get("type") if chunks else "") or ""
    is_transcript = source_type == "webtalk" or (chunks and all(c.metadata.get("start") is not None for c in chunks))
    file_path = original_file(record, services.settings.corpus_dir)
    is_pdf = bool(file_path and file_path.suffix.lower() == ".pdf")
    file_url = f"/quellen/{quote(record.source_id)}/datei"

    meta_parts = []
    if source_type:
        meta_parts.append(f'<span class="sr-type">{TYPE_ICONS.get(source_type, "")}'
                          f"<span>{_e(TYPE_LABELS.get(source_type, source_type))}</span></span>")  # fmt: skip
    if record.date:
        meta_parts.append(f'<span><span class="sr-visually-hidden">Datum: </span>{_e(format_date(record.date))}</span>')
    if record.author:
        meta_parts.append(f"<span>{_e(record.author)}</span>")
    if record.phase:
        meta_parts.append(phase_badge(record.phase))
    links = []
    if record.url:
        label = "Aufzeichnung öffnen" if source_type == "webtalk" else "Original auf der Website öffnen"
        links.append(f'<a href="{_e(record.url)}" rel="noopener noreferrer">{label}</a>')
    if is_pdf:
        links.append(f'<a href="{file_url}">Original-PDF öffnen</a>')

    parts: list[str] = []
    section = page = None
    for c in chunks:
        meta = c.metadata
        if is_pdf and meta.get("page") is not None and meta.get("page") != page:
            page = meta.get("page")
            parts.append(f'<h2 class="sr-page-heading" id="seite-{int(page)}">Seite {int(page)} '
                         f'<a class="sr-small-link" href="{file_url}#page={int(page)}">im PDF öffnen</a></h2>')  # fmt: skip
            section = None
        if meta.get("section") and meta.get("section") != section:
            section = meta.get("section")
            level = "h3" if is_pdf else "h2"
            parts.append(f'<{level} class="sr-section-heading">{_e(section)}</{level}>')
        is_target = c.id == target
        attrs = ' id="stelle" tabindex="-1" data-target="1" aria-label="Zitierte Stelle"' if is_target else ""
        cls = "sr-chunk is-target" if is_target else "sr-chunk"
        if is_transcript and meta.get("start") is not None:
            start = float(meta["start"])
            end = float(meta.get("end", start))
            anchor = f"t-{int(start)}"
            stamp = (f'<a class="sr-time" href="?t={int(start)}" id="{anchor}">{format_time(start)}–{format_time(end)}</a>'
                     f'{" · " + _e(meta["speakers"]) if meta.get("speakers") else ""}')  # fmt: skip
            body = _transcript_lines(c.text, meta, t if is_target else None)
            parts.append(f'<section class="{cls} sr-cue"{attrs} data-chunk="{_e(c.id)}"><p class="sr-cue-time">{stamp}</p>{body}</section>')
        else:
            parts.append(f'<section class="{cls}"{attrs} data-chunk="{_e(c.id)}">{_paragraphs(c.text)}</section>')
    if not parts:
        parts.append('<p class="sr-notice">Zu dieser Quelle ist kein Text gespeichert.</p>')

    target_note = ""
    if target:
        where = "Die zitierte Stelle ist farbig markiert."
        target_note = (f'<p class="sr-target-note">{where} <a href="#stelle">Zur zitierten Stelle springen</a></p>')
    kind = "Transkript" if is_transcript else "Volltext"
    body = f"""<a class="sr-skip" href="#inhalt">Zum Inhalt springen</a>
<header class="sr-source-header">
<a class="sr-back" href="/">← Zurück zum Wissens-Chat</a>
<h1>{_e(record.title or record.source_id)}</h1>
<p class="sr-source-meta">{' <span aria-hidden="true">·</span> '.join(meta_parts)}</p>
{f'<p class="sr-source-links">{" ".join(links)}</p>' if links else ""}
{target_note}
</header>
<main id="inhalt" tabindex="-1" aria-label="{kind}">
{''.join(parts)}
</main>"""
    return _page(record.title or record.source_id, body)


@router.get("/quellen/{source_id}", response_class=HTMLResponse)
def source_view(
    source_id: str,
    services: ServicesDep,
    chunk: Annotated[str | None, Query(max_length=200)] = None,
    t: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    seconds = None
    if t:
        try:
            seconds = float(t)
        except ValueError:
            seconds = None
        if seconds is not None and not math.isfinite(seconds):
            seconds = None
    record = services.registry.get(source_id)
    if record is None or record.status != "ok":
        return _message_page("Quelle nicht gefunden",
                             "Diese Quelle gibt es im Wissens-Chat nicht (mehr). Vielleicht wurde sie entfernt.", 404)  # fmt: skip
    try:
        return render_source(services, record, chunk, seconds)
    except StoreError as exc:
        return _message_page("Quelle gerade nicht verfügbar", str(exc), 503)
