from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from api.schemas import HealthResponse

router = APIRouter(tags=["Betrieb"])


@router.get("/healthz", response_model=HealthResponse, summary="Betriebsbereitschaft")
def healthz(services: ServicesDep) -> JSONResponse:
    model_loaded = "embeddings" in services.__dict__
    try:
        store = services.store
        reachable = store.heartbeat()
        chunks = store.count() if reachable else 0
        detail = None
    except Exception as exc:  # report, don't crash: this endpoint exists to say what is wrong
        reachable, chunks, detail = False, 0, str(exc)
    health = HealthResponse(
        status="ok" if reachable and model_loaded else "degraded",
        store_reachable=reachable,
        model_loaded=model_loaded,
        embedding_model=services.embeddings.model_name if model_loaded else None,
        chunks=chunks,
        sources=len(services.registry.all()),
        detail=detail,
    )
    return JSONResponse(health.model_dump(), status_code=200 if health.status == "ok" else 503)
