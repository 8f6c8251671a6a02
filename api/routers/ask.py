from fastapi import APIRouter

from api.deps import ServicesDep, store_unavailable
from api.schemas import AskRequest, AskResponse
from stadtretter.store import StoreError

router = APIRouter(prefix="/v1", tags=["Fragen"])


@router.post("/ask", response_model=AskResponse, summary="Frage stellen, Antwort mit Quellen")
def ask(body: AskRequest, services: ServicesDep) -> AskResponse:
    try:
        answer = services.answerer.run(
            body.question, filters=body.filters.to_search() if body.filters else None, mode=body.mode
        )
    except StoreError as exc:
        raise store_unavailable(exc) from exc
    return AskResponse(**answer.to_dict())
