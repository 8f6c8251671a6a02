from dataclasses import asdict

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from api.schemas import HealthResponse

router = APIRouter(tags=["Betrieb"])


@router.get("/healthz", response_model=HealthResponse, summary="Betriebsbereitschaft")
def healthz(services: ServicesDep) -> JSONResponse:
    status = services.status()
    health = HealthResponse(status="ok" if status.ready else "degraded", **asdict(status))
    return JSONResponse(health.model_dump(), status_code=200 if status.ready else 503)
