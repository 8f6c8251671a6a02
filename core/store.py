"""The chunk store: Chroma (embedded PersistentClient or a Chroma server) holding text, vectors and metadata.

The collection records which embedding model built it; opening it with another model is refused, so vectors of
two models are never mixed and a model change never turns into a silent empty result.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import chromadb
import numpy as np

from core.settings import Settings

Metadata = dict[str, Any]


class StoreError(RuntimeError):
    """Store unreachable or unusable. German message, shown to users as is."""


class EmbeddingMismatch(StoreError):
    """The collection was built with another embedding model."""


@dataclass
class StoredChunk:
    id: str
    text: str
    metadata: Metadata
    score: float = 0.0


_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def write_failure(what: str, exc: BaseException, data_dir: Path) -> StoreError:
    """A German StoreError for a failed write; says so when the data directory's disk (or file size limit) is full.

    Chroma reports a full disk only as an internal error, so the free space is checked too."""
    reason = getattr(exc, "strerror", None) or str(exc)
    full = getattr(exc, "errno", None) in _DISK_FULL or "disk is full" in str(exc) or "No space" in str(exc)
    try:
        full = full or shutil.disk_usage(data_dir if data_dir.exists() else data_dir.parent).free < 4 * 1024 * 1024
    except OSError:
        pass
    if full:  # the library's own wording (English, internal) would not help here
        return StoreError(
            f"{what} fehlgeschlagen: Der Speicherplatz des Datenordners {data_dir} ist erschöpft. Bitte Platz "
            "schaffen und das Einlesen wiederholen (unveränderte Dateien werden dann übersprungen)."
        )
    return StoreError(f"{what} fehlgeschlagen: {reason}")


def make_client(settings: Settings) -> "chromadb.api.ClientAPI":
    chroma_settings = chromadb.Settings(anonymized_telemetry=False)
    try:
        if settings.chroma_url:
            url = urlparse(settings.chroma_url)
            if not url.hostname:
                raise StoreError(f"STADTRETTER_CHROMA_URL ist keine gültige URL: {settings.chroma_url}")
            return chromadb.HttpClient(
                host=url.hostname,
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=chroma_settings,
            )
        settings.chroma_path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.chroma_path), settings=chroma_settings)
    except StoreError:
        raise
    except Exception as exc:
        where = settings.chroma_url or settings.chroma_path
        raise StoreError(f"Chroma unter {where} ist nicht erreichbar: {exc}") from exc


class ChunkStore:
    """Thin, typed wrapper over one Chroma collection."""

    def __init__(self, settings: Settings, model_name: str, dimension: int, client: Any = None) -> None:
        self.settings = settings
        self.model_name = model_name
        self.dimension = dimension
        self.client = client or make_client(settings)
        self.collection = self._open_collection()

    def _open_collection(self) -> Any:
        name = self.settings.collection
        try:
            collection = self.client.get_or_create_collection(
                name,
                metadata={"embedding_model": self.model_name, "embedding_dim": self.dimension, "hnsw:space": "cosine"},
                embedding_function=None,
            )
        except Exception as exc:
            raise StoreError(f"Chroma-Sammlung '{name}' konnte nicht geöffnet werden: {exc}") from exc
        stored_model = (collection.metadata or {}).get("embedding_model")
        stored_dim = (collection.metadata or {}).get("embedding_dim")
        if stored_model != self.model_name or stored_dim != self.dimension:
            raise EmbeddingMismatch(
                f"Der Index wurde mit dem Embedding-Modell '{stored_model}' ({stored_dim} Dimensionen) gebaut, "
                f"eingestellt ist '{self.model_name}' ({self.dimension} Dimensionen). "
                "Bitte 'stadtretter reindex' ausführen, um den Index mit dem neuen Modell neu aufzubauen."
            )
        return collection

    # --- writes -------------------------------------------------------------------------------------------
    @contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """Chroma's write errors (a full disk among them) as a German StoreError instead of a traceback."""
        try:
            yield
        except StoreError:
            raise
        except Exception as exc:
            raise write_failure(what, exc, self.settings.data_dir) from exc

    def upsert(self, ids: Sequence[str], texts: Sequence[str], metadatas: Sequence[Metadata], vectors: np.ndarray) -> None:
        if not ids:
            return
        batch = 1000
        with self._writing("Speichern der Abschnitte in Chroma"):
            for start in range(0, len(ids), batch):
                end = start + batch
                self.collection.upsert(
                    ids=list(ids[start:end]),
                    documents=list(texts[start:end]),
                    metadatas=list(metadatas[start:end]),
                    embeddings=np.asarray(vectors[start:end], dtype=np.float32),
                )

    def update_metadata(self, ids: Sequence[str], metadatas: Sequence[Metadata]) -> None:
        if ids:
            with self._writing("Aktualisieren der Abschnitte in Chroma"):
                self.collection.update(ids=list(ids), metadatas=list(metadatas))

    def delete(self, ids: Sequence[str]) -> None:
        with self._writing("Löschen von Abschnitten in Chroma"):
            for start in range(0, len(ids), 1000):
                self.collection.delete(ids=list(ids[start : start + 1000]))

    def drop(self) -> None:
        """Delete the whole collection (reindex)."""
        try:
            self.client.delete_collection(self.settings.collection)
        except Exception:  # already gone
            pass

    # --- reads --------------------------------------------------------------------------------------------
    def count(self) -> int:
        return int(self.collection.count())

    def ids_for_source(self, source_id: str) -> set[str]:
        result = self.collection.get(where={"source_id": source_id}, include=[])
        return set(result["ids"])

    def get(self, ids: Sequence[str]) -> list[StoredChunk]:
        if not ids:
            return []
        result = self.collection.get(ids=list(ids), include=["documents", "metadatas"])
        by_id = {
            cid: StoredChunk(cid, doc or "", meta or {})
            for cid, doc, meta in zip(result["ids"], result["documents"], result["metadatas"])
        }
        return [by_id[cid] for cid in ids if cid in by_id]

    def get_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        result = self.collection.get(ids=list(ids), include=["embeddings"])
        return {cid: np.asarray(vec, dtype=np.float32) for cid, vec in zip(result["ids"], result["embeddings"])}

    def count_where(self, where: Metadata) -> int:
        """Chunks whose metadata match `where` (an ids-only query: no texts, no vectors are read)."""
        return len(self.collection.get(where=where, include=[])["ids"])

    def get_where(self, where: Metadata) -> list[StoredChunk]:
        result = self.collection.get(where=where, include=["documents", "metadatas"])
        return [StoredChunk(cid, doc or "", meta or {}) for cid, doc, meta in zip(result["ids"], result["documents"], result["metadatas"])]

    def iter_all(self, batch: int = 2000, include_embeddings: bool = False) -> Iterator[tuple[list[str], list[str], list[Metadata], Any]]:
        include = ["documents", "metadatas"] + (["embeddings"] if include_embeddings else [])
        offset = 0
        while True:
            result = self.collection.get(include=include, limit=batch, offset=offset)
            if not result["ids"]:
                return
            yield result["ids"], result["documents"], result["metadatas"], result.get("embeddings")
            offset += len(result["ids"])

    def iter_metadata(self, batch: int = 5000) -> Iterator[tuple[list[str], list[Metadata]]]:
        """Ids and metadata of all chunks, in batches (no texts, no vectors: what an index sync needs first)."""
        offset = 0
        while True:
            result = self.collection.get(include=["metadatas"], limit=batch, offset=offset)
            if not result["ids"]:
                return
            yield result["ids"], result["metadatas"]
            offset += len(result["ids"])

    def query(self, vector: np.ndarray, k: int, where: Metadata | None = None) -> list[StoredChunk]:
        if k <= 0:
            return []
        result = self.collection.query(
            query_embeddings=[np.asarray(vector, dtype=np.float32)],
            n_results=k,
            where=where or None,
            include=["documents", "metadatas", "distances"],
        )
        return [
            StoredChunk(cid, doc or "", meta or {}, score=1.0 - float(dist))
            for cid, doc, meta, dist in zip(
                result["ids"][0], result["documents"][0], result["metadatas"][0], result["distances"][0]
            )
        ]

    def query_ids(self, vector: np.ndarray, k: int, where: Metadata | None = None) -> list[tuple[str, float]]:
        """(id, cosine similarity) of the k nearest chunks, best first: no texts or metadata are read, which makes
        this several times cheaper than `query` for candidate lists (fetch the winners with `get`)."""
        if k <= 0:
            return []
        result = self.collection.query(
            query_embeddings=[np.asarray(vector, dtype=np.float32)], n_results=k, where=where or None,
            include=["distances"],
        )
        return [(cid, 1.0 - float(dist)) for cid, dist in zip(result["ids"][0], result["distances"][0])]

    def heartbeat(self) -> bool:
        try:
            self.client.heartbeat()
            return True
        except Exception:
            return False
