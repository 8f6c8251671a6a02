"""Search over the store: dense (Chroma kNN), lexical (BM25) or hybrid (fusion of both).

Hybrid search, as measured in bench/compare.py on the gold set, XQuAD-de and GermanQuAD (bench/README.md):

1. The query is embedded once; Chroma returns the `candidates` nearest chunks (ids and distances only, which is
   several times cheaper than fetching texts), BM25 scores every chunk.
2. Each list's top `candidates` scores are normalised per query (`normalisation`) and combined with weights
   (`dense_weight`, `lexical_weight`); a chunk missing from one list gets 0 from it. RRF is available as
   `method="rrf"`.
3. Chunk scores become document-aware (`doc_weight`): each chunk gets a share of the best score of its document,
   so a document that matches well in several places moves up as a whole.
4. Near-duplicate chunks (same text ingested twice, overlapping chunks) are collapsed to the best one.
5. Texts and metadata are fetched for the final k chunks only.

Metadata filters (type, phase, date) do not use Chroma's `where` on the fast path (measured: tens of times slower
than an unfiltered kNN at 10k–100k chunks): the lexical index knows every chunk's filter fields, so Chroma is
asked for more neighbours than needed (by the filter's selectivity) and the result is filtered here. Only when
that does not yield enough matches (very selective filters) Chroma's `where` is used.

`expand(hits)` adds each hit's neighbouring chunks (same source, chunk_index ± 1) as context for answering; it is
not used for ranking.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from retriever.lexical import LexicalIndex
from retriever.models import SearchFilters, SearchHit
from core.metrics import stage
from core.embeddings import StadtretterEmbeddings
from core.vocabulary import SearchMode
from core.store import ChunkStore, StoredChunk


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
    """How hybrid search combines dense and lexical results; defaults chosen by measurement (bench/README.md)."""

    method: Literal["weighted", "rrf"] = "weighted"
    normalisation: Literal["minmax", "dbsf"] = "dbsf"
    dense_weight: float = 0.5
    lexical_weight: float = 0.2
    coverage_weight: float = 0.3  # IDF-weighted share of the query terms in the chunk (weighted fusion only)
    candidates: int = 40  # per list, before fusion
    rrf_k: int = 60
    doc_weight: float = 0.0  # share of the document's best chunk score added to each chunk
    dedup_overlap: float = 0.8  # a chunk whose word shingles lie this much inside a better hit's is dropped

    @classmethod
    def from_settings(cls, settings: Any) -> "FusionParams":
        params = cls()
        for name in ("method", "normalisation", "dense_weight", "lexical_weight", "coverage_weight", "candidates",
                     "rrf_k", "doc_weight", "dedup_overlap"):
            value = getattr(settings, f"fusion_{name}", None)
            if value is not None:
                setattr(params, name, value)
        return params


def _normalise(scores: dict[str, float], how: str = "minmax") -> dict[str, float]:
    """Per-query normalisation of one list's scores to about [0, 1]."""
    if not scores:
        return {}
    values = np.fromiter(scores.values(), dtype=np.float64, count=len(scores))
    if how == "dbsf":  # distribution-based: mean ± 3 standard deviations
        mean, std = float(values.mean()), float(values.std())
        low, high = mean - 3 * std, mean + 3 * std
    else:
        low, high = float(values.min()), float(values.max())
    span = high - low
    if span <= 1e-9:
        return {key: 1.0 for key in scores}
    return {key: (value - low) / span for key, value in scores.items()}


_SHINGLE_WORD = re.compile(r"\w+")


def _shingles(text: str, size: int = 5) -> set[int]:
    tokens = _SHINGLE_WORD.findall(text.lower())
    if len(tokens) < size:
        return {hash(" ".join(tokens))} if tokens else set()
    return {hash(" ".join(tokens[i : i + size])) for i in range(len(tokens) - size + 1)}


class SearchService:
    # Filtered dense search: ask Chroma for candidates / selectivity * OVERFETCH neighbours and filter them here,
    # unless that would exceed MAX_FETCH (then Chroma's own `where`).
    OVERFETCH = 1.5
    MAX_FETCH = 2000

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
        self.fusion = fusion or FusionParams.from_settings(getattr(store, "settings", None))

    # --- public -------------------------------------------------------------------------------------------
    def search(
        self,
        query: str,
        k: int = 8,
        filters: SearchFilters | None = None,
        mode: SearchMode | None = None,
        vector: np.ndarray | None = None,
    ) -> list[SearchHit]:
        """The k best chunks. `vector` is the query's embedding when the caller already has it (one request embeds
        its question once: search, sentence selection and phase tagging share it)."""
        return self._pinned()._search(query, k, filters, mode, vector)

    def _pinned(self) -> "SearchService":
        """This service over one build of the lexical index: a concurrent ingestion's reload cannot mix two builds'
        ids and scores within one search (rows of one build index the ids of the other: wrong chunks or a crash)."""
        if self.lexical is None:
            return self
        pinned = copy.copy(self)
        pinned.lexical = self.lexical.pinned()
        return pinned

    def _search(
        self, query: str, k: int, filters: SearchFilters | None, mode: SearchMode | None, vector: np.ndarray | None
    ) -> list[SearchHit]:
        mode = mode or self.default_mode
        if mode != "dense" and self.lexical is None:
            mode = "dense"
        if k <= 0:
            return []
        if mode == "lexical":
            assert self.lexical is not None
            with stage("lexical_search"):
                ranked = self.lexical.search(query, k, filters)
            return self._hits_for(ranked, {})
        vector = self.embeddings.embed_queries([query])[0] if vector is None else vector
        if mode == "dense":
            with stage("dense_search"):
                return self._dense_hits(vector, k, filters)
        return self._hybrid(query, k, filters, vector)

    def expand(self, hits: list[SearchHit], window: int = 1) -> list[SearchHit]:
        """The hits with their neighbouring chunks (same source, chunk_index ± 1..window) as answer context.

        Order: each hit's neighbours in document order around it ([previous, hit, next]); a chunk appears once
        (as a hit if it is one). Neighbours carry `metadata["neighbour_of"]` (the hit's chunk id) and the hit's
        score. Not used for ranking.
        """
        if not hits or window <= 0:
            return list(hits)
        return self._pinned()._expand(hits, window)

    def _expand(self, hits: list[SearchHit], window: int) -> list[SearchHit]:
        hit_ids = {hit.chunk_id for hit in hits}
        wanted: dict[str, list[str]] = {}
        for hit in hits:
            wanted[hit.chunk_id] = [cid for cid in self._neighbour_ids(hit, window) if cid not in hit_ids]
        fetch = sorted({cid for ids in wanted.values() for cid in ids})
        chunks = {chunk.id: chunk for chunk in self.store.get(fetch)}
        out: list[SearchHit] = []
        seen: set[str] = set()
        for hit in hits:
            index = int(hit.metadata.get("chunk_index", 0) or 0)
            group = [hit]
            for cid in wanted[hit.chunk_id]:
                chunk = chunks.get(cid)
                if chunk is not None and cid not in seen:
                    group.append(SearchHit(cid, chunk.text, hit.score, {**chunk.metadata, "neighbour_of": hit.chunk_id}))
            group.sort(key=lambda h: int(h.metadata.get("chunk_index", index) or 0))
            for item in group:
                if item.chunk_id not in seen:
                    seen.add(item.chunk_id)
                    out.append(item)
        return out

    # --- dense --------------------------------------------------------------------------------------------
    def _dense_hits(self, vector: np.ndarray, k: int, filters: SearchFilters | None) -> list[SearchHit]:
        if self.lexical is None and (not filters or filters.is_empty()):
            return [self._hit(chunk) for chunk in self.store.query(vector, k)]
        ranked = self._dense_candidates(vector, k, filters)
        return self._hits_for(ranked, {})

    def _indexed(self, ranked: list[tuple[str, float]]) -> list[tuple[str, float]]:
        """Only chunks the lexical index knows too. A running ingestion stores a document's chunks in Chroma first
        and syncs the lexical index at its end (a failed one never): until then they are not citable, so an answer
        never rests on a half-ingested document. (Chunks gone from the store are skipped by `_hits_for`.)"""
        lexical = self.lexical
        if lexical is None:
            return ranked
        return [(chunk_id, score) for chunk_id, score in ranked if lexical.row_of(chunk_id) is not None]

    def _dense_candidates(
        self, vector: np.ndarray, n: int, filters: SearchFilters | None, keep: np.ndarray | None = None
    ) -> list[tuple[str, float]]:
        """(id, cosine) of the n nearest chunks passing the filters, best first."""
        if not filters or filters.is_empty():
            ranked = self.store.query_ids(vector, n)
            indexed = self._indexed(ranked)
            if len(indexed) < len(ranked):  # an ingestion is running: look further for indexed neighbours
                indexed = self._indexed(self.store.query_ids(vector, 4 * n))
            return indexed[:n]
        lexical = self.lexical
        if keep is None and lexical is not None and lexical.ids:
            keep = lexical.mask(filters)
        if keep is not None and lexical is not None:
            passing = int(keep.sum())
            if passing == 0:
                return []
            total = len(keep)
            fetch = math.ceil(n * total / passing * self.OVERFETCH) + 10
            for _ in range(2):  # over-fetch; once more with 4x if the filter was unlucky
                if fetch > self.MAX_FETCH:
                    break
                asked = min(fetch, total)
                ranked = self.store.query_ids(vector, asked)
                rows = [lexical.row_of(cid) for cid, _ in ranked]
                matched = [(cid, score) for (cid, score), row in zip(ranked, rows) if row is not None and keep[row]]
                # enough matches, or the index had no more neighbours to give (all chunks, or HNSW exhausted)
                if len(matched) >= min(n, passing) or len(ranked) < asked or asked >= total:
                    return matched[:n]
                fetch *= 4
        return self._indexed(self.store.query_ids(vector, n, chroma_where(filters)))

    # --- hybrid -------------------------------------------------------------------------------------------
    def _hybrid(self, query: str, k: int, filters: SearchFilters | None, vector: np.ndarray) -> list[SearchHit]:
        lexical = self.lexical
        assert lexical is not None
        params = self.fusion
        n = max(params.candidates, k)
        use_coverage = params.method == "weighted" and params.coverage_weight > 0
        with stage("lexical_search"):
            keep = lexical.mask(filters)
            scored = lexical.score_query(query, keep, coverage=use_coverage)
            bm25 = lexical.top(scored[0], n) if scored is not None else []
        with stage("dense_search"):
            dense = self._dense_candidates(vector, n, filters, keep)
        with stage("fusion"):
            ranked = self._ranked(dense, bm25, scored if use_coverage else None)
        return self._final(ranked, k)

    def _ranked(
        self, dense: list[tuple[str, float]], bm25: list[tuple[str, float]],
        scored: tuple[np.ndarray, np.ndarray | None] | None,
    ) -> list[tuple[str, float]]:
        """Dense and lexical candidates fused (plus term coverage when `scored` carries it), best first."""
        params, lexical = self.fusion, self.lexical
        assert lexical is not None
        fused = self._fuse(dense, bm25)
        if scored is not None and scored[1] is not None:
            coverage = scored[1]
            for chunk_id in fused:
                row = lexical.row_of(chunk_id)
                if row is not None:
                    fused[chunk_id] += params.coverage_weight * float(coverage[row])
        if params.doc_weight > 0:
            fused = self._document_aware(fused)
        return sorted(fused.items(), key=lambda item: -item[1])

    def _fuse(self, dense: list[tuple[str, float]], lexical: list[tuple[str, float]]) -> dict[str, float]:
        params = self.fusion
        fused: dict[str, float] = {}
        if params.method == "rrf":
            for weight, ranked in ((params.dense_weight, dense), (params.lexical_weight, lexical)):
                for rank, (chunk_id, _) in enumerate(ranked):
                    fused[chunk_id] = fused.get(chunk_id, 0.0) + weight / (params.rrf_k + rank + 1)
            return fused
        for weight, ranked in ((params.dense_weight, dense), (params.lexical_weight, lexical)):
            for chunk_id, score in _normalise(dict(ranked), params.normalisation).items():
                fused[chunk_id] = fused.get(chunk_id, 0.0) + weight * score
        return fused

    def _document_aware(self, fused: dict[str, float]) -> dict[str, float]:
        assert self.lexical is not None
        best: dict[int, float] = {}
        rows = {chunk_id: self.lexical.row_of(chunk_id) for chunk_id in fused}
        source = self.lexical.fields.get("source")
        if source is None:
            return fused
        for chunk_id, score in fused.items():
            row = rows[chunk_id]
            if row is not None:
                key = int(source[row])
                best[key] = max(best.get(key, 0.0), score)
        weight = self.fusion.doc_weight
        return {
            chunk_id: score + weight * (best[int(source[rows[chunk_id]])] if rows[chunk_id] is not None else score)
            for chunk_id, score in fused.items()
        }

    def _final(self, ranked: list[tuple[str, float]], k: int) -> list[SearchHit]:
        """Fetch the best chunks, drop near-duplicates, keep k."""
        overlap = self.fusion.dedup_overlap
        extra = 4 if overlap < 1.0 else 0
        hits = self._hits_for(ranked[: k + extra], {})
        if overlap >= 1.0:
            return hits[:k]
        kept: list[SearchHit] = []
        kept_shingles: list[set[int]] = []
        for hit in hits:
            shingles = _shingles(hit.text)
            duplicate = any(
                shingles and other and len(shingles & other) >= overlap * min(len(shingles), len(other))
                for other in kept_shingles
            )
            if not duplicate:
                kept.append(hit)
                kept_shingles.append(shingles)
            if len(kept) == k:
                break
        if len(kept) < k and len(ranked) > len(hits):  # many duplicates: fetch further down the ranking
            more = self._hits_for(ranked[len(hits) : len(hits) + 4 * k], {})
            for hit in more:
                shingles = _shingles(hit.text)
                if not any(shingles and other and len(shingles & other) >= overlap * min(len(shingles), len(other))
                           for other in kept_shingles):
                    kept.append(hit)
                    kept_shingles.append(shingles)
                if len(kept) == k:
                    break
        return kept

    # --- helpers ------------------------------------------------------------------------------------------
    def _neighbour_ids(self, hit: SearchHit, window: int) -> list[str]:
        if self.lexical is not None and self.lexical.row_of(hit.chunk_id) is not None:
            return self.lexical.neighbours(hit.chunk_id, window)
        source = hit.metadata.get("source_id")
        index = hit.metadata.get("chunk_index")
        if source is None or index is None:
            return []
        around = [int(index) + d for d in range(-window, window + 1) if d]
        found = self.store.get_where({"$and": [{"source_id": source}, {"chunk_index": {"$in": around}}]})
        return [c.id for c in sorted(found, key=lambda c: int(c.metadata.get("chunk_index", 0) or 0))]

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
