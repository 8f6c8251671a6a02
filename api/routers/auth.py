"""Browser login (`/anmelden`), logout (`/abmelden`) and `GET /v1/me`.

The login form is a plain HTML form (works without JavaScript). It is protected against login CSRF by a
double-submit token: a random value in a short-lived, HttpOnly, SameSite=Strict cookie that the form must echo.
Failed logins are limited per account and per client (api/security.py RateLimits); over the limit the page says
when to try again (429 with Retry-After). A success sets the signed, HttpOnly, SameSite=Lax session cookie (Secure in
production) and sends the browser on to `next` (a local path only).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from api.auth import LOGIN_PATH, SESSION_COOKIE, PrincipalDep, check_csrf
from api.auth_schemas import Me
from api.deps import ServicesDep
from api.routers.web import NO_CACHE, PAGE_CSP, templates
from api.security import client_address, retry_after_header
from services.accounts import ROLE_LABELS

router = APIRouter(tags=["Anmeldung"])
pages = APIRouter(include_in_schema=False)

LOGIN_CSRF_COOKIE = "stadtretter_login_csrf"
LOGOUT_PATH = "/abmelden"
WRONG_CREDENTIALS = "Benutzername oder Passwort ist falsch."
FORM_EXPIRED = "Die Anmeldeseite war abgelaufen. Bitte geben Sie Ihre Daten noch einmal ein."
LOGGED_OUT = "Sie sind abgemeldet."


def too_many_attempts(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return (
        "Zu viele fehlgeschlagene Anmeldeversuche. Bitte versuchen Sie es in "
        f"{'einer Minute' if minutes == 1 else f'{minutes} Minuten'} erneut."
    )


def safe_next(target: str | None) -> str:
    """Only a local path: no other host (//evil.example, /\\evil.example), no scheme."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or any(c in target for c in "\r\n"):
        return "/"
    return target


def _login_page(
    request: Request, *, next_path: str, status: int = 200, error: str | None = None, info: str | None = None,
    name: str = "", principal=None, headers: dict[str, str] | None = None,  # noqa: ANN001 - Principal
) -> Response:
    form_token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    context = {
        "next_path": next_path, "error": error, "info": info, "name": name, "form_token": form_token,
        "principal": principal if principal is not None and principal.kind == "user" else None,
        "role_labels": ROLE_LABELS,
    }
    response = templates.TemplateResponse(
        request, "anmelden.html", context, status_code=status,
        headers={**NO_CACHE, "Content-Security-Policy": PAGE_CSP, **(headers or {})},
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, form_token, max_age=3600, path=LOGIN_PATH, httponly=True, samesite="strict",
        secure=request.app.state.services.settings.environment == "production",
    )
    return response


@pages.get(LOGIN_PATH)
def login_form(
    request: Request, principal: PrincipalDep,
    next_path: Annotated[str | None, Query(alias="next", max_length=500)] = None,
    abgemeldet: Annotated[bool, Query()] = False,
) -> Response:
    return _login_page(request, next_path=safe_next(next_path), principal=principal,
                       info=LOGGED_OUT if abgemeldet else None)


@pages.post(LOGIN_PATH)
def login(
    request: Request,
    services: ServicesDep,
    name: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    form_token: Annotated[str, Form(max_length=100)] = "",
    next_path: Annotated[str, Form(alias="next", max_length=500)] = "/",
) -> Response:
    target = safe_next(next_path)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not (expected and hmac.compare_digest(form_token.encode(), expected.encode())):
        return _login_page(request, next_path=target, status=403, error=FORM_EXPIRED, name=name)
    limits = request.app.state.rate_limiter
    name = name.strip()
    client = client_address(request.scope)
    wait = max(
        limits.blocked(limits.login_per_account, "login-account", name.lower()) or 0.0,
        limits.blocked(limits.login_per_client, "login-client", client) or 0.0,
    )
    if wait:
        return _login_page(request, next_path=target, status=429, error=too_many_attempts(wait), name=name,
                           headers=retry_after_header(wait))
    account = services.accounts.authenticate(name, password)
    if account is None:
        limits.hit(limits.login_per_account, "login-account", name.lower())
        limits.hit(limits.login_per_client, "login-client", client)
        return _login_page(request, next_path=target, status=401, error=WRONG_CREDENTIALS, name=name)
    limits.clear(limits.login_per_account, "login-account", name.lower())
    new = services.accounts.start_session(account)
    response = RedirectResponse(target, status_code=303)
    settings = services.settings
    response.set_cookie(
        SESSION_COOKIE, request.app.state.session_signer.sign(new.token), max_age=int(settings.session_hours * 3600),
        path="/", httponly=True, samesite="lax", secure=settings.environment == "production",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=LOGIN_PATH)
    return response


@pages.post(LOGOUT_PATH)
def logout(
    request: Request, principal: PrincipalDep, services: ServicesDep,
    csrf_token: Annotated[str | None, Form(max_length=100)] = None,
) -> Response:
    """Ends the session (form field csrf_token or X-CSRF-Token header, so neither a foreign page nor an image can
    log someone out)."""
    if principal.kind == "user":
        check_csrf(request, principal, form_token=csrf_token)
        token = request.app.state.session_signer.unsign(request.cookies.get(SESSION_COOKIE, ""))
        if token:
            services.accounts.end_session(token)
    response = RedirectResponse(f"{LOGIN_PATH}?abgemeldet=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/me", response_model=Me, summary="Wer bin ich? Rolle, Rechte und CSRF-Token für Seiten")
def me(principal: PrincipalDep, services: ServicesDep) -> Me:
    return Me(
        authenticated=principal.authenticated, kind=principal.kind, name=principal.name, role=principal.role,
        role_label=ROLE_LABELS.get(principal.role or ""), scopes=sorted(principal.scopes),
        csrf_token=principal.csrf_token, public_access=services.settings.public_access,
    )
