"""GET /v1/phases: the EKT phases (definitions from prompts/phases) and how many sources and chunks carry each."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from api.auth import require_scope
from api.deps import ServicesDep

router = APIRouter(tags=["Phasen"], dependencies=[Depends(require_scope("search"))])


class PhaseInfo(BaseModel):
    phase: str = Field(description="E | K | T | übergreifend")
    label: str = Field(description="deutsche Bezeichnung, z. B. „Konzeption“")
    summary: str = Field(description="eine Zeile: worum es in der Phase geht")
    definition: str = Field(description="Definition der Phase")
    sources: int = Field(description="Dokumente, deren Hauptphase diese ist")
    chunks: int = Field(description="Abschnitte, deren Hauptphase diese ist")


class PhasesResponse(BaseModel):
    phases: list[PhaseInfo]
    sources_total: int
    chunks_total: int
    untagged_sources: int = Field(description="Dokumente ohne Phase (vor der Phasenzuordnung eingelesen)")
    untagged_chunks: int = Field(description="Abschnitte ohne Phase (vor der Phasenzuordnung eingelesen)")


@router.get("/phases", response_model=PhasesResponse, summary="EKT-Phasen: Definitionen und Umfang")
def phases(services: ServicesDep) -> PhasesResponse:
    """Die drei Phasen der EKT-Methode (und „phasenübergreifend“) mit Definition und der Zahl der Dokumente und
    Abschnitte je Phase."""
    return PhasesResponse(**asdict(services.catalogue.phase_overview()))
