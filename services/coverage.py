"""The coverage map (Themenlandkarte): which topics the archive holds, per EKT phase and source type, and where it
is thin.

Topics are k-means clusters (scikit-learn) of the stored chunk embeddings, labelled by their characteristic terms
(c-TF-IDF over stems, shown as the most frequent surface word: services/dossier_terms.py). Every topic × phase ×
type cell counts chunks and documents; a phase with no or one document in a topic is named as a gap.

The map is cached in data_dir/coverage.json under the index's signature (chunk ids, count and the registry's newest
ingestion time: it changes with every ingestion that adds, changes or removes a document). The ingestion pipeline
recomputes it at its end (the service is an index listener after the lexical index); a request that finds the cache
stale (after a reindex, or a failed recomputation) computes it then.
bench/coverage.py measures the cost.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.cluster import MiniBatchKMeans

from core.store import ChunkStore
from core.vocabulary import PHASE_DATIVE, PHASES, SOURCE_TYPES
from ingest.registry import Registry
from retriever.lexical import LexicalIndex
from services.dossier_terms import characteristic_terms

logger = logging.getLogger("stadtretter.coverage")

FORMAT_VERSION = 1
MIN_TOPICS, MAX_TOPICS = 4, 40
THIN_SOURCES = 1  # a topic's phase with at most this many documents is a gap
NO_PHASE = "ohne"


@dataclass
class Cell:
    chunks: int = 0
    sources: list[str] = field(default_factory=list)  # source ids


@dataclass
class Topic:
    id: int
    label: str  # "Passantenbefragung, Fragebogen, Innenstadt"
    terms: list[str]
    chunks: int
    sources: int
    cells: dict[str, dict[str, Cell]]  # phase -> type -> cell


@dataclass
class Gap:
    topic: int
    phase: str
    sources: int
    message: str  # German


@dataclass
class CoverageMap:
    signature: str
    chunks: int
    topics: list[Topic]
    gaps: list[Gap]
    sources: dict[str, dict[str, Any]]  # source id -> title, type, url
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def topic_count(chunks: int) -> int:
    """About √(n/2) topics: 12 at 300 chunks, 40 from 3,200 on."""
    return max(MIN_TOPICS, min(MAX_TOPICS, round(math.sqrt(chunks / 2)))) if chunks else 0


def gap_message(label: str, phase: str, sources: int) -> str:
    where = PHASE_DATIVE[phase]
    if sources == 0:
        return f"„{label}“: keine Quelle {where}"
    return f"„{label}“: nur eine Quelle {where}"


class CoverageService:
    def __init__(self, store: ChunkStore, lexical: LexicalIndex, registry: Registry, cache_path: Path) -> None:
        self.store = store
        self.lexical = lexical
        self.registry = registry
        self.cache_path = cache_path
        self._lock = threading.Lock()

    def signature(self) -> str:
        self.lexical.load()
        newest = max((record.updated_at for record in self.registry.all()), default=0.0)
        return f"{FORMAT_VERSION}:{self.lexical.signature}:{self.store.count()}:{newest}"

    # --- ingestion listener (ingest.pipeline.IndexListener): the map is ready before the first request -------

    def sync(self, store: ChunkStore) -> None:
        try:
            self.coverage()
        except Exception as exc:  # noqa: BLE001 - a failed map must not fail the ingestion; requests retry
            logger.error("Themenlandkarte nicht berechnet: %s", exc)

    def is_current(self, store: ChunkStore) -> bool:
        return self._read_cache(self.signature()) is not None

    def coverage(self) -> CoverageMap:
        """The map of the current index: from the cache when the index has not changed, else computed."""
        with self._lock:
            signature = self.signature()
            cached = self._read_cache(signature)
            if cached is not None:
                return cached
            result = self.compute(signature)
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            self.cache_path.write_text(json.dumps(result.to_dict(), ensure_ascii=False), encoding="utf-8")
            return result

    def compute(self, signature: str = "") -> CoverageMap:
        started = time.perf_counter()
        ids: list[str] = []
        texts: list[str] = []
        metas: list[dict[str, Any]] = []
        vectors: list[np.ndarray] = []
        for batch_ids, batch_texts, batch_metas, batch_vectors in self.store.iter_all(include_embeddings=True):
            ids += batch_ids
            texts += [text or "" for text in batch_texts]
            metas += [meta or {} for meta in batch_metas]
            vectors.append(np.asarray(batch_vectors, dtype=np.float32))
        if not ids:
            return CoverageMap(signature, 0, [], [], {}, time.perf_counter() - started)
        matrix = np.concatenate(vectors)
        k = min(topic_count(len(ids)), len(ids))
        if k > 1:
            # Mini-batch k-means: 2-3x faster than full k-means at 10k chunks (bench/coverage.py), same topics.
            kmeans = MiniBatchKMeans(n_clusters=k, n_init=3, random_state=0, batch_size=2048)
            labels = kmeans.fit_predict(matrix)
        else:
            labels = np.zeros(len(ids), int)
        members: dict[int, list[int]] = defaultdict(list)
        for row, label in enumerate(labels):
            members[int(label)].append(row)
        order = sorted(members, key=lambda label: -len(members[label]))
        groups = [_texts_by_source(members[label], texts, metas) for label in order]
        shared = characteristic_terms(groups, top=4, min_texts=2)
        single = characteristic_terms(groups, top=4) if not all(shared) else shared
        terms = [words or fallback for words, fallback in zip(shared, single)]  # topics of one or two documents
        topics: list[Topic] = []
        gaps: list[Gap] = []
        sources: dict[str, dict[str, Any]] = {}
        for number, (label, words) in enumerate(zip(order, terms), 1):
            chunks: Counter[tuple[str, str]] = Counter()
            documents: dict[tuple[str, str], dict[str, None]] = defaultdict(dict)  # ordered sets of source ids
            for row in members[label]:
                meta = metas[row]
                source = str(meta.get("source_id", ""))
                key = (meta.get("phase") if meta.get("phase") in PHASES else NO_PHASE, str(meta.get("type", "")))
                chunks[key] += 1
                documents[key].setdefault(source, None)
                sources.setdefault(source, {"title": meta.get("title"), "type": meta.get("type"),
                                            "url": meta.get("url") or None, "date": meta.get("date")})
            cells = {phase: {kind: Cell(chunks[(phase, kind)], list(documents.get((phase, kind), {})))
                             for kind in dict.fromkeys([*SOURCE_TYPES, *(k for p, k in chunks if p == phase)])}
                     for phase in (*PHASES, NO_PHASE)}
            topic_sources = {source for found in documents.values() for source in found}
            name = ", ".join(words) or f"Thema {number}"
            topics.append(Topic(number, name, words, len(members[label]), len(topic_sources), cells))
            for phase in PHASES:
                count = len({s for cell in cells[phase].values() for s in cell.sources})
                if count <= THIN_SOURCES:
                    gaps.append(Gap(number, phase, count, gap_message(name, phase, count)))
        return CoverageMap(signature, len(ids), topics, gaps, sources, round(time.perf_counter() - started, 3))

    def _read_cache(self, signature: str) -> CoverageMap | None:
        try:
            data = json.loads(self.cache_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if data.get("signature") != signature:
            return None
        topics = [
            Topic(**{**t, "cells": {p: {ty: Cell(**c) for ty, c in types.items()} for p, types in t["cells"].items()}})
            for t in data["topics"]
        ]
        return CoverageMap(signature, data["chunks"], topics, [Gap(**g) for g in data["gaps"]], data["sources"],
                           data.get("seconds", 0.0))


def _texts_by_source(rows: list[int], texts: list[str], metas: list[dict[str, Any]]) -> list[str]:
    """One text per document: a term counts for a topic by how many of its documents use it."""
    joined: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        joined[str(metas[row].get("source_id", ""))].append(texts[row])
    return ["\n".join(parts) for parts in joined.values()]
