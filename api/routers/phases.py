"""GET /v1/phases: the EKT phases (definitions from prompts/phases) and how many sources and chunks carry each."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import ServicesDep, store_unavailable
from retriever.phases import LABELS, load_definitions
from stadtretter.store import StoreError

router = APIRouter(prefix="/v1", tags=["Phasen"])


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
    definitions = load_definitions()
    records = [record for record in services.registry.all() if record.status == "ok"]
    try:
        store = services.store
        # ids only, one metadata filter per phase: no documents, vectors or metadata are read
        chunk_counts = {phase: len(store.collection.get(where={"phase": phase}, include=[])["ids"]) for phase in LABELS}
        chunks_total = store.count()
    except StoreError as exc:
        raise store_unavailable(exc) from exc
    except Exception as exc:  # Chroma client errors (server gone): the same German 503 as elsewhere
        raise store_unavailable(StoreError(f"Chroma ist nicht erreichbar: {exc}")) from exc
    source_counts = {phase: sum(1 for record in records if record.phase == phase) for phase in LABELS}
    return PhasesResponse(
        phases=[
            PhaseInfo(
                phase=phase, label=definitions[phase].label, summary=definitions[phase].summary,
                definition=definitions[phase].definition, sources=source_counts[phase], chunks=chunk_counts[phase],
            )
            for phase in LABELS
        ],
        sources_total=len(records),
        chunks_total=chunks_total,
        untagged_sources=len(records) - sum(source_counts.values()),
        untagged_chunks=max(0, chunks_total - sum(chunk_counts.values())),
    )
