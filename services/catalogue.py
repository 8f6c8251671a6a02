"""The EKT phases as the index holds them: definition, and how many documents and chunks carry each phase."""

from __future__ import annotations

from dataclasses import dataclass

from core.store import ChunkStore, StoreError
from core.vocabulary import PHASE_KEYS
from ingest.registry import Registry
from retriever.lexical import LexicalIndex
from retriever.phases import load_definitions


@dataclass
class PhaseSummary:
    phase: str  # E | K | T | übergreifend
    label: str
    summary: str  # one German line (prompts/phases)
    definition: str
    sources: int  # documents whose primary phase this is
    chunks: int  # chunks whose primary phase this is


@dataclass
class PhaseOverview:
    phases: list[PhaseSummary]
    sources_total: int
    chunks_total: int
    untagged_sources: int  # ingested before phases were tagged
    untagged_chunks: int


class PhaseCatalogue:
    def __init__(self, store: ChunkStore, registry: Registry, lexical: LexicalIndex) -> None:
        self.store = store
        self.registry = registry
        self.lexical = lexical

    def phase_overview(self) -> PhaseOverview:
        """The EKT phases with their definitions and how many documents and chunks carry each."""
        definitions = load_definitions()
        records = self.registry.ingested()
        chunks, chunks_total = self.chunk_counts()
        sources = {phase: sum(1 for record in records if record.phase == phase) for phase in PHASE_KEYS}
        return PhaseOverview(
            phases=[
                PhaseSummary(
                    phase=phase, label=definitions[phase].label, summary=definitions[phase].summary,
                    definition=definitions[phase].definition, sources=sources[phase], chunks=chunks[phase],
                )
                for phase in PHASE_KEYS
            ],
            sources_total=len(records),
            chunks_total=chunks_total,
            untagged_sources=len(records) - sum(sources.values()),
            untagged_chunks=max(0, chunks_total - sum(chunks.values())),
        )

    def chunk_counts(self) -> tuple[dict[str, int], int]:
        """Chunks per phase and in total. The lexical index keeps every chunk's phase for the search filters, so it
        counts them in memory when it is in step with the store; otherwise (not yet synced) Chroma is asked, one
        ids-only metadata query per phase. At 100k chunks: 9 ms (most of it Chroma's count) against 0.6 s
        (bench/scale.py)."""
        try:
            total = self.store.count()
            if self.lexical.is_current(self.store, count=total):
                counts = self.lexical.counts("phase")
                return {phase: counts.get(phase, 0) for phase in PHASE_KEYS}, total
            return {phase: self.store.count_where({"phase": phase}) for phase in PHASE_KEYS}, total
        except StoreError:
            raise
        except Exception as exc:  # Chroma client errors (server gone): the same German message as elsewhere
            raise StoreError(f"Chroma ist nicht erreichbar: {exc}") from exc
