"""Search over the store: dense (Chroma kNN), lexical (BM25) or hybrid (fusion of both)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from retriever.lexical import LexicalIndex
from retriever.models import SearchFilters, SearchHit
from stadtretter.embeddings import StadtretterEmbeddings
from stadtretter.settings import SearchMode
from stadtretter.store import ChunkStore, StoredChunk


def chroma_where(filters: SearchFilters | None) -> dict[str, Any] | None:
    """Translate filters into a Chroma `where` clause."""
    if not filters or filters.is_empty():
        return None
    clauses: list[dict[str, Any]] = []
    if filters.types:
        clauses.append({"type": {"$in": list(filters.types)}})
    if filters.phases:
        clauses.append({"phase": {"$in": list(filters.phases)}})
    if filters.date_from:
        clauses.append({"date_int": {"$gte": int(filters.date_from.replace("-", ""))}})
    if filters.date_to:
        clauses.append({"date_int": {"$lte": int(filters.date_to.replace("-", ""))}})
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


@dataclass
class FusionParams:
    """Weighted fusion of min-max normalised scores; chosen by measurement (see README, bench/compare.py)."""

    dense_weight: float = 0.7
    lexical_weight: float = 0.3
    candidates: int = 40  # per list, before fusion


def _normalise(scores: dict[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    values = np.array(list(scores.values()), dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    span = high - low
    if span <= 1e-9:
        return {key: 1.0 for key in scores}
    return {key: (value - low) / span for key, value in scores.items()}


class SearchService:
    def __init__(
        self,
        embeddings: StadtretterEmbeddings,
        store: ChunkStore,
        lexical: LexicalIndex | None = None,
        default_mode: SearchMode = "hybrid",
        fusion: FusionParams | None = None,
    ) -> None:
        self.embeddings = embeddings
        self.store = store
        self.lexical = lexical
        self.default_mode = default_mode
        self.fusion = fusion or FusionParams()

    def search(
        self,
        query: str,
        k: int = 8,
        filters: SearchFilters | None = None,
        mode: SearchMode | None = None,
    ) -> list[SearchHit]:
        mode = mode or self.default_mode
        if mode != "dense" and self.lexical is None:
            mode = "dense"
        if mode == "dense":
            return [self._hit(chunk) for chunk in self._dense(query, k, filters)]
        if mode == "lexical":
            ranked = self.lexical.search(query, k, filters) if self.lexical else []
            return self._hits_for(ranked, {})
        return self._hybrid(query, k, filters)

    def _dense(self, query: str, k: int, filters: SearchFilters | None) -> list[StoredChunk]:
        vector = self.embeddings.embed_queries([query])[0]
        return self.store.query(vector, k, chroma_where(filters))

    def _hybrid(self, query: str, k: int, filters: SearchFilters | None) -> list[SearchHit]:
        n = max(self.fusion.candidates, k)
        dense = self._dense(query, n, filters)
        lexical = self.lexical.search(query, n, filters) if self.lexical else []
        dense_scores = _normalise({chunk.id: chunk.score for chunk in dense})
        lexical_scores = _normalise(dict(lexical))
        fused: dict[str, float] = {}
        for chunk_id, score in dense_scores.items():
            fused[chunk_id] = fused.get(chunk_id, 0.0) + self.fusion.dense_weight * score
        for chunk_id, score in lexical_scores.items():
            fused[chunk_id] = fused.get(chunk_id, 0.0) + self.fusion.lexical_weight * score
        ranked = sorted(fused.items(), key=lambda item: -item[1])[:k]
        known = {chunk.id: chunk for chunk in dense}
        return self._hits_for(ranked, known)

    def _hits_for(self, ranked: list[tuple[str, float]], known: dict[str, StoredChunk]) -> list[SearchHit]:
        missing = [chunk_id for chunk_id, _ in ranked if chunk_id not in known]
        for chunk in self.store.get(missing):
            known[chunk.id] = chunk
        hits = []
        for chunk_id, score in ranked:
            chunk = known.get(chunk_id)
            if chunk is not None:  # an id the lexical index knows but the store no longer has is skipped
                hits.append(SearchHit(chunk.id, chunk.text, float(score), chunk.metadata))
        return hits

    @staticmethod
    def _hit(chunk: StoredChunk) -> SearchHit:
        return SearchHit(chunk.id, chunk.text, chunk.score, chunk.metadata)
