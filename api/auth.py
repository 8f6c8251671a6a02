"""Who is asking, and may they? One `Principal` per request, from (in this order) a Bearer API key, a session cookie
or nobody (anonymous), and Annotated dependencies that routers declare:

    def route(principal: AdminDep, ...)      # admin only (session or key with scope admin)
    def route(principal: TrainerDep, ...)    # trainer or admin
    def route(principal: AskDep, ...)        # public, or a key with scope ask when STADTRETTER_PUBLIC_ACCESS=false
    def page(principal: AdminPageDep, ...)   # like AdminDep, but a browser without login is sent to /anmelden
    (TrainerPageDep, SearchDep and SearchPageDep alike; GET /v1/me tells pages who is logged in)

401 means "who are you?" (no or unknown credentials), 403 "not allowed" (wrong role or scope, or a missing CSRF
token); both with German messages.

CSRF: a cookie-authenticated write (POST/PUT/PATCH/DELETE) must carry the session's token in the `X-CSRF-Token`
header (synchronizer token, kept with the session in the database; pages get it from `<meta name="csrf-token">`
or `GET /v1/me`, and api/static/auth.js sends it). Requests with a Bearer key need no token: a browser never adds
that header on its own.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from itsdangerous import BadSignature, TimestampSigner

from api.deps import ServicesDep
from core.settings import Settings
from services.accounts import ROLE_LABELS
from services.container import Services

SESSION_COOKIE = "stadtretter_session"
CSRF_HEADER = "X-CSRF-Token"
LOGIN_PATH = "/anmelden"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PUBLIC_SCOPES = ("ask", "search")

UNAUTHENTICATED = (
    "Anmeldung erforderlich: bitte unter /anmelden anmelden oder einen API-Schlüssel senden "
    "(Authorization: Bearer sr_…)."
)
INVALID_KEY = "Der API-Schlüssel ist ungültig oder wurde widerrufen."
BAD_AUTHORIZATION = "Der Authorization-Header muss die Form 'Bearer sr_…' haben."
CSRF_FAILED = "Sicherheitstoken (X-CSRF-Token) fehlt oder stimmt nicht. Bitte die Seite neu laden."
SCOPE_LABELS = {"ask": "Fragen stellen", "search": "Suchen und Quellen lesen"}

Kind = Literal["anonymous", "user", "key"]


@dataclass(frozen=True)
class Principal:
    """The caller. `role` is trainer/admin for accounts and for keys with such a scope, else None."""

    kind: Kind
    name: str
    role: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    csrf_token: str | None = None  # sessions only

    @property
    def authenticated(self) -> bool:
        return self.kind != "anonymous"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_trainer(self) -> bool:
        return self.role in ("trainer", "admin")

    def may(self, scope: str) -> bool:
        return scope in self.scopes


ANONYMOUS = Principal(kind="anonymous", name="Öffentlichkeit")


def _role_scopes(role: str | None) -> set[str]:
    """A role includes the public scopes and every lower role."""
    if role == "admin":
        return {*PUBLIC_SCOPES, "trainer", "admin"}
    if role == "trainer":
        return {*PUBLIC_SCOPES, "trainer"}
    return set()


def key_principal(name: str, scopes: tuple[str, ...]) -> Principal:
    role = "admin" if "admin" in scopes else "trainer" if "trainer" in scopes else None
    return Principal(kind="key", name=name, role=role, scopes=frozenset({*scopes, *_role_scopes(role)}))


class SessionSigner:
    """Signs the session token for the cookie (itsdangerous, with a timestamp checked against the lifetime)."""

    def __init__(self, settings: Settings) -> None:
        secret = settings.session_secret.get_secret_value() if settings.session_secret else None
        # Development without a secret: a random one per process (sessions end when the server restarts).
        self._signer = TimestampSigner(secret or secrets.token_urlsafe(32), salt="stadtretter-session")
        self.max_age = int(settings.session_hours * 3600)

    def sign(self, token: str) -> str:
        return self._signer.sign(token).decode("ascii")

    def unsign(self, value: str) -> str | None:
        try:
            return self._signer.unsign(value, max_age=self.max_age).decode("ascii")
        except (BadSignature, UnicodeError):
            return None


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def _resolve(request: Request, services: Services) -> Principal:
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise _unauthorized(BAD_AUTHORIZATION)
        key = services.api_keys.authenticate(credential.strip())
        if key is None:
            raise _unauthorized(INVALID_KEY)
        return key_principal(key.name, key.scopes)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        token = request.app.state.session_signer.unsign(cookie)
        session = services.accounts.session(token) if token else None
        if session is not None:  # an expired or forged cookie counts as no cookie
            account = session.account
            return Principal(
                kind="user", name=account.name, role=account.role,
                scopes=frozenset(_role_scopes(account.role)), csrf_token=session.csrf_token,
            )
    return ANONYMOUS


def current_principal(request: Request, services: ServicesDep) -> Principal:
    """The caller, resolved once per request. A wrong key is refused (401) even on public routes."""
    cached = getattr(request.state, "principal", None)
    if cached is None:
        cached = request.state.principal = _resolve(request, services)
    return cached


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def check_csrf(request: Request, principal: Principal, form_token: str | None = None) -> None:
    """Cookie-authenticated writes must echo the session's CSRF token (header, or a form field for plain forms)."""
    if principal.kind != "user" or request.method not in WRITE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER) or form_token or ""
    if not (principal.csrf_token and hmac.compare_digest(sent.encode(), principal.csrf_token.encode())):
        raise HTTPException(status_code=403, detail=CSRF_FAILED)


def require_role(role: str) -> Callable[..., Principal]:
    """Dependency: an account or key with `role` (admin satisfies trainer)."""

    def dependency(request: Request, principal: PrincipalDep) -> Principal:
        if not principal.authenticated:
            raise _unauthorized(UNAUTHENTICATED)
        if not principal.may(role):
            raise HTTPException(status_code=403, detail=f"Dafür fehlt die Berechtigung: nur für {ROLE_LABELS[role]}.")
        check_csrf(request, principal)
        return principal

    return dependency


def _to_login(request: Request) -> HTTPException:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return HTTPException(status_code=303, headers={"Location": f"{LOGIN_PATH}?next={quote(target)}"})


def require_page_role(role: str) -> Callable[..., Principal]:
    """Like require_role for HTML pages: without login the browser is sent to /anmelden (and back afterwards)."""

    def dependency(request: Request, principal: PrincipalDep) -> Principal:
        if not principal.authenticated:
            raise _to_login(request)
        if not principal.may(role):
            raise HTTPException(status_code=403, detail=f"Dafür fehlt die Berechtigung: nur für {ROLE_LABELS[role]}.")
        return principal

    return dependency


def require_scope(scope: str, *, page: bool = False) -> Callable[..., Principal]:
    """Dependency for the public routes: anyone while STADTRETTER_PUBLIC_ACCESS is true, else a key with `scope`
    (or a logged-in account). For a `page`, a browser without login is sent to /anmelden instead of a 401."""
    if scope not in PUBLIC_SCOPES:
        raise ValueError(f"unknown public scope {scope!r}")

    def dependency(request: Request, principal: PrincipalDep, services: ServicesDep) -> Principal:
        if services.settings.public_access:
            return principal
        if not principal.authenticated:
            raise _to_login(request) if page else _unauthorized(UNAUTHENTICATED)
        if not principal.may(scope):
            raise HTTPException(
                status_code=403, detail=f"Dieser API-Schlüssel darf das nicht (benötigtes Recht: {scope}, "
                f"{SCOPE_LABELS[scope]})."
            )
        check_csrf(request, principal)
        return principal

    return dependency


AdminDep = Annotated[Principal, Depends(require_role("admin"))]
TrainerDep = Annotated[Principal, Depends(require_role("trainer"))]
AdminPageDep = Annotated[Principal, Depends(require_page_role("admin"))]
TrainerPageDep = Annotated[Principal, Depends(require_page_role("trainer"))]
AskDep = Annotated[Principal, Depends(require_scope("ask"))]
SearchDep = Annotated[Principal, Depends(require_scope("search"))]
SearchPageDep = Annotated[Principal, Depends(require_scope("search", page=True))]


class StartRefused(RuntimeError):
    """The server must not start like this; the message (German) says what to set."""


NO_ADMIN_IN_PRODUCTION = (
    "In Produktion (STADTRETTER_ENVIRONMENT=production) startet der Wissens-Chat nur mit mindestens einem "
    "Administrator-Konto. Bitte zuerst anlegen: stadtretter users add NAME --role admin"
)


def check_production_ready(services: Services) -> None:
    """Beyond the settings validator (session secret, no '*' origin): production needs an admin account."""
    if services.settings.environment == "production" and services.accounts.count_admins() == 0:
        raise StartRefused(NO_ADMIN_IN_PRODUCTION)
