"""Feedback on answers (👍/👎 plus an optional comment): sent by participants, read by trainers."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import AskDep, TrainerDep
from api.deps import ServicesDep
from api.web_schemas import FeedbackItem, FeedbackList, FeedbackRequest, FeedbackSaved
from services.feedback import Feedback

router = APIRouter(tags=["Feedback"])


@router.post("/feedback", response_model=FeedbackSaved, status_code=201, summary="Feedback zu einer Antwort speichern")
def post_feedback(body: FeedbackRequest, services: ServicesDep, principal: AskDep) -> FeedbackSaved:
    saved = services.feedback.add(
        Feedback(
            question=body.question, answer=body.answer, rating=body.rating, comment=body.comment,
            conversation_id=body.conversation_id,
            citations=[citation.model_dump(exclude_none=True) for citation in body.citations],
        )
    )
    return FeedbackSaved(id=saved.id, created_at=saved.created_at)


@router.get("/feedback", response_model=FeedbackList, summary="Feedback für Trainer*innen (neueste zuerst)")
def list_feedback(
    principal: TrainerDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Höchstzahl der Einträge")] = 100,
    rating: Annotated[str | None, Query(pattern="^(up|down)$", description="nur 'up' oder nur 'down'")] = None,
) -> FeedbackList:
    entries, total = services.feedback.list(limit, rating)
    return FeedbackList(feedback=[FeedbackItem(**asdict(entry)) for entry in entries], total=total)
