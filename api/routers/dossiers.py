"""Material dossiers for trainers: JSON, or an export (`?format=md|docx|pdf`) as a download."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, field_validator

from api.auth import AUTH_RESPONSES, TrainerDep
from api.deps import ServicesDep
from core.vocabulary import PHASES, Phase, SourceType
from services.dossier import Dossier, DossierRequest
from services.dossier_export import FORMATS, ExportUnavailable, export, file_name

router = APIRouter(tags=["Werkstatt"], responses=AUTH_RESPONSES)


class DossierIn(BaseModel):
    topic: str = Field(min_length=2, max_length=200, description="Thema, z. B. „Passantenbefragung“")
    phases: list[Phase] = Field(default_factory=lambda: list(PHASES), min_length=1, description="EKT-Phasen")
    types: list[SourceType] = Field(default_factory=list, description="nur diese Quellentypen (leer: alle)")
    date_from: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    date_to: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    size: int = Field(default=5, ge=1, le=20, description="Quellen je Phase")

    @field_validator("topic")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if len(value.strip()) < 2:
            raise ValueError("Das Thema muss mindestens zwei Zeichen haben")
        return value.strip()

    def to_request(self) -> DossierRequest:
        phases = [phase for phase in PHASES if phase in self.phases]  # E, K, T order, each once
        return DossierRequest(self.topic, phases, list(self.types), self.date_from, self.date_to, self.size)


@router.post(
    "/dossiers",
    response_model=Dossier,
    summary="Materialmappe zu einem Thema, je EKT-Phase (JSON oder Export)",
    responses={200: {"content": {media: {} for media, _ in FORMATS.values()}}},
)
def build_dossier(
    principal: TrainerDep,
    body: DossierIn,
    request: Request,
    services: ServicesDep,
    format: Annotated[Literal["json", "md", "docx", "pdf"], Query(description="json, md, docx oder pdf")] = "json",
) -> Dossier | Response:
    dossier = services.dossiers.build(body.to_request(), base_url=str(request.base_url).rstrip("/"))
    if format == "json":
        return dossier
    media_type, extension = FORMATS[format]
    try:
        content = export(dossier, format)
    except ExportUnavailable as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc
    return Response(content, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{file_name(dossier, extension)}"',
        "Cache-Control": "no-store",
    })
