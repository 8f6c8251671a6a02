"""The web chat: the page, its static assets, the widget script and the source view (`/quellen/...`).

Assets are package data (api/static, served by Starlette's StaticFiles); the page, the widget script and the source
view are Jinja2 templates (api/templates, autoescaped). Everything a participant reads is German. The page and the
widget get the vocabulary (core/vocabulary.py) embedded, so labels and phase colours exist only on the server. The
source view is rendered from the store's chunks, so it shows exactly the text the answers cite.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from api.auth import PrincipalDep, SearchPageDep
from api.deps import ServicesDep, SettingsDep
from core import vocabulary
from core.settings import Settings
from core.store import StoreError
from ingest.registry import SourceRecord
from retriever.answer import format_time
from services.container import Services

router = APIRouter(tags=["Web-Chat"], include_in_schema=False)

# `api` is a regular package on disk (editable or wheel install), so its data folder is a real directory.
STATIC_DIR = Path(str(files("api") / "static"))
JAVASCRIPT = "text/javascript; charset=utf-8"
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'self'; object-src 'none'"
)
# Source pages may show the PDF viewer of the browser for the original file (object-src 'self' not needed: link only).
SOURCE_CSP = PAGE_CSP
NO_CACHE = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
# Public, secret-free code: any page may load the widget and its UI modules. The API itself stays restricted to
# settings.allowed_origins (api/security.py).
PUBLIC_CODE = {**NO_CACHE, "Access-Control-Allow-Origin": "*"}

templates = Jinja2Templates(
    env=Environment(
        loader=PackageLoader("api", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
)
templates.env.globals.update(
    vocabulary=vocabulary.as_dict(),
    type_label=vocabulary.type_label,
    phase_label=vocabulary.phase_label,
    phases=vocabulary.PHASES,
)


# --------------------------------------------------------------------------------------------------------------
# Page, assets, widget


class PublicAssets(StaticFiles):
    """The chat's ES modules and stylesheet; the widget imports them from other origins, hence the CORS header."""

    def file_response(self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope,
                      status_code: int = 200) -> Response:  # fmt: skip
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(PUBLIC_CODE)
        return response

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            return await super().get_response(path, scope)
        except StarletteHTTPException as exc:
            if exc.status_code == 404:
                raise HTTPException(status_code=404, detail="Datei nicht gefunden") from exc
            raise


router.mount("/static", PublicAssets(directory=STATIC_DIR), name="static")


def page_csp(allowed_origins: list[str]) -> str:
    """The chat page may be framed (/?embed=1) only by itself and by the origins allowed for the widget."""
    ancestors = " ".join(["'self'", *(o for o in allowed_origins if o != "*" and "'" not in o and " " not in o)])
    return PAGE_CSP.replace("frame-ancestors 'self'", f"frame-ancestors {ancestors}")


@router.get("/", response_class=HTMLResponse)
def index(request: Request, settings: SettingsDep, principal: PrincipalDep) -> Response:
    headers = {**NO_CACHE, "Content-Security-Policy": page_csp(list(settings.allowed_origins))}
    # Logged in (e.g. a trainer in a closed course group): the chat sends the session's CSRF token with its POSTs.
    return templates.TemplateResponse(request, "index.html", {"csrf_token": principal.csrf_token}, headers=headers)


@router.get("/widget.js")
def widget(request: Request) -> Response:
    return templates.TemplateResponse(request, "widget.js", headers=PUBLIC_CODE, media_type=JAVASCRIPT)


# --------------------------------------------------------------------------------------------------------------
# Original files


def original_file(record: SourceRecord | None, settings: Settings) -> Path | None:
    """The registered file of a source, but only when it lies inside the corpus folder or the uploads (never
    arbitrary paths)."""
    if record is None or record.status != "ok" or not record.path:
        return None
    try:
        roots = [settings.corpus_dir.resolve(), settings.uploads_path.resolve()]
        path = Path(record.path).resolve()
    except (OSError, RuntimeError):
        return None
    if not any(root in path.parents for root in roots) or not path.is_file():
        return None
    return path


@router.get("/quellen/{source_id}/datei")
def source_file(source_id: str, services: ServicesDep, principal: SearchPageDep) -> Response:
    path = original_file(services.registry.get(source_id), services.settings)
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


@dataclass
class TranscriptLine:
    text: str
    speaker: str | None = None
    time: str | None = None
    target: bool = False


@dataclass
class Passage:
    """One chunk of the source in reading order, with the headings that open before it."""

    chunk_id: str
    target: bool
    page: int | None = None  # "Seite n" heading (PDFs)
    section: str | None = None
    paragraphs: list[str] = field(default_factory=list)
    # Transcript cue: start second, "mm:ss–mm:ss", speakers and the lines with their own time stamps.
    start: int | None = None
    time_range: str | None = None
    speakers: str | None = None
    lines: list[TranscriptLine] = field(default_factory=list)


def format_date(value: str | None) -> str | None:
    if value and len(value) == 10 and value[4] == "-" and value[7] == "-":
        return f"{value[8:10]}.{value[5:7]}.{value[0:4]}"
    return value


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]


def transcript_lines(text: str, meta: dict[str, Any], t: float | None = None) -> list[TranscriptLine]:
    """Lines of a cue; `t` (seconds) marks the line spoken at that time."""
    try:
        cues = json.loads(meta.get("cues") or "[]")
    except (TypeError, ValueError):
        cues = []
    lines = []
    for index, line in enumerate(l for l in text.split("\n") if l.strip()):
        item = TranscriptLine(text=line)
        if index < len(cues) and cues[index]:
            start = float(cues[index][0])
            end = float(cues[index][1]) if len(cues[index]) > 1 else start
            item.time = format_time(start)
            item.target = t is not None and start <= t <= end
        speaker, sep, rest = line.partition(": ")
        if sep and 1 < len(speaker) <= 60:
            item.speaker, item.text = speaker, rest
        lines.append(item)
    return lines


def target_chunk(chunks: list, chunk: str | None, t: float | None) -> str | None:
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


def passages(chunks: list, target: str | None, is_pdf: bool, is_transcript: bool, t: float | None) -> list[Passage]:
    result = []
    section = page = None
    for c in chunks:
        meta = c.metadata
        passage = Passage(chunk_id=c.id, target=c.id == target)
        if is_pdf and meta.get("page") is not None and meta.get("page") != page:
            page = meta.get("page")
            passage.page = int(page)
            section = None
        if meta.get("section") and meta.get("section") != section:
            section = passage.section = meta.get("section")
        if is_transcript and meta.get("start") is not None:
            start = float(meta["start"])
            passage.start = int(start)
            passage.time_range = f"{format_time(start)}–{format_time(float(meta.get('end', start)))}"
            passage.speakers = meta.get("speakers") or None
            passage.lines = transcript_lines(c.text, meta, t if passage.target else None)
        else:
            passage.paragraphs = paragraphs(c.text)
        result.append(passage)
    return result


def source_page(request: Request, template: str, context: dict[str, Any], status: int = 200) -> Response:
    headers = {**NO_CACHE, "Content-Security-Policy": SOURCE_CSP}
    return templates.TemplateResponse(request, template, context, status_code=status, headers=headers)


def message_page(request: Request, title: str, message: str, status: int) -> Response:
    return source_page(request, "source_message.html", {"title": title, "message": message}, status)


def render_source(request: Request, services: Services, record: SourceRecord, chunk: str | None,
                  t: float | None) -> Response:  # fmt: skip
    chunks = services.store.get_where({"source_id": record.source_id})
    chunks.sort(key=lambda c: int(c.metadata.get("chunk_index", 0)))
    target = target_chunk(chunks, chunk, t)
    source_type = record.type or (chunks[0].metadata.get("type") if chunks else "") or ""
    timed = bool(chunks) and all(c.metadata.get("start") is not None for c in chunks)
    is_transcript = source_type == "webtalk" or timed
    file_path = original_file(record, services.settings)
    is_pdf = bool(file_path and file_path.suffix.lower() == ".pdf")
    context = {
        "title": record.title or record.source_id,
        "record": record,
        "date": format_date(record.date),
        "source_type": source_type,
        "is_pdf": is_pdf,
        "is_transcript": is_transcript,
        "has_target": target is not None,
        "passages": passages(chunks, target, is_pdf, is_transcript, t),
    }
    return source_page(request, "source.html", context)


@router.get("/quellen/{source_id}", response_class=HTMLResponse)
def source_view(
    request: Request,
    source_id: str,
    services: ServicesDep,
    principal: SearchPageDep,
    chunk: Annotated[str | None, Query(max_length=200)] = None,
    t: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
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
        message = "Diese Quelle gibt es im Wissens-Chat nicht (mehr). Vielleicht wurde sie entfernt."
        return message_page(request, "Quelle nicht gefunden", message, 404)
    try:
        return render_source(request, services, record, chunk, seconds)
    except StoreError as exc:
        return message_page(request, "Quelle gerade nicht verfügbar", str(exc), 503)
