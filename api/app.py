"""FastAPI app factory."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import API_PREFIX
from api.auth import SessionSigner, check_production_ready
from api.errors import install_error_handlers
from api.observability import install_observability
from api.routers import (
    admin_documents, admin_keys, ask, auth, coverage, dossiers, feedback, health, phases, questions, search, sources,
    verwaltung, vocabulary, web, werkstatt,
)
from api.security import install_security
from core import __version__
from core.embeddings import EmbeddingUnavailable
from core.settings import Settings, get_settings
from core.store import StoreError
from services.container import Services

logger = logging.getLogger("stadtretter")

DESCRIPTION = """
Wissens-Chat der Stadtretter-Akademie: Antworten mit Quellenangaben aus Artikeln, WebTalks und Kursmaterial,
jeweils einer Phase der EKT-Methode (Evaluation, Konzeption, Transformation) zugeordnet.
"""


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    services = services or Services(settings or get_settings())
    services.database  # noqa: B018 - checks the schema at start: migrates SQLite, refuses an outdated other database
    check_production_ready(services)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        # Load the model and open the store before serving, so the first question is not slow.
        try:
            services.embeddings.embed_queries(["Aufwärmen"])
            services.search  # noqa: B018 - opens store and lexical index
        except (StoreError, EmbeddingUnavailable) as exc:
            # Serve anyway: /healthz reports the problem and every request gets the German message (503).
            logger.error("Start unvollständig: %s", exc)
        services.start_follower()  # the lexical index at the newest published version (replicas), then followed
        services.start_worker()  # uploads, imports and reindex run in the background, never in the request
        try:
            yield
        finally:
            services.stop_worker()
            services.stop_follower()

    app = FastAPI(title="Stadtretter Wissens-Chat", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.services = services
    app.state.session_signer = SessionSigner(services.settings)
    for module in (ask, search, sources, phases, vocabulary, feedback, auth, admin_keys, admin_documents, dossiers,
                   questions, coverage):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(health.router)
    app.include_router(web.router)
    app.include_router(auth.pages)
    app.include_router(werkstatt.router)
    app.include_router(verwaltung.router)
    install_error_handlers(app)
    install_security(app, settings or services.settings)
    install_observability(app, settings or services.settings)
    return app
