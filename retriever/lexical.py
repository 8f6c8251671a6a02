"""BM25 keyword index (bm25s) over the stored chunks, persisted under the data dir beside Chroma.

It is rebuilt from the store's contents after every ingestion run that changed something, so it follows adds,
updates, prunes and reindexes, and works the same whether Chroma is embedded or a server.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import bm25s
import numpy as np

from retriever.models import SearchFilters
from retriever.text import analyze
from stadtretter.store import ChunkStore

_FILTER_FIELDS = ("type", "phase", "date_int")


def _signature(ids: list[str]) -> str:
    digest = hashlib.sha256()
    for chunk_id in sorted(ids):
        digest.update(chunk_id.encode())
    return digest.hexdigest()


class LexicalIndex:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._loaded_mtime: float | None = None
        self.bm25: bm25s.BM25 | None = None
        self.ids: list[str] = []
        self.fields: dict[str, np.ndarray] = {}
        self.signature = ""

    # --- building -----------------------------------------------------------------------------------------
    def sync(self, store: ChunkStore) -> None:
        ids: list[str] = []
        tokens: list[list[str]] = []
        fields: dict[str, list[Any]] = {name: [] for name in _FILTER_FIELDS}
        for batch_ids, texts, metadatas, _ in store.iter_all():
            for chunk_id, text, meta in zip(batch_ids, texts, metadatas):
                meta = meta or {}
                ids.append(chunk_id)
                heading = " ".join(str(meta.get(key, "")) for key in ("title", "section"))
                tokens.append(analyze(f"{heading}\n{text}"))
                fields["type"].append(str(meta.get("type", "")))
                fields["phase"].append(str(meta.get("phase", "")))
                fields["date_int"].append(int(meta.get("date_int", 0) or 0))
        self._write(ids, tokens, fields)

    def is_current(self, store: ChunkStore) -> bool:
        self.load()
        return len(self.ids) == store.count()

    def _write(self, ids: list[str], tokens: list[list[str]], fields: dict[str, list[Any]]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if ids:
            vocab: dict[str, int] = {}
            token_ids = [[vocab.setdefault(tok, len(vocab)) for tok in doc] for doc in tokens]
            retriever = bm25s.BM25(k1=1.2, b=0.75)
            retriever.index(bm25s.tokenization.Tokenized(ids=token_ids, vocab=vocab), show_progress=False)
            retriever.save(str(tmp / "bm25"), show_progress=False)
        np.savez(
            tmp / "fields.npz",
            type=np.array(fields["type"], dtype=object).astype(str),
            phase=np.array(fields["phase"], dtype=object).astype(str),
            date_int=np.array(fields["date_int"], dtype=np.int64),
        )
        (tmp / "ids.json").write_text(json.dumps({"ids": ids, "signature": _signature(ids)}), encoding="utf-8")
        # Swap in atomically enough: readers reload on the marker file's mtime.
        old = self.path.with_name(self.path.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.path.exists():
            os.replace(self.path, old)
        os.replace(tmp, self.path)
        shutil.rmtree(old, ignore_errors=True)
        self._loaded_mtime = None
        self.load()

    # --- loading ------------------------------------------------------------------------------------------
    def load(self) -> None:
        marker = self.path / "ids.json"
        if not marker.exists():
            return
        mtime = marker.stat().st_mtime
        if self._loaded_mtime == mtime:
            return
        with self._lock:
            data = json.loads(marker.read_text(encoding="utf-8"))
            ids = data["ids"]
            bm25 = bm25s.BM25.load(str(self.path / "bm25"), load_vocab=True, show_progress=False) if ids else None
            with np.load(self.path / "fields.npz") as arrays:
                fields = {name: arrays[name] for name in _FILTER_FIELDS}
            self.bm25, self.ids, self.fields, self.signature = bm25, ids, fields, data["signature"]
            self._loaded_mtime = mtime

    # --- search -------------------------------------------------------------------------------------------
    def mask(self, filters: SearchFilters | None) -> np.ndarray | None:
        if not filters or filters.is_empty() or not self.ids:
            return None
        keep = np.ones(len(self.ids), dtype=bool)
        if filters.types:
            keep &= np.isin(self.fields["type"], filters.types)
        if filters.phases:
            keep &= np.isin(self.fields["phase"], filters.phases)
        if filters.date_from:
            keep &= self.fields["date_int"] >= int(filters.date_from.replace("-", ""))
        if filters.date_to:
            keep &= (self.fields["date_int"] > 0) & (self.fields["date_int"] <= int(filters.date_to.replace("-", "")))
        return keep

    def search(self, query: str, k: int, filters: SearchFilters | None = None) -> list[tuple[str, float]]:
        self.load()
        if self.bm25 is None:
            return []
        vocab = self.bm25.vocab_dict
        query_ids = [vocab[tok] for tok in analyze(query) if tok in vocab]
        if not query_ids:
            return []
        scores = self.bm25.get_scores(query_ids)
        keep = self.mask(filters)
        if keep is not None:
            scores = np.where(keep, scores, 0.0)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]
