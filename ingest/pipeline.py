"""The ingestion pipeline: discover files → load → chunk → enrich (phase tags) → embed what is new → store.

Idempotent and incremental: unchanged files are skipped by file hash, unchanged chunks keep their content-hashed
ids and are never re-embedded, a changed file's stale chunks are removed only after its new ones are stored.
"""

from __future__ import annotations

import fnmatch
import errno
import hashlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from ingest.chunking import Chunker
from ingest.loaders import SUPPORTED_SUFFIXES, load_file, source_id_for
from ingest.models import Chunk, LoaderError, SourceDocument
from ingest.registry import Registry, SourceRecord
from core.embeddings import StadtretterEmbeddings
from core.metrics import INGEST_CHUNKS, INGEST_FILES
from core.settings import Settings
from core.store import ChunkStore, write_failure

IGNORE_FILE = ".stadtretterignore"
# Bump when loaders, the chunker or the enrichers change their output, so that every file is re-processed once
# (unchanged chunks keep their content-hashed ids and are still not re-embedded).
INGEST_VERSION = "3"
SIDECAR_SUFFIXES = {".yml", ".yaml"}
# A write failing with these stops the run (disk or quota full, file size limit): every later file would fail too.
WRITE_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class ChunkEnricher(Protocol):
    """A step that adds metadata to a document's chunks before they are stored (e.g. EKT phase scores)."""

    def run(self, doc: SourceDocument, chunks: list[Chunk], vectors: dict[str, Sequence[float]]) -> dict[str, object]:
        """Update chunk metadata in place; return document-level metadata for the registry."""
        ...


class IndexListener(Protocol):
    """Something kept in step with the store (the lexical index)."""

    def sync(self, store: ChunkStore) -> None: ...


@dataclass
class FailedFile:
    path: str
    reason: str


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: list[FailedFile] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    chunks_embedded: int = 0
    chunks_reused: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


class Progress(Protocol):
    def start(self, total_files: int) -> None: ...
    def file_done(self, path: Path) -> None: ...
    def chunks_embedded(self, count: int) -> None: ...


class _NoProgress:
    def start(self, total_files: int) -> None: ...
    def file_done(self, path: Path) -> None: ...
    def chunks_embedded(self, count: int) -> None: ...


def file_fingerprint(path: Path, settings: Settings, extra: str = "") -> str:
    """Hash of the file, its sidecar, the chunking settings and the enrichers' versions: any change re-processes
    the file (unchanged chunks are still not re-embedded)."""
    digest = hashlib.sha256()
    digest.update(path.read_bytes())
    for suffix in SIDECAR_SUFFIXES:
        sidecar = path.with_suffix(suffix)
        if sidecar.exists():
            digest.update(sidecar.read_bytes())
    digest.update(f"{INGEST_VERSION}|{settings.chunk_chars}|{settings.transcript_chunk_seconds}|{extra}".encode())
    return digest.hexdigest()


def _ignore_patterns(root: Path) -> list[str]:
    ignore = root / IGNORE_FILE
    if not ignore.is_file():
        return []
    lines = ignore.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _ignored(relative: str, patterns: list[str]) -> bool:
    for pattern in patterns:
        if pattern.endswith("/"):
            if relative.startswith(pattern) or f"/{pattern}" in f"/{relative}":
                return True
        elif fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(Path(relative).name, pattern):
            return True
    return False


def discover(paths: Iterable[Path]) -> tuple[list[Path], list[FailedFile]]:
    """Expand folders recursively (hidden files, sidecars and .stadtretterignore patterns skipped)."""
    files: list[Path] = []
    missing: list[FailedFile] = []
    for path in paths:
        if not path.exists():
            missing.append(FailedFile(str(path), "Pfad nicht gefunden"))
        elif path.is_file():
            files.append(path)
        else:
            patterns = _ignore_patterns(path)
            for candidate in sorted(path.rglob("*")):
                relative = candidate.relative_to(path).as_posix()
                if not candidate.is_file() or any(part.startswith(".") for part in Path(relative).parts):
                    continue
                if candidate.suffix.lower() in SIDECAR_SUFFIXES or _ignored(relative, patterns):
                    continue
                files.append(candidate)
    return files, missing


class IngestPipeline:
    def __init__(
        self,
        settings: Settings,
        embeddings: StadtretterEmbeddings,
        store: ChunkStore,
        registry: Registry,
        enrichers: Sequence[ChunkEnricher] = (),
        listeners: Sequence[IndexListener] = (),
    ) -> None:
        self.settings = settings
        self.embeddings = embeddings
        self.store = store
        self.registry = registry
        self.chunker = Chunker(settings.chunk_chars, settings.transcript_chunk_seconds)
        self.enrichers = list(enrichers)
        self.listeners = list(listeners)
        self._enricher_versions = "|".join(str(getattr(e, "version", type(e).__name__)) for e in self.enrichers)

    def run(self, paths: Sequence[Path], prune: bool = False, progress: Progress | None = None) -> IngestReport:
        started = time.perf_counter()
        progress = progress or _NoProgress()
        report = IngestReport()
        files, report.failed = discover(paths)
        progress.start(len(files))
        seen: set[str] = set()
        changed = False
        for path in files:
            try:
                outcome = self._ingest_file(path, report, progress, seen)
            except LoaderError as exc:
                report.failed.append(FailedFile(str(path), str(exc)))
                outcome = None
            except SQLAlchemyError as exc:  # the registry cannot be written: no later file could be either
                raise write_failure(f"Einlesen von {path}: Schreiben des Registers", exc, self.settings.data_dir) from exc
            except OSError as exc:
                if exc.errno in WRITE_FULL_ERRNOS:
                    raise write_failure(f"Einlesen von {path}", exc, self.settings.data_dir) from exc
                report.failed.append(FailedFile(str(path), f"Datei nicht lesbar: {exc.strerror or exc}"))
                outcome = None
            INGEST_FILES.labels(outcome or "failed").inc()
            if outcome in ("added", "updated"):
                setattr(report, outcome, getattr(report, outcome) + 1)
                changed = True
            elif outcome == "unchanged":
                report.unchanged += 1
            progress.file_done(path)
        if prune:
            report.removed = self._prune(paths, seen)
            changed = changed or report.removed > 0
        if changed or not self._listeners_current():
            for listener in self.listeners:
                try:
                    listener.sync(self.store)
                except OSError as exc:  # the previous index stays in use; a re-run syncs again
                    raise write_failure("Schreiben des Stichwortindex", exc, self.settings.data_dir) from exc
        report.seconds = round(time.perf_counter() - started, 3)
        report.embed_seconds = round(report.embed_seconds, 3)
        return report

    def _listeners_current(self) -> bool:
        return all(getattr(listener, "is_current", lambda store: True)(self.store) for listener in self.listeners)

    def _ingest_file(self, path: Path, report: IngestReport, progress: Progress, seen: set[str]) -> str | None:
        corpus_root = self.settings.corpus_dir
        source_id = source_id_for(path, corpus_root)
        seen.add(source_id)
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            raise LoaderError(f"Nicht unterstütztes Dateiformat: {path.suffix or '(ohne Endung)'}")
        fingerprint = file_fingerprint(path, self.settings, self._enricher_versions)
        previous = self.registry.get(source_id)
        if previous and previous.status == "ok" and previous.file_hash == fingerprint:
            if previous.path != str(path):
                self._relocate(previous, path)
            return "unchanged"

        doc = load_file(path, self.settings, corpus_root)
        chunks = self.chunker.run(doc)
        if not chunks:
            raise LoaderError("Keine Textabschnitte gefunden")
        for warning in doc.warnings:
            report.warnings.append({"path": str(path), "message": warning})

        ids = [chunk.id for chunk in chunks]
        old_ids = self.store.ids_for_source(source_id)
        new_chunks = [chunk for chunk in chunks if chunk.id not in old_ids]
        embed_started = time.perf_counter()
        vectors = self.embeddings.embed_passages([chunk.embed_text for chunk in new_chunks]) if new_chunks else []
        report.embed_seconds += time.perf_counter() - embed_started
        progress.chunks_embedded(len(new_chunks))
        report.chunks_embedded += len(new_chunks)
        report.chunks_reused += len(chunks) - len(new_chunks)
        INGEST_CHUNKS.labels("embedded").inc(len(new_chunks))
        INGEST_CHUNKS.labels("reused").inc(len(chunks) - len(new_chunks))

        vector_by_id = {chunk.id: vector for chunk, vector in zip(new_chunks, vectors)}
        doc_meta: dict[str, object] = {}
        if self.enrichers:  # enrichers see every chunk's vector, kept chunks' from the store
            vector_by_id.update(self.store.get_vectors([c.id for c in chunks if c.id in old_ids]))
        for enricher in self.enrichers:
            doc_meta.update(enricher.run(doc, chunks, vector_by_id) or {})

        # Replace safely: mark, add the new chunks, refresh metadata of kept ones, then drop the stale ones.
        # A crash in between leaves the mark, and the next run re-processes this file.
        self.registry.mark_replacing(source_id, str(path))
        self.store.upsert(
            [c.id for c in new_chunks], [c.text for c in new_chunks], [c.metadata for c in new_chunks],
            vectors if new_chunks else [],
        )
        kept = [chunk for chunk in chunks if chunk.id in old_ids]
        self.store.update_metadata([c.id for c in kept], [c.metadata for c in kept])
        stale = sorted(old_ids - set(ids))
        self.store.delete(stale)
        self.registry.save(
            SourceRecord(
                source_id=source_id,
                path=str(path),
                file_hash=fingerprint,
                title=doc.title,
                type=doc.type,
                url=doc.url,
                date=doc.date,
                author=doc.author,
                chunk_count=len(chunks),
                phase=doc_meta.get("phase"),  # type: ignore[arg-type]
                phase_scores=doc_meta.get("phase_scores", {}),  # type: ignore[arg-type]
                warnings=doc.warnings,
            )
        )
        if previous is None and not old_ids:
            return "added"
        return "updated"

    def _relocate(self, record: SourceRecord, path: Path) -> None:
        """The same file under a moved corpus folder (same relative path, same content): only its recorded path
        changes. Without this the chunks kept pointing at the old place, so the source view, `reindex` and the
        evaluation's source matching missed them. Chunks first, then the registry: an interruption leaves the old
        path in the registry and the next run relocates again."""
        ids = sorted(self.store.ids_for_source(record.source_id))
        self.store.update_metadata(ids, [{"path": str(path)}] * len(ids))
        self.registry.save(replace(record, path=str(path)))

    def _prune(self, roots: Sequence[Path], seen: set[str]) -> int:
        """Remove documents that were ingested from below the given roots but whose files are gone."""
        resolved_roots = [root.resolve() for root in roots if root.exists()]
        removed = 0
        for record in self.registry.all():
            if record.source_id in seen:
                continue
            record_path = Path(record.path).resolve()
            under_root = any(record_path == root or root in record_path.parents for root in resolved_roots)
            if under_root and not record_path.exists():
                self.store.delete(sorted(self.store.ids_for_source(record.source_id)))
                self.registry.remove(record.source_id)
                removed += 1
        return removed

    def reindex(self, progress: Progress | None = None) -> IngestReport:
        """Rebuild everything from the files ingested before (e.g. after an embedding model change)."""
        paths = sorted({Path(record.path) for record in self.registry.all()}) or [self.settings.corpus_dir]
        self.store.drop()
        self.registry.clear()
        self.store.collection = self.store._open_collection()
        return self.run(paths, prune=False, progress=progress)

