"""BM25 keyword index (bm25s format and scoring) over the stored chunks, persisted under the data dir beside Chroma.

It is kept in step with the store after every ingestion run that changed something (`sync`), so it follows adds,
updates, prunes and reindexes, and works the same whether Chroma is embedded or a server: everything it knows it
reads back from the store through `ChunkStore`.

Sync is incremental: the analysed words of every chunk are cached in the index directory (keyed by chunk id and
content hash), so a sync reads only the metadata of all chunks plus the text of new ones; the BM25 matrix itself
is rebuilt with vectorised numpy from the cached words (100k chunks: see bench/scale.py).

Analysis (retriever/text.py): folded umlauts/ß, German stop words, Snowball stems, hyphen parts, normalised
numbers, and closed compounds split against the index's own vocabulary (`Decompounder`) on both the index and the
query side.

The index also keeps, per chunk, the filter fields (type, phase, date) and its place in its document (source,
chunk index): metadata filters are applied here as a mask, and neighbour lookup needs no store query.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retriever.models import SearchFilters
from retriever.text import Decompounder, content_words, stem_words
from core.store import ChunkStore

FORMAT_VERSION = 2
# BM25 and analysis parameters, chosen by measurement (bench/compare.py, bench/README.md).
K1 = 1.2
B = 0.75
DECOMPOUND = True
MIN_PART = 4  # shortest compound part (letters)
_FETCH_BATCH = 1000
_BUILD_BLOCK = 5000  # chunks per block when building the BM25 matrix


class _Postings:
    """The saved bm25s index, read without importing bm25s (and scipy) on the search path: the arrays
    bm25s.BM25.save writes (CSC over terms: indptr per term, indices = chunk rows, data = BM25 scores), memory-mapped,
    and the vocabulary. Scoring is bm25s's: the sum of the query terms' precomputed scores."""

    def __init__(self, directory: Path) -> None:
        self.scores = {
            name: np.load(directory / f"{name}.csc.index.npy", mmap_mode="r") for name in ("data", "indices", "indptr")
        }
        params = json.loads((directory / "params.index.json").read_text(encoding="utf-8"))
        self.scores["num_docs"] = int(params["num_docs"])
        self.vocab_dict: dict[str, int] = json.loads((directory / "vocab.index.json").read_text(encoding="utf-8"))


def _signature(ids: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for chunk_id in sorted(ids):
        digest.update(chunk_id.encode())
    return digest.hexdigest()


def content_signature(ids: Sequence[str], hashes: Sequence[str]) -> str:
    """Identifies a build's content: its chunk ids and their content hashes (an updated chunk keeps its id)."""
    digest = hashlib.sha256()
    for chunk_id, content_hash in sorted(zip(ids, hashes)):
        digest.update(f"{chunk_id}\0{content_hash}\n".encode())
    return digest.hexdigest()


def _file_version(path: Path) -> tuple[int, int]:
    """Changes whenever the file is replaced (a new build writes a new marker file)."""
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


def heading_of(meta: dict[str, Any]) -> str:
    return " ".join(str(meta.get(key) or "") for key in ("title", "section"))


def _date_int(meta: dict[str, Any]) -> int:
    try:
        return int(meta.get("date_int") or 0)
    except (TypeError, ValueError):
        return 0


class LexicalIndex:
    def __init__(
        self, path: Path, k1: float = K1, b: float = B, decompound: bool = DECOMPOUND, min_part: int = MIN_PART
    ) -> None:
        self.path = path
        self.k1, self.b, self.decompound, self.min_part = k1, b, decompound, min_part
        self._lock = threading.Lock()
        # Held by whoever replaces the build in this process (a writer's sync + publish, the replica follower), so
        # that a follower never swaps an older published build over a fresh one that is about to be published.
        self.updating = threading.RLock()
        self._loaded_mtime: tuple[int, int] | None = None
        self._pinned = False
        self.bm25: _Postings | None = None
        self.ids: list[str] = []
        self.fields: dict[str, np.ndarray] = {}
        self.sources: list[str] = []
        self.signature = ""
        self.content_signature = ""
        self._published: tuple[int, str] | None = None  # (version number, content signature) it was published as
        self.version = 0
        self.params: dict[str, Any] = {}
        self.decompounder: Decompounder | None = None
        self._row_of: dict[str, int] | None = None
        self._categories: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._place: dict[tuple[int, int], int] | None = None

    @property
    def index_version(self) -> int | None:
        """The published version (retriever/replication.py) the loaded build is, None when unknown or unpublished.
        Cheap: what caches key on."""
        published = self._published
        return published[0] if published and published[1] == self.content_signature else None

    def mark_version(self, version: int, signature: str | None = None) -> None:
        """This process learnt (published, fetched or checked) that build `signature` (default: the loaded one)
        is version `version`."""
        self._published = (version, self.content_signature if signature is None else signature)

    # --- building -----------------------------------------------------------------------------------------
    def sync(self, store: ChunkStore) -> None:
        """Bring the index in step with the store: new/changed chunks are analysed, removed ones dropped."""
        cache = self._read_word_cache()
        ids: list[str] = []
        metas: list[dict[str, Any]] = []
        for batch_ids, batch_metas in store.iter_metadata():
            ids.extend(batch_ids)
            metas.extend(meta or {} for meta in batch_metas)

        words: list[str] = cache["words"]
        word_ids: dict[str, int] = {w: i for i, w in enumerate(words)}
        per_chunk: list[np.ndarray | None] = []
        missing: list[int] = []
        for row, (chunk_id, meta) in enumerate(zip(ids, metas)):
            cached = cache["chunks"].get(chunk_id)
            if cached is not None and cached[0] == str(meta.get("content_hash", "")):
                per_chunk.append(cached[1])
            else:
                per_chunk.append(None)
                missing.append(row)
        for start in range(0, len(missing), _FETCH_BATCH):
            rows = missing[start : start + _FETCH_BATCH]
            texts = {chunk.id: chunk.text for chunk in store.get([ids[r] for r in rows])}
            for row in rows:
                analysed = content_words(f"{heading_of(metas[row])}\n{texts.get(ids[row], '')}")
                per_chunk[row] = np.fromiter(
                    (word_ids.setdefault(w, len(word_ids)) for w in analysed), dtype=np.int32, count=len(analysed)
                )
        words = list(word_ids)
        self._write(ids, metas, [a if a is not None else np.empty(0, np.int32) for a in per_chunk], words)

    def is_current(self, store: ChunkStore, count: int | None = None) -> bool:
        """Same number of chunks as the store (`count` when the caller has just counted it: a count costs ~10 ms at
        100k chunks), built by this version with these parameters."""
        self.load()
        stored = store.count() if count is None else count
        return self.version == FORMAT_VERSION and self.params == self._params() and len(self.ids) == stored

    def _params(self) -> dict[str, Any]:
        return {"k1": self.k1, "b": self.b, "decompound": self.decompound, "min_part": self.min_part}

    def _build_terms(self, words: list[str], used: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Terms of each word type: its stem plus the stems of its compound parts (CSR: ptr, term ids)."""
        vocabulary = {w for w, u in zip(words, used) if u and len(w) >= self.min_part and w.isalpha()}
        decompounder = Decompounder(vocabulary, self.min_part) if self.decompound else None
        surface: list[str] = []
        counts = np.zeros(len(words), dtype=np.int64)
        for i, word in enumerate(words):
            parts = decompounder.split(word) if decompounder and used[i] else ()
            surface.append(word)
            surface.extend(parts)
            counts[i] = 1 + len(parts)
        stems = stem_words(surface)
        term_ids: dict[str, int] = {}
        flat = np.fromiter((term_ids.setdefault(s, len(term_ids)) for s in stems), dtype=np.int32, count=len(stems))
        ptr = np.zeros(len(words) + 1, dtype=np.int64)
        np.cumsum(counts, out=ptr[1:])
        return list(term_ids), ptr, flat

    def _bm25_matrix(self, per_chunk: list[np.ndarray], ptr: np.ndarray, flat: np.ndarray, n_terms: int) -> dict:
        """Lucene BM25 scores as bm25s stores them: CSC over terms (indptr per term, indices = chunk rows).

        Vectorised, in blocks of chunks so that memory stays proportional to a block, not to the corpus."""
        n_docs = len(per_chunk)
        per_word = (ptr[1:] - ptr[:-1]).astype(np.int64)
        terms, docs, tfs = [], [], []
        doc_len = np.zeros(n_docs, dtype=np.float64)
        for first in range(0, n_docs, _BUILD_BLOCK):
            block = per_chunk[first : first + _BUILD_BLOCK]
            lengths = np.fromiter((len(a) for a in block), dtype=np.int64, count=len(block))
            word_seq = np.concatenate(block) if block else np.empty(0, np.int32)
            # every word occurrence expands into its terms (stem + compound parts)
            reps = per_word[word_seq]
            starts = np.repeat(ptr[word_seq], reps)
            offsets = np.arange(int(reps.sum()), dtype=np.int64) - np.repeat(np.cumsum(reps) - reps, reps)
            term_seq = flat[starts + offsets].astype(np.int64)
            doc_seq = np.repeat(np.repeat(np.arange(len(block), dtype=np.int64), lengths), reps)
            doc_len[first : first + len(block)] = np.bincount(doc_seq, minlength=len(block))
            keys, tf = np.unique(term_seq * len(block) + doc_seq, return_counts=True)
            terms.append((keys // len(block)).astype(np.int32))
            docs.append((keys % len(block) + first).astype(np.int32))
            tfs.append(tf.astype(np.float32))
        term = np.concatenate(terms) if terms else np.empty(0, np.int32)
        doc = np.concatenate(docs) if docs else np.empty(0, np.int32)
        tf = np.concatenate(tfs) if tfs else np.empty(0, np.float32)
        order = np.argsort(term, kind="stable")  # by term; chunk rows stay ascending within a term
        term, doc, tf = term[order], doc[order], tf[order]
        avg_len = float(doc_len.mean()) if n_docs and doc_len.sum() else 1.0
        df = np.bincount(term, minlength=n_terms).astype(np.float64)
        idf = np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
        norm = self.k1 * (1.0 - self.b + self.b * doc_len / avg_len)
        data = (idf[term] * tf / (tf + norm[doc])).astype(np.float32)
        indptr = np.zeros(n_terms + 1, dtype=np.int64)
        np.cumsum(np.bincount(term, minlength=n_terms), out=indptr[1:])
        return {"data": data, "indices": doc, "indptr": indptr, "num_docs": n_docs}

    def _write(self, ids: list[str], metas: list[dict[str, Any]], per_chunk: list[np.ndarray], words: list[str]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            self._write_files(tmp, ids, metas, per_chunk, words)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # e.g. a full disk: free what was written, keep the old index
            raise
        self.replace_with(tmp)

    def replace_with(self, directory: Path) -> None:
        """Swap a complete build (written beside the index) in and load it. Atomically enough: readers in any
        process on this disk reload on the marker file's change."""
        old = self.path.with_name(self.path.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.path.exists():
            os.replace(self.path, old)
        os.replace(directory, self.path)
        shutil.rmtree(old, ignore_errors=True)
        self._loaded_mtime = None
        self.load()

    def _write_files(
        self, tmp: Path, ids: list[str], metas: list[dict[str, Any]], per_chunk: list[np.ndarray], words: list[str]
    ) -> None:
        # drop words no chunk uses any more (after prunes/updates), renumbering the cached word ids
        used = np.zeros(len(words), dtype=bool)
        for arr in per_chunk:
            used[arr] = True
        remap = np.cumsum(used) - 1
        words = [w for w, u in zip(words, used) if u]
        per_chunk = [remap[a].astype(np.int32) for a in per_chunk]
        used = np.ones(len(words), dtype=bool)
        if ids:
            import bm25s  # only when building: the search path reads the saved arrays directly

            terms, ptr, flat = self._build_terms(words, used)
            retriever = bm25s.BM25(k1=self.k1, b=self.b, method="lucene")
            retriever.scores = self._bm25_matrix(per_chunk, ptr, flat, len(terms))
            retriever.vocab_dict = {term: i for i, term in enumerate(terms)}
            retriever.nonoccurrence_array = None
            retriever.save(str(tmp / "bm25"), show_progress=False)
        sources: dict[str, int] = {}
        source_rows = [sources.setdefault(str(m.get("source_id", "")), len(sources)) for m in metas]
        np.savez(
            tmp / "fields.npz",
            type=np.array([str(m.get("type", "")) for m in metas], dtype=str),
            phase=np.array([str(m.get("phase", "")) for m in metas], dtype=str),
            date_int=np.array([_date_int(m) for m in metas], dtype=np.int64),
            source=np.array(source_rows, dtype=np.int32),
            chunk_index=np.array([int(m.get("chunk_index", -1) or 0) for m in metas], dtype=np.int32),
        )
        lengths = np.array([len(a) for a in per_chunk], dtype=np.int64)
        np.savez(
            tmp / "words.npz",
            words=np.array(words, dtype=str),
            flat=np.concatenate(per_chunk) if per_chunk else np.empty(0, np.int32),
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            hashes=np.array([str(m.get("content_hash", "")) for m in metas], dtype=str),
        )
        (tmp / "sources.json").write_text(json.dumps(list(sources), ensure_ascii=False), encoding="utf-8")
        marker = {
            "version": FORMAT_VERSION, "ids": ids, "signature": _signature(ids),
            "content_signature": content_signature(ids, [str(m.get("content_hash", "")) for m in metas]),
            "params": self._params(),
        }
        (tmp / "ids.json").write_text(json.dumps(marker), encoding="utf-8")

    def _read_word_cache(self) -> dict[str, Any]:
        """Cached analysed words of the current index: {words, chunks: id -> (content_hash, word ids)}."""
        empty: dict[str, Any] = {"words": [], "chunks": {}}
        marker, arrays = self.path / "ids.json", self.path / "words.npz"
        if not marker.exists() or not arrays.exists():
            return empty
        try:
            data = json.loads(marker.read_text(encoding="utf-8"))
            if data.get("version") != FORMAT_VERSION:
                return empty
            with np.load(arrays) as cached:
                words, flat, offsets, hashes = (
                    cached["words"].tolist(), cached["flat"], cached["offsets"], cached["hashes"].tolist()
                )
        except (OSError, ValueError, KeyError):
            return empty  # unreadable cache: analyse everything again
        ids = data["ids"]
        chunks = {cid: (hashes[i], flat[offsets[i] : offsets[i + 1]]) for i, cid in enumerate(ids)}
        return {"words": words, "chunks": chunks}

    # --- loading ------------------------------------------------------------------------------------------
    def load(self) -> None:
        """(Re)load when the index on disk was replaced. A sync (in this or another process) may swap the files
        while they are read: then the index in memory stays as it was and a later call loads the new one, so ids
        and postings of two different builds are never mixed."""
        if self._pinned:
            return
        marker = self.path / "ids.json"
        try:
            version = _file_version(marker)
        except FileNotFoundError:
            return
        if self._loaded_mtime == version:
            return
        with self._lock:
            if self._loaded_mtime == version:
                return
            try:
                state = self._read(marker)
                unchanged = _file_version(marker) == version
            except (FileNotFoundError, ValueError):  # swapped mid-read (ValueError: a truncated array or JSON)
                return
            if unchanged:
                for name, value in state.items():
                    setattr(self, name, value)
                self._loaded_mtime = version

    def pinned(self) -> "LexicalIndex":
        """The current build, unaffected by later reloads: a search reads ids, postings and fields of one build
        even while an ingestion in this process swaps in the next one."""
        self.load()
        with self._lock:  # reloads assign under the lock: the copy sees one build
            view = copy.copy(self)
        view._pinned = True
        return view

    def _read(self, marker: Path) -> dict[str, Any]:
        """Everything `load` sets, read from disk."""
        data = json.loads(marker.read_text(encoding="utf-8"))
        ids = data["ids"]
        bm25 = None
        if ids and data.get("version") == FORMAT_VERSION:
            bm25 = _Postings(self.path / "bm25")
        with np.load(self.path / "fields.npz") as arrays:
            fields = {name: arrays[name] for name in arrays.files}
        sources_path = self.path / "sources.json"
        sources = json.loads(sources_path.read_text(encoding="utf-8")) if sources_path.exists() else []
        decompounder = None
        words_path = self.path / "words.npz"
        if self.decompound and words_path.exists():
            with np.load(words_path) as arrays:
                vocabulary = {w for w in arrays["words"].tolist() if len(w) >= self.min_part and w.isalpha()}
            decompounder = Decompounder(vocabulary, self.min_part)
        categories = {}
        for name in ("type", "phase"):
            values, codes = np.unique(fields[name], return_inverse=True)
            categories[name] = (values, codes.astype(np.int32))
        return {
            "bm25": bm25, "ids": ids, "fields": fields, "signature": data["signature"], "sources": sources,
            "content_signature": str(data.get("content_signature", "")),
            "decompounder": decompounder, "_categories": categories, "version": int(data.get("version", 1)),
            "params": dict(data.get("params", {})), "_row_of": {cid: i for i, cid in enumerate(ids)}, "_place": None,
        }

    # --- search -------------------------------------------------------------------------------------------
    def analyze_query(self, query: str) -> list[str]:
        words = content_words(query)
        out: list[str] = []
        for word in words:
            out.append(word)
            if self.decompounder is not None:
                out.extend(self.decompounder.split(word))
        return stem_words(out)

    def mask(self, filters: SearchFilters | None) -> np.ndarray | None:
        """Rows that pass the filters (None: no filter)."""
        self.load()
        if not filters or filters.is_empty() or not self.ids:
            return None
        keep = np.ones(len(self.ids), dtype=bool)
        for name, wanted in (("type", filters.types), ("phase", filters.phases)):
            if wanted:
                values, codes = self._categories[name]
                keep &= np.isin(codes, np.flatnonzero(np.isin(values, list(wanted))))
        if filters.date_from:
            keep &= self.fields["date_int"] >= int(filters.date_from.replace("-", ""))
        if filters.date_to:
            keep &= (self.fields["date_int"] > 0) & (self.fields["date_int"] <= int(filters.date_to.replace("-", "")))
        return keep

    def counts(self, name: str) -> dict[str, int]:
        """How many chunks carry each value of a filter field ("type", "phase"); the same rows `mask` selects."""
        self.load()
        if name not in self._categories:
            return {}
        values, codes = self._categories[name]
        return {str(value): int(n) for value, n in zip(values, np.bincount(codes, minlength=len(values)))}

    def scores(self, query: str, keep: np.ndarray | None = None) -> np.ndarray | None:
        """BM25 score of every chunk row (None when no query term is in the index)."""
        result = self.score_query(query, keep, coverage=False)
        return None if result is None else result[0]

    def score_query(
        self, query: str, keep: np.ndarray | None = None, coverage: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None] | None:
        """BM25 score and term coverage of every chunk row (None when no query term is in the index).

        Coverage: the IDF-weighted share of the query's distinct terms that occur in the chunk (0..1), a soft AND
        that BM25's saturating sum does not express; hybrid search uses it as a third signal."""
        self.load()
        bm25 = self.bm25
        if bm25 is None:
            return None
        vocab = bm25.vocab_dict
        term_ids = [vocab[t] for t in self.analyze_query(query) if t in vocab]
        if not term_ids:
            return None
        data, indices, indptr = bm25.scores["data"], bm25.scores["indices"], bm25.scores["indptr"]
        n_docs = int(bm25.scores["num_docs"])
        scores = np.zeros(n_docs, dtype=np.float32)
        covered = np.zeros(n_docs, dtype=np.float32) if coverage else None
        total_idf = 0.0
        seen: set[int] = set()
        for term in term_ids:  # repeated query terms count repeatedly in BM25, as in bm25s
            start, end = int(indptr[term]), int(indptr[term + 1])
            postings = indices[start:end]
            if end - start > 256:
                scores += np.bincount(postings, weights=data[start:end], minlength=n_docs).astype(np.float32)
            else:
                scores[postings] += data[start:end]  # postings of one term hold each chunk once
            if covered is not None and term not in seen:
                seen.add(term)
                df = end - start
                idf = math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
                covered[postings] += idf
                total_idf += idf
        if covered is not None and total_idf > 0:
            covered /= total_idf
        if keep is not None:
            scores[~keep] = 0.0
            if covered is not None:
                covered[~keep] = 0.0
        return scores, covered

    def search(self, query: str, k: int, filters: SearchFilters | None = None) -> list[tuple[str, float]]:
        self.load()
        if self.bm25 is None or k <= 0:
            return []
        scores = self.scores(query, self.mask(filters))
        return [] if scores is None else self.top(scores, k)

    def top(self, scores: np.ndarray, k: int) -> list[tuple[str, float]]:
        """(id, score) of the k best rows with a positive score, best first."""
        k = min(k, len(scores))
        if k <= 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]

    # --- chunk places -------------------------------------------------------------------------------------
    def row_of(self, chunk_id: str) -> int | None:
        self.load()
        if self._row_of is None:
            self._row_of = {cid: i for i, cid in enumerate(self.ids)}
        return self._row_of.get(chunk_id)

    def neighbours(self, chunk_id: str, distance: int = 1) -> list[str]:
        """Ids of the chunks next to `chunk_id` in its document (chunk_index ± 1 .. ± distance), in order."""
        row = self.row_of(chunk_id)
        if row is None or "source" not in self.fields:
            return []
        if self._place is None:
            self._place = {
                (int(s), int(c)): i for i, (s, c) in enumerate(zip(self.fields["source"], self.fields["chunk_index"]))
            }
        source, index = int(self.fields["source"][row]), int(self.fields["chunk_index"][row])
        out = []
        for offset in [*range(-distance, 0), *range(1, distance + 1)]:
            other = self._place.get((source, index + offset))
            if other is not None:
                out.append(self.ids[other])
        return out
