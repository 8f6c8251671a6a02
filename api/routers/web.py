"""The web chat: the page, its static assets, the widget script and the source view (`/quellen/...`).

Assets are package data (api/static, served by Starlette's StaticFiles); the page, the widget script and the source
view are Jinja2 templates (api/templates, autoescaped). Everything a participant reads is German. The page and the
widget get the vocabulary (core/vocabulary.py) embedded, so labels and phase colours exist only on the server. The
source view is rendered from the store's chunks, so it shows exactly the text the answers cite.
"""

from __future__ import annotations

import math
import os
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
from core.store import StoreError

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
# Original files and source view (content from services/source_view.py)


@router.get("/quellen/{source_id}/datei")
def source_file(source_id: str, services: ServicesDep, principal: SearchPageDep) -> Response:
    path = services.source_view.original_file(source_id)
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


def source_page(request: Request, template: str, context: dict[str, Any], status: int = 200) -> Response:
    headers = {**NO_CACHE, "Content-Security-Policy": SOURCE_CSP}
    return templates.TemplateResponse(request, template, context, status_code=status, headers=headers)


def message_page(request: Request, title: str, message: str, status: int) -> Response:
    return source_page(request, "source_message.html", {"title": title, "message": message}, status)


def seconds_param(t: str | None) -> float | None:
    try:
        seconds = float(t) if t else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) else None


@router.get("/quellen/{source_id}", response_class=HTMLResponse)
def source_view(
    request: Request,
    source_id: str,
    services: ServicesDep,
    principal: SearchPageDep,
    chunk: Annotated[str | None, Query(max_length=200)] = None,
    t: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    try:
        view = services.source_view.view(source_id, chunk, seconds_param(t))
    except StoreError as exc:
        return message_page(request, "Quelle gerade nicht verfügbar", str(exc), 503)
    if view is None:
        message = "Diese Quelle gibt es im Wissens-Chat nicht (mehr). Vielleicht wurde sie entfernt."
        return message_page(request, "Quelle nicht gefunden", message, 404)
    return source_page(request, "source.html", vars(view))
