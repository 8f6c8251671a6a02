"""Browser-facing protection of the API: CORS for the embeddable widget, a same-origin check on writes and rate
limits on questions, searches and logins.

- CORS: only origins listed in settings.allowed_origins get CORS headers (Starlette's CORSMiddleware). A page on any
  other site may load the public widget script, but the browser refuses its API calls.
- Cross-origin writes: a POST whose Origin header is neither allowed nor the app's own origin is answered with 403
  before it reaches a router. This also covers "simple" requests (e.g. form posts) that skip the CORS preflight.
- Rate limits (the `limits` library, moving window): `POST /v1/ask*` and `POST /v1/search` per API key
  (settings.key_rate_limit_per_minute) when a Bearer key is sent, else per client (IP address + Origin,
  settings.rate_limit_per_minute); the Akademie site's server sends all its visitors' questions with one key from
  one address, so a key has its own, larger budget. Failed logins are limited per account and per client
  (api/routers/auth.py). Over a limit the answer is 429 with a German message and a Retry-After header; a shared
  storage that cannot be reached lets questions through (logged) rather than failing them. Storage is
  settings.limits_storage_uri: `memory://` counts per process (with several workers each counts on its own),
  a shared storage such as Redis (STADTRETTER_REDIS_URL) counts for all replicas, logins included.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from limits import RateLimitItem, RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api import API_PREFIX
from core.settings import Settings

logger = logging.getLogger("stadtretter.security")

RATE_LIMIT_MESSAGE = "Zu viele Anfragen – bitte warten Sie einen Moment und versuchen Sie es dann erneut."
FORBIDDEN_ORIGIN_MESSAGE = (
    "Anfragen von dieser Website sind für den Wissens-Chat nicht freigegeben. "
    "Bitte wenden Sie sich an die Stadtretter-Akademie, wenn der Chat hier eingebunden werden soll."
)
RATE_LIMITED_PATHS = (f"{API_PREFIX}/ask", f"{API_PREFIX}/search")
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _netloc(origin: str) -> str:
    try:
        return urlsplit(origin).netloc.lower()
    except ValueError:
        return ""


def same_origin(scope: Scope) -> bool:
    """True when the request's Origin names this server itself (the chat page served by the app).

    Compared by host and port only, so a TLS-terminating proxy that keeps the Host header still counts as same origin.
    """
    headers = Headers(scope=scope)
    origin = headers.get("origin")
    host = (headers.get("host") or "").lower()
    return bool(origin) and bool(host) and _netloc(origin) == host


def origin_allowed(origin: str, allowed: list[str]) -> bool:
    return "*" in allowed or origin.rstrip("/") in allowed


class RateLimits:
    """All rate limits of one app, on one `limits` storage."""

    def __init__(self, settings: Settings) -> None:
        self.storage = storage_from_string(settings.limits_storage_uri)
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.per_client = RateLimitItemPerMinute(settings.rate_limit_per_minute)
        self.per_key = RateLimitItemPerMinute(settings.key_rate_limit_per_minute)
        window = settings.login_window_minutes
        self.login_per_account = RateLimitItemPerMinute(settings.login_attempts_per_account, window)
        self.login_per_client = RateLimitItemPerMinute(settings.login_attempts_per_client, window)

    def hit(self, item: RateLimitItem, *identifiers: str) -> float | None:
        """Count a hit; None when allowed, else the seconds until the next hit would be allowed."""
        if self.limiter.hit(item, *identifiers):
            return None
        return self.retry_after(item, *identifiers)

    def blocked(self, item: RateLimitItem, *identifiers: str) -> float | None:
        """Without counting: None when a hit would be allowed, else the seconds to wait."""
        return None if self.limiter.test(item, *identifiers) else self.retry_after(item, *identifiers)

    def retry_after(self, item: RateLimitItem, *identifiers: str) -> float:
        return max(self.limiter.get_window_stats(item, *identifiers).reset_time - time.time(), 0.0)

    def clear(self, item: RateLimitItem, *identifiers: str) -> None:
        self.limiter.clear(item, *identifiers)

    def reset(self) -> None:
        self.storage.reset()


def retry_after_header(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "?"


def _bearer_identity(headers: Headers) -> str | None:
    """A stable, non-secret name for the key in an Authorization header (its hash); unknown keys are refused later
    with 401 anyway."""
    scheme, _, credential = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return None
    return hashlib.sha256(credential.strip().encode("utf-8")).hexdigest()[:32]


class SecurityMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware), so streamed answers pass through untouched."""

    def __init__(self, app: ASGIApp, allowed_origins: list[str], limits: RateLimits) -> None:
        self.app = app
        self.allowed = [origin.rstrip("/") for origin in allowed_origins]
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if method in WRITE_METHODS and origin and not origin_allowed(origin, self.allowed) and not same_origin(scope):
            await _json(send, 403, {"detail": FORBIDDEN_ORIGIN_MESSAGE})
            return
        if method == "POST" and scope["path"].startswith(RATE_LIMITED_PATHS):
            retry_after = self._question_limit(headers, scope, origin)
            if retry_after is not None:
                header = retry_after_header(retry_after)
                extra = [(name.lower().encode(), value.encode()) for name, value in header.items()]
                await _json(send, 429, {"detail": RATE_LIMIT_MESSAGE}, extra)
                return
        await self.app(scope, receive, send)


    def _question_limit(self, headers: Headers, scope: Scope, origin: str | None) -> float | None:
        """Count a question or search; an unreachable shared storage (Redis) lets it through: the chat keeps
        answering, the outage is logged."""
        key = _bearer_identity(headers)
        try:
            if key:
                return self.limits.hit(self.limits.per_key, "key", key)
            return self.limits.hit(self.limits.per_client, "client", client_address(scope), origin or "-")
        except Exception as exc:  # noqa: BLE001 - e.g. redis ConnectionError; limits names no common base class
            logger.error("Anfragelimit nicht prüfbar, Anfrage zugelassen: %s", exc)
            return None


async def _json(send: Send, status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    headers = [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": payload})


def install_security(app: FastAPI, settings: Settings) -> None:
    """Order matters: middleware added last runs first. CORS is outermost, so 403/429 answers to an allowed widget
    origin still carry CORS headers and the widget can show the German message."""
    origins = [origin.rstrip("/") for origin in settings.allowed_origins]
    limits = RateLimits(settings)
    app.state.rate_limiter = limits
    app.add_middleware(SecurityMiddleware, allowed_origins=origins, limits=limits)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Content-Type", "Accept", "Last-Event-ID", "Authorization"],
        expose_headers=["Retry-After"],
        allow_credentials=False,
        max_age=600,
    )
