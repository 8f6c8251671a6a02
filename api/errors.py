"""One place that turns store, model and database failures into German 503 answers, for every router."""

from __future__ import annotations

import logging
import sqlite3

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from core.embeddings import EmbeddingUnavailable
from core.store import StoreError
from services.uploads import ContentError

logger = logging.getLogger("stadtretter.api")

DATABASE_UNAVAILABLE = "Die Datenbank des Wissens-Chats ist gerade nicht erreichbar"


def _unavailable(message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=503)


async def _store_error(request: Request, exc: Exception) -> JSONResponse:
    # StoreError (and EmbeddingMismatch, FeedbackUnavailable) and EmbeddingUnavailable carry German messages.
    logger.error("%s %s: %s", request.method, request.url.path, exc)
    return _unavailable(str(exc))


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    logger.error("%s %s: SQLite: %s", request.method, request.url.path, exc)
    return _unavailable(f"{DATABASE_UNAVAILABLE}: {exc}")


async def _content_error(request: Request, exc: Exception) -> JSONResponse:
    # Refused input or a missing document (services/uploads.py ContentError): German, names the file or field.
    return JSONResponse({"detail": str(exc)}, status_code=getattr(exc, "status_code", 422))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ContentError, _content_error)
    app.add_exception_handler(StoreError, _store_error)
    app.add_exception_handler(EmbeddingUnavailable, _store_error)
    app.add_exception_handler(sqlite3.Error, _database_error)
