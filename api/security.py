"""Browser-facing protection of the API: CORS for the embeddable widget, a same-origin check on writes and a per-client
rate limit on questions.

- CORS: only origins listed in settings.allowed_origins get CORS headers (Starlette's CORSMiddleware). A page on any
  other site may load the public widget script, but the browser refuses its API calls.
- Cross-origin writes: a POST whose Origin header is neither allowed nor the app's own origin is answered with 403
  before it reaches a router. This also covers "simple" requests (e.g. form posts) that skip the CORS preflight.
- Rate limit: an in-memory sliding window per client (IP address + Origin) on `/v1/ask*`; over the limit the answer
  is 429 with a German message and a Retry-After header. In-memory means per process: with several workers every
  worker counts on its own (documented; good enough for one Akademie instance).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api import API_PREFIX
from core.settings import Settings

RATE_LIMIT_MESSAGE = "Zu viele Anfragen – bitte warten Sie einen Moment und versuchen Sie es dann erneut."
FORBIDDEN_ORIGIN_MESSAGE = (
    "Anfragen von dieser Website sind für den Wissens-Chat nicht freigegeben. "
    "Bitte wenden Sie sich an die Stadtretter-Akademie, wenn der Chat hier eingebunden werden soll."
)
RATE_LIMITED_PREFIX = f"{API_PREFIX}/ask"
WINDOW_SECONDS = 60.0
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


class SlidingWindowLimiter:
    """At most `limit` hits per key within the last `window` seconds."""

    def __init__(self, limit: int, window: float = WINDOW_SECONDS, clock=time.monotonic) -> None:  # noqa: ANN001
        self.limit = limit
        self.window = window
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._calls = 0

    def hit(self, key: str) -> float | None:
        """Count a hit; None when allowed, else the seconds until the next hit would be allowed."""
        now = self.clock()
        with self._lock:
            self._calls += 1
            if self._calls % 1000 == 0:
                self._forget_idle(now)
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(hits[0] + self.window - now, 0.0)
            hits.append(now)
            return None

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - self.window]:
            del self._hits[key]


class SecurityMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware), so streamed answers pass through untouched."""

    def __init__(self, app: ASGIApp, allowed_origins: list[str], limiter: SlidingWindowLimiter) -> None:
        self.app = app
        self.allowed = [origin.rstrip("/") for origin in allowed_origins]
        self.limiter = limiter

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
        if method == "POST" and scope["path"].startswith(RATE_LIMITED_PREFIX):
            client = scope.get("client")
            key = f"{client[0] if client else '?'}|{origin or '-'}"
            retry_after = self.limiter.hit(key)
            if retry_after is not None:
                seconds = max(1, math.ceil(retry_after))
                await _json(send, 429, {"detail": RATE_LIMIT_MESSAGE}, [(b"retry-after", str(seconds).encode())])
                return
        await self.app(scope, receive, send)


async def _json(send: Send, status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    headers = [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": payload})


def install_security(app: FastAPI, settings: Settings) -> None:
    """Order matters: middleware added last runs first. CORS is outermost, so 403/429 answers to an allowed widget
    origin still carry CORS headers and the widget can show the German message."""
    origins = [origin.rstrip("/") for origin in settings.allowed_origins]
    limiter = SlidingWindowLimiter(settings.rate_limit_per_minute)
    app.state.rate_limiter = limiter
    app.add_middleware(SecurityMiddleware, allowed_origins=origins, limiter=limiter)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Content-Type", "Accept", "Last-Event-ID"],
        expose_headers=["Retry-After"],
        allow_credentials=False,
        max_age=600,
    )
