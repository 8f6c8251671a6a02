"""What an operator sees of each request: the X-Request-ID, Prometheus request metrics and one JSON log line.

Pure ASGI middleware (no BaseHTTPMiddleware), so streamed answers pass through untouched; the duration is measured
until the last body byte. The log line (logger `stadtretter.access`) holds request id, method, route template,
status, duration and the answer stages' timings (core.metrics.stage); never headers (keys, cookies), never the
question unless `log_questions` is set.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import sys
import time
import uuid
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import API_PREFIX
from core.metrics import HTTP_REQUESTS, HTTP_SECONDS, collect_stages
from core.settings import Settings

REQUEST_ID_HEADER = "X-Request-ID"
# Accepted from clients as is (a proxy's id); anything else is replaced, so a log line cannot be forged or bloated.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# Only the question field of these routes is logged with log_questions; bodies are read up to this size.
_QUESTION_FIELDS = {f"{API_PREFIX}/ask": "question", f"{API_PREFIX}/ask/stream": "question",
                    f"{API_PREFIX}/search": "query"}
_MAX_LOGGED_BODY = 16_384
UNMATCHED_ROUTE = "(unmatched)"  # one label for every unknown path: scanners must not grow the metrics

METRICS_REFUSED = "Zugriff auf die Metriken verweigert: gültiges Metrik-Token als Bearer-Token erforderlich."
METRICS_DISABLED = "Die Metriken sind nicht freigegeben (STADTRETTER_METRICS_TOKEN ist nicht gesetzt)."

access_log = logging.getLogger("stadtretter.access")


def request_id_of(request: Request) -> str:
    """The id the middleware gave this request ("-" outside it)."""
    return request.scope.get("state", {}).get("request_id", "-")


def _route_template(scope: Scope, status: int) -> str:
    """The matched route's template ("/v1/sources/{source_id}"): the path with each path parameter's value replaced
    by its name (FastAPI's route objects do not carry the prefix of the router they were included with). Plain
    Starlette routes and mounts (/openapi.json, /static) set only an endpoint; their 404s count as unmatched."""
    if scope.get("route") is None and ("endpoint" not in scope or status == 404):
        return UNMATCHED_ROUTE
    path = scope["path"]
    for name, value in (scope.get("path_params") or {}).items():
        head, sep, tail = path.rpartition(f"/{value}")
        if sep and (not tail or tail.startswith("/")):
            path = f"{head}/{{{name}}}{tail}"
    return path


def _question(path: str, body: bytes) -> str | None:
    field = _QUESTION_FIELDS.get(path)
    if field is None or not body:
        return None
    try:
        value = json.loads(body).get(field)
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, log_questions: bool = False) -> None:
        self.app = app
        self.log_questions = log_questions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(REQUEST_ID_HEADER)
        request_id = given if given and _VALID_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500  # unless a response starts: an exception escaped
        body = bytearray()
        started = time.perf_counter()

        async def receive_body() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) < _MAX_LOGGED_BODY:
                body.extend(message.get("body", b"")[: _MAX_LOGGED_BODY - len(body)])
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", request_id.encode())]}
            await send(message)

        with collect_stages() as stages:
            try:
                await self.app(scope, receive_body if self.log_questions else receive, send_with_id)
            finally:
                seconds = time.perf_counter() - started
                method, route = scope["method"], _route_template(scope, status)
                HTTP_REQUESTS.labels(method, route, str(status)).inc()
                HTTP_SECONDS.labels(method, route).observe(seconds)
                line: dict[str, Any] = {
                    "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                    "request_id": request_id, "method": method, "route": route, "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                    "stages_ms": {name: round(ms, 1) for name, ms in stages.items()},
                }
                if self.log_questions:
                    question = _question(scope["path"], bytes(body))
                    if question is not None:
                        line["question"] = question
                access_log.info(json.dumps(line, ensure_ascii=False))


def _configure_access_log() -> None:
    """The JSON lines go to stderr as they are (no prefix), once per process."""
    if not access_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access_log.addHandler(handler)
        access_log.setLevel(logging.INFO)
        access_log.propagate = False


def install_observability(app: FastAPI, settings: Settings) -> None:
    """Add last, so it runs first: the id and the timing cover the security middleware's 403/429 too."""
    _configure_access_log()
    app.add_middleware(ObservabilityMiddleware, log_questions=settings.log_questions)


_bearer = HTTPBearer(auto_error=False, description="Metrik-Token (STADTRETTER_METRICS_TOKEN)")


def require_metrics_access(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """GET /metrics only with the configured bearer token (compared in constant time)."""
    expected = request.app.state.services.settings.metrics_token
    if expected is None:
        raise HTTPException(401, METRICS_DISABLED, headers={"WWW-Authenticate": "Bearer"})
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise HTTPException(401, METRICS_REFUSED, headers={"WWW-Authenticate": "Bearer"})


MetricsAccess = Annotated[None, Depends(require_metrics_access)]
