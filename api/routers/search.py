from fastapi import APIRouter

from api.deps import ServicesDep, store_unavailable
from api.schemas import SearchRequest, SearchResponse, SearchResult, SourceInfo
from retriever.answer import locator_for
from retriever.models import SearchHit
from core.store import StoreError

router = APIRouter(prefix="/v1", tags=["Suche"])


def source_info(hit: SearchHit) -> SourceInfo:
    meta = hit.metadata
    return SourceInfo(
        source_id=str(meta.get("source_id", "")),
        title=str(meta.get("title", "")),
        type=str(meta.get("type", "")),
        url=meta.get("url"),
        date=meta.get("date"),
        locator=locator_for(meta),
        page=meta.get("page"),
        start=meta.get("start"),
        end=meta.get("end"),
        section=meta.get("section"),
        phase=meta.get("phase"),
        phase_scores={p: float(meta[f"phase_{p}"]) for p in ("E", "K", "T") if f"phase_{p}" in meta},
    )


@router.post("/search", response_model=SearchResponse, summary="Abschnitte suchen")
def search(body: SearchRequest, services: ServicesDep) -> SearchResponse:
    mode = body.mode or services.settings.search_mode
    try:
        hits = services.search.search(body.query, k=body.k, filters=body.filters.to_search() if body.filters else None, mode=mode)
        if body.rerank:
            hits = services.answerer.rerank(body.query, hits)
    except StoreError as exc:
        raise store_unavailable(exc) from exc
    results = [SearchResult(chunk_id=h.chunk_id, text=h.text, score=round(h.score, 4), source=source_info(h)) for h in hits]
    return SearchResponse(query=body.query, mode=mode, results=results)
