"""The trainer page /werkstatt: dossier form, coverage heatmap, question log. Without login the browser is sent to
/anmelden; the page gets the session's CSRF token in a meta tag for its writes (api/static/auth.js)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.auth import TrainerPageDep
from api.deps import SettingsDep
from api.routers.web import NO_CACHE, PAGE_CSP, templates

router = APIRouter(include_in_schema=False)

# Downloads are offered as blob: links made by the page.
WERKSTATT_CSP = PAGE_CSP.replace("img-src 'self' data:", "img-src 'self' data: blob:")


@router.get("/werkstatt", response_class=HTMLResponse)
def werkstatt(request: Request, principal: TrainerPageDep, settings: SettingsDep) -> Response:
    context = {"principal": principal, "retention_days": settings.question_log_days,
               "logging": settings.question_log}
    return templates.TemplateResponse(request, "werkstatt.html", context,
                                      headers={**NO_CACHE, "Content-Security-Policy": WERKSTATT_CSP})
