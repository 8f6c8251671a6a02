"""The Verwaltung page (`/verwaltung`): admins only; a browser without login is sent to /anmelden."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.auth import AdminPageDep
from api.deps import SettingsDep
from api.routers.auth import LOGOUT_PATH
from api.routers.web import NO_CACHE, PAGE_CSP, templates
from services.api_keys import SCOPES

router = APIRouter(tags=["Verwaltung"], include_in_schema=False)


@router.get("/verwaltung", response_class=HTMLResponse)
def verwaltung(request: Request, principal: AdminPageDep, settings: SettingsDep) -> HTMLResponse:
    context = {
        "csrf_token": principal.csrf_token or "", "user_name": principal.name,
        "max_upload_mb": f"{settings.max_upload_mb:g}", "key_scopes": list(SCOPES.items()), "logout_path": LOGOUT_PATH,
    }
    headers = {**NO_CACHE, "Content-Security-Policy": PAGE_CSP}
    return templates.TemplateResponse(request, "verwaltung.html", context, headers=headers)
