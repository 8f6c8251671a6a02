"""The question log for trainers: entries with filters, unanswered questions and those answered only with a caution
grouped by meaning, 👎-rated answers, most-asked topics per phase and month, CSV export."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, time, timedelta, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.auth import AUTH_RESPONSES, TrainerDep
from api.deps import ServicesDep
from services.question_log import to_csv

router = APIRouter(prefix="/questions", tags=["Werkstatt"], responses=AUTH_RESPONSES)

SinceQuery = Annotated[date | None, Query(description="ab diesem Tag (JJJJ-MM-TT)")]
UntilQuery = Annotated[date | None, Query(description="bis einschließlich diesem Tag")]
PhaseQuery = Annotated[Literal["E", "K", "T", "übergreifend"] | None, Query(description="Phase der Antwort")]
UncertainQuery = Annotated[bool | None, Query(
    description="nur mit Vorbehalt beantwortete (true: mit dem Hinweis, die zitierte Stelle zu prüfen) oder ohne "
                "Vorbehalt (false; dazu zählen auch unbeantwortete)")]


def _start(day: date | None) -> datetime | None:
    return datetime.combine(day, time.min, timezone.utc) if day else None


def _end(day: date | None) -> datetime | None:
    return datetime.combine(day + timedelta(days=1), time.min, timezone.utc) if day else None


def _filters(abstained: bool | None, phase: str | None, since: date | None, until: date | None,
             q: str | None, uncertain: bool | None = None) -> dict[str, Any]:
    return {"abstained": abstained, "phase": phase, "since": _start(since), "until": _end(until), "text": q,
            "uncertain": uncertain}


@router.get("", summary="Fragenprotokoll (neueste zuerst)")
def list_questions(
    principal: TrainerDep,
    services: ServicesDep,
    since: SinceQuery = None,
    until: UntilQuery = None,
    phase: PhaseQuery = None,
    abstained: Annotated[bool | None, Query(description="nur unbeantwortete (true) oder beantwortete (false)")] = None,
    uncertain: UncertainQuery = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in der Frage")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> dict[str, Any]:
    entries = services.question_log.entries(**_filters(abstained, phase, since, until, q, uncertain), limit=limit)
    return {"questions": [asdict(entry) for entry in entries], "retention_days": services.settings.question_log_days,
            "logging": services.settings.question_log}


@router.get("/export.csv", summary="Fragenprotokoll als CSV", response_class=Response)
def export_questions(
    principal: TrainerDep,
    services: ServicesDep,
    since: SinceQuery = None,
    until: UntilQuery = None,
    phase: PhaseQuery = None,
    abstained: Annotated[bool | None, Query()] = None,
    uncertain: UncertainQuery = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    entries = services.question_log.entries(**_filters(abstained, phase, since, until, q, uncertain))
    return Response("\ufeff" + to_csv(entries), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="fragenprotokoll.csv"', "Cache-Control": "no-store",
    })


@router.get("/unanswered", summary="Unbeantwortete Fragen, nach Bedeutung gruppiert")
def unanswered_groups(principal: TrainerDep, services: ServicesDep, since: SinceQuery = None,
                      until: UntilQuery = None) -> dict[str, Any]:
    groups = services.question_report.unanswered(_start(since), _end(until))
    return {"groups": [asdict(group) for group in groups]}


@router.get("/uncertain", summary="Nur mit Vorbehalt beantwortete Fragen, nach Bedeutung gruppiert")
def uncertain_groups(principal: TrainerDep, services: ServicesDep, since: SinceQuery = None,
                     until: UntilQuery = None) -> dict[str, Any]:
    groups = services.question_report.uncertain(_start(since), _end(until))
    return {"groups": [asdict(group) for group in groups]}


@router.get("/topics", summary="Meistgefragte Themen je Monat und Phase")
def topics(principal: TrainerDep, services: ServicesDep, since: SinceQuery = None,
           until: UntilQuery = None) -> dict[str, Any]:
    return {"months": [asdict(cell) for cell in services.question_report.topics(_start(since), _end(until))]}


@router.get("/downvoted", summary="Mit 👎 bewertete Antworten und ihre Kommentare")
def downvoted(principal: TrainerDep, services: ServicesDep,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    return {"feedback": [asdict(entry) for entry in services.question_report.downvoted(limit)]}
