from fastapi import APIRouter, Depends

from api.auth import require_scope
from api.deps import ServicesDep
from api.schemas import SearchRequest, SearchResponse, SearchResult
from services.presenters import source_info

router = APIRouter(tags=["Suche"], dependencies=[Depends(require_scope("search"))])


@router.post("/search", response_model=SearchResponse, summary="Abschnitte suchen")
def search(body: SearchRequest, services: ServicesDep) -> SearchResponse:
    mode = body.mode or services.settings.search_mode
    hits = services.search.search(body.query, k=body.k, filters=body.filters.to_search() if body.filters else None, mode=mode)
    if body.rerank:
        hits = services.answerer.rerank(body.query, hits)
    results = [SearchResult(chunk_id=h.chunk_id, text=h.text, score=round(h.score, 4), source=source_info(h)) for h in hits]
    return SearchResponse(query=body.query, mode=mode, results=results)
