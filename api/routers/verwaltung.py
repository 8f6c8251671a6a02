"""The Verwaltung page (`/verwaltung`): admins only; a browser without login is sent to /anmelden."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.auth import SCOPE_LABELS, AdminPageDep
from api.deps import SettingsDep
from api.routers.web import NO_CACHE, PAGE_CSP, templates

router = APIRouter(tags=["Verwaltung"], include_in_schema=False)

KEY_SCOPES = [*SCOPE_LABELS.items(), ("trainer", "Trainer-Bereich"), ("admin", "Verwaltung")]


@router.get("/verwaltung", response_class=HTMLResponse)
def verwaltung(request: Request, principal: AdminPageDep, settings: SettingsDep) -> HTMLResponse:
    response = templates.TemplateResponse(request, "verwaltung.html", {
        "csrf_token": principal.csrf_token or "", "user_name": principal.name,
        "max_upload_mb": f"{settings.max_upload_mb:g}", "key_scopes": KEY_SCOPES, "logout_path": "/abmelden",
    })
    response.headers.update({**NO_CACHE, "Content-Security-Policy": PAGE_CSP})
    return response
