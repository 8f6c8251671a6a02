from fastapi import APIRouter, Depends

from api.auth import require_scope
from api.deps import ServicesDep
from api.schemas import SourcesResponse, SourceSummary

router = APIRouter(tags=["Quellen"], dependencies=[Depends(require_scope("search"))])


@router.get("/sources", response_model=SourcesResponse, summary="Alle eingelesenen Dokumente")
def sources(services: ServicesDep) -> SourcesResponse:
    return SourcesResponse(
        sources=[
            SourceSummary(
                source_id=r.source_id, title=r.title, type=r.type, url=r.url, date=r.date, author=r.author,
                chunk_count=r.chunk_count, phase=r.phase, phase_scores=r.phase_scores,
            )
            for r in services.registry.ingested()
        ]
    )
