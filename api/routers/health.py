"""Operations: /healthz (alive, with index figures), /readyz (may take traffic) and /metrics (Prometheus)."""

from dataclasses import asdict

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from api.observability import MetricsAccess
from api.schemas import HealthResponse, ReadinessResponse
from core import metrics

router = APIRouter(tags=["Betrieb"])


@router.get("/healthz", response_model=HealthResponse, summary="Betriebsbereitschaft")
def healthz(services: ServicesDep) -> JSONResponse:
    status = services.status()
    health = HealthResponse(status="ok" if status.ready else "degraded", **asdict(status))
    return JSONResponse(health.model_dump(), status_code=200 if status.ready else 503)


@router.get(
    "/readyz", response_model=ReadinessResponse, summary="Bereit für Anfragen?",
    description="Store erreichbar, Modell geladen, Datenordner beschreibbar, Stichwortindex passt zum Store; "
    "jede Prüfung mit deutscher Erläuterung. 503, solange eine Prüfung fehlschlägt.",
    responses={503: {"model": ReadinessResponse, "description": "Nicht bereit"}},
)
def readyz(services: ServicesDep) -> JSONResponse:
    checks = services.readiness()
    ready = all(check.ok for check in checks)
    body = ReadinessResponse(status="ready" if ready else "not_ready", checks=[asdict(check) for check in checks])
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get(
    "/metrics", summary="Metriken (Prometheus)", response_class=Response,
    description="Prometheus-Textformat. Nur mit dem Metrik-Token als Bearer-Token (STADTRETTER_METRICS_TOKEN) "
    "oder für Administrator*innen.",
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
               401: {"description": "Kein oder falsches Metrik-Token, nicht angemeldet"},
               403: {"description": "Angemeldet, aber nicht als Administrator*in"}},
)
def prometheus_metrics(services: ServicesDep, _: MetricsAccess) -> Response:
    services.observe_index()
    services.observe_jobs()
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
