"""One place that turns failures into German JSON answers, for every router: store, model and database failures
become 503, anything unexpected a 500 without a traceback. Every error body carries the request id (also in the
X-Request-ID header), so a participant's report can be found in the log."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException

from api.observability import REQUEST_ID_HEADER, request_id_of
from core.embeddings import EmbeddingUnavailable
from core.store import StoreError
from services.uploads import ContentError

logger = logging.getLogger("stadtretter.api")

DATABASE_UNAVAILABLE = "Die Datenbank des Wissens-Chats ist gerade nicht erreichbar"
INTERNAL_ERROR = (
    "Interner Fehler des Wissens-Chats. Bitte versuchen Sie es später erneut; bei einer Rückfrage hilft die "
    "Anfrage-Nummer {request_id}."
)


def error_response(
    request: Request, status: int, detail: object, headers: dict[str, str] | None = None
) -> JSONResponse:
    request_id = request_id_of(request)
    return JSONResponse(
        {"detail": detail, "request_id": request_id}, status_code=status,
        headers={**(headers or {}), REQUEST_ID_HEADER: request_id},
    )


async def _store_error(request: Request, exc: Exception) -> JSONResponse:
    # StoreError (and EmbeddingMismatch, FeedbackUnavailable) and EmbeddingUnavailable carry German messages.
    logger.error("%s %s [%s]: %s", request.method, request.url.path, request_id_of(request), exc)
    return error_response(request, 503, str(exc))


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    # the driver's own message, without SQLAlchemy's statement and documentation link
    reason = getattr(exc, "orig", None) or exc
    logger.error("%s %s [%s]: Datenbank: %s", request.method, request.url.path, request_id_of(request), exc)
    return error_response(request, 503, f"{DATABASE_UNAVAILABLE}: {reason}")


# Starlette's own English details for unknown paths and methods.
_GERMAN_DETAIL = {"Not Found": "Nicht gefunden", "Method Not Allowed": "Diese Methode ist hier nicht erlaubt"}


# FastAPI answers a body it cannot decode with 400 and this English text; it is invalid input like any other: 422.
_UNPARSABLE_BODY = "There was an error parsing the body"
_INVALID_MULTIPART = (
    "Der multipart-Inhalt der Anfrage ist ungültig (Feld „files“: Dateien als multipart/form-data senden)"
)
_INVALID_JSON = [
    {"type": "json_invalid", "loc": ["body"], "msg": "Der Inhalt der Anfrage ist kein gültiges JSON (UTF-8)"}
]


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400 and exc.detail == _UNPARSABLE_BODY:
        return error_response(request, 422, _INVALID_JSON)
    if exc.status_code == 400 and request.headers.get("content-type", "").startswith("multipart/"):
        return error_response(request, 422, _INVALID_MULTIPART)  # Starlette's English multipart parse errors
    detail = _GERMAN_DETAIL.get(exc.detail, exc.detail) if isinstance(exc.detail, str) else exc.detail
    return error_response(request, exc.status_code, detail, exc.headers)


# Pydantic's English messages for the common cases, in German and naming the field; other messages (our own
# validators) are German already. The shape (type, loc, msg, …) stays that of any FastAPI 422.
_GERMAN_VALIDATION = {
    "missing": "Feld „{field}“ fehlt",
    "string_too_short": "Feld „{field}“ ist zu kurz (mindestens {min_length} Zeichen)",
    "string_too_long": "Feld „{field}“ ist zu lang (höchstens {max_length} Zeichen)",
    "too_short": "Feld „{field}“ braucht mindestens {min_length} Einträge",
    "too_long": "Feld „{field}“ hat zu viele Einträge (höchstens {max_length})",
    "literal_error": "Feld „{field}“: erlaubt sind {expected}",
    "enum": "Feld „{field}“: erlaubt sind {expected}",
    "string_pattern_mismatch": "Feld „{field}“ hat nicht die erwartete Form",
    "int_parsing": "Feld „{field}“ muss eine ganze Zahl sein",
    "greater_than_equal": "Feld „{field}“ muss mindestens {ge} sein",
    "less_than_equal": "Feld „{field}“ darf höchstens {le} sein",
    "string_type": "Feld „{field}“ muss Text sein",
    "bool_parsing": "Feld „{field}“ muss true oder false sein",
}


def german_validation_errors(errors: list[dict]) -> list[dict]:
    translated = []
    for error in errors:
        names = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path", "header", "form")
                 and not isinstance(part, int)]  # list positions: the field is what a person recognises
        template = _GERMAN_VALIDATION.get(error.get("type", ""))
        if template and names:
            try:
                error = {**error, "msg": template.format(field=".".join(names), **(error.get("ctx") or {}))}
            except (KeyError, IndexError):
                pass  # a context value the template does not know: keep pydantic's message
        translated.append(error)
    return translated


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(request, 422, german_validation_errors(jsonable_encoder(exc.errors())))


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("%s %s [%s]: unerwarteter Fehler", request.method, request.url.path, request_id_of(request))
    return error_response(request, 500, INTERNAL_ERROR.format(request_id=request_id_of(request)))


async def _content_error(request: Request, exc: Exception) -> JSONResponse:
    # Refused input or a missing document (services/uploads.py ContentError): German, names the file or field.
    return error_response(request, getattr(exc, "status_code", 422), str(exc))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ContentError, _content_error)
    app.add_exception_handler(StoreError, _store_error)
    app.add_exception_handler(EmbeddingUnavailable, _store_error)
    app.add_exception_handler(SQLAlchemyError, _database_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _internal_error)
