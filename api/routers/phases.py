"""GET /v1/phases: the EKT phases (definitions from prompts/phases) and how many sources and chunks carry each."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import ServicesDep, store_unavailable
from retriever.phases import LABELS, load_definitions
from services.container import Services
from core.store import StoreError

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
        chunk_counts, chunks_total = _chunk_counts(services)
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


def _chunk_counts(services: Services) -> tuple[dict[str, int], int]:
    """Chunks per phase. The lexical index keeps every chunk's phase for the search filters, so it counts them in
    memory when it is in step with the store; otherwise (not yet synced) Chroma is asked, one ids-only metadata
    query per phase. At 100k chunks: 9 ms (most of it Chroma's count) against 0.6 s (bench/scale.py)."""
    store = services.store
    total = store.count()
    lexical = services.lexical
    if lexical.is_current(store, count=total):
        counts = lexical.counts("phase")
        return {phase: counts.get(phase, 0) for phase in LABELS}, total
    return {phase: len(store.collection.get(where={"phase": phase}, include=[])["ids"]) for phase in LABELS}, total
