"""Content management: what the admin API, the Verwaltung page and `stadtretter import` do to the index.

Every change runs under the writer lock (services/writer_lock.py: a file lock on one machine, a Redis lock shared by
all machines when STADTRETTER_REDIS_URL is set); uploaded files travel with their job in the state database, so the
worker may run on another machine than the API process that took them. Results have the shape of
`stadtretter ingest --json` plus `files`, one entry per file or page: name, source_id, outcome
(added/updated/unchanged/failed) and, when failed, the German reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.loaders import source_id_for
from ingest.pipeline import IngestReport
from ingest.registry import SourceRecord
from services.jobs import Job, JobFailed
from services.uploads import ContentError, UploadMetadata, UploadStore
from services.web_import import FetchError, WebImporter
from services.writer_lock import WriterBusy, redis_writer_lock, writer_lock

if TYPE_CHECKING:
    from services.container import Services

ProgressCallback = Callable[[int, int], None]
DELETE_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class NamedFile:
    """A stored file and the name the admin knows it by (upload file name or page URL)."""

    name: str
    path: Path


class _JobProgress:
    """ingest.pipeline.Progress → (done, total) callback."""

    def __init__(self, callback: ProgressCallback | None, offset: int = 0, total: int | None = None) -> None:
        self.callback, self.offset, self.total, self.done = callback, offset, total, 0

    def start(self, total_files: int) -> None:
        self.total = self.total or total_files
        self._tell()

    def file_done(self, path: Path) -> None:
        self.done += 1
        self._tell()

    def chunks_embedded(self, count: int) -> None: ...

    def _tell(self) -> None:
        if self.callback is not None:
            self.callback(self.offset + self.done, self.total or 0)


class ContentService:
    def __init__(self, services: "Services") -> None:
        self.services = services
        self.settings = services.settings
        self.uploads = UploadStore(self.settings.uploads_path, int(self.settings.max_upload_mb * 1024 * 1024))

    def lock(self, wait_seconds: float | None = None, on_wait: Callable[[str], None] | None = None):  # noqa: ANN201
        wait = self.settings.writer_wait_seconds if wait_seconds is None else wait_seconds
        if self.settings.redis_url:
            return redis_writer_lock(self.services.redis, f"stadtretter:writer-lock:{self.settings.collection}",
                                     self.settings.worker_heartbeat_seconds, wait, on_wait)
        return writer_lock(self.settings.data_dir, wait, on_wait)

    # --- sources ------------------------------------------------------------------------------------------
    def sources(self, types: Sequence[str] = (), phases: Sequence[str] = ()) -> list[SourceRecord]:
        return [
            record for record in self.services.registry.ingested()
            if (not types or record.type in types) and (not phases or record.phase in phases)
        ]

    def origin(self, record: SourceRecord) -> str:
        """upload, import or corpus (ingested from a folder by `stadtretter ingest`)."""
        path = Path(record.path)
        if self.uploads.owns(path):
            return "upload"
        return "import" if _below(path, self.settings.imports_path) else "corpus"

    def delete(self, source_id: str) -> SourceRecord:
        """Remove a document: its chunks, lexical entries, registry row and stored upload or import."""
        registry = self.services.registry
        if registry.get(source_id) is None:
            raise ContentError(f"Quelle „{source_id}“ nicht gefunden", 404)
        try:
            with self.lock(DELETE_WAIT_SECONDS):
                record = registry.get(source_id)
                if record is None:  # removed by another writer meanwhile
                    raise ContentError(f"Quelle „{source_id}“ nicht gefunden", 404)
                store = self.services.store
                store.delete(sorted(store.ids_for_source(source_id)))
                registry.remove(source_id)
                self.services.lexical_publisher.sync(store)
                self._remove_stored(Path(record.path))
        except WriterBusy as exc:
            raise ContentError(str(exc), 409) from None
        return record

    def _remove_stored(self, path: Path) -> None:
        """The stored copy of an upload or import; files of the corpus folder are the admin's and stay."""
        if self.uploads.owns(path):
            self.uploads.remove(path)
        elif _below(path, self.settings.imports_path):
            importer_folder = path.resolve().parent
            for child in importer_folder.iterdir():
                child.unlink(missing_ok=True)
            importer_folder.rmdir()

    # --- queueing (in the request: cheap checks, then a job) -------------------------------------------------
    def queue_upload(self, files: Sequence[tuple[str | None, bytes]], metadata: UploadMetadata,
                     created_by: str | None = None) -> Job:
        """Check every file, then queue one job with the files staged in the state database (the worker stores
        them). One refused file refuses the request: nothing is queued, and the message names each refused file."""
        if not files:
            raise ContentError("Keine Datei erhalten: bitte mindestens eine Datei im Feld „files“ senden")
        if len(files) > self.settings.max_upload_files:
            raise ContentError(f"Feld „files“: höchstens {self.settings.max_upload_files} Dateien auf einmal", 413)
        metadata = metadata.validated()
        if metadata.title and len(files) > 1:
            raise ContentError("Feld „title“: ein Titel gilt nur für eine einzelne Datei")
        checked, problems = [], []
        for raw_name, data in files:
            try:
                checked.append((self.uploads.check(raw_name, data), data))
            except ContentError as exc:
                problems.append(exc)
        if problems:
            status = problems[0].status_code if len({p.status_code for p in problems}) == 1 else 422
            raise ContentError("; ".join(str(p) for p in problems), status)
        params = {"files": [{"name": name, "size": len(data)} for name, data in checked], "metadata": asdict(metadata)}
        return self._queue("upload", params, created_by, checked)

    def queue_import(self, url: str, created_by: str | None = None) -> Job:
        url = (url or "").strip()
        if not url:
            raise ContentError("Feld „url“: bitte die Adresse einer Seite, Sitemap oder eines Feeds angeben")
        importer = WebImporter(self.settings)
        try:
            importer.check_address(url)
        except FetchError as exc:
            raise ContentError(f"Feld „url“: {exc}") from None
        finally:
            importer.close()
        return self._queue("import", {"url": url}, created_by)

    def queue_reindex(self, created_by: str | None = None) -> Job:
        return self._queue("reindex", {}, created_by)

    def _queue(self, kind: str, params: dict[str, Any], created_by: str | None,
               files: Sequence[tuple[str, bytes]] = ()) -> Job:
        job = self.services.jobs.create(kind, params, created_by, files)  # type: ignore[arg-type]
        self.services.dispatch(job)
        return job

    # --- jobs ---------------------------------------------------------------------------------------------
    def ingest_uploads(self, job: Job, progress: ProgressCallback) -> dict[str, Any]:
        """Store the job's staged files in this machine's upload folder, then ingest them."""
        staged = self.services.jobs.staged_files(job.id)
        if len(staged) != len(job.params["files"]):
            raise JobFailed("Die hochgeladenen Dateien dieses Auftrags sind nicht mehr vorhanden")
        metadata = UploadMetadata(**job.params.get("metadata", {}))
        files = [NamedFile(name, self.uploads.store(name, data, metadata).path) for name, data in staged]
        with self.lock():
            result = self._ingest(files, _JobProgress(progress))
        for outcome, named in zip(result["files"], files):
            if outcome["outcome"] == "failed" and self.services.registry.get(outcome["source_id"]) is None:
                self.uploads.remove(named.path)  # refused by the loaders: nothing of it stays
        return result

    def reindex(self, progress: ProgressCallback) -> dict[str, Any]:
        with self.lock():
            report = self.services.reindex(progress=_JobProgress(progress))
        return report.to_dict()

    def import_url(self, url: str, progress: ProgressCallback) -> dict[str, Any]:
        """Fetch (without the lock: readers and writers go on meanwhile), then ingest under the lock."""
        importer = WebImporter(self.settings)
        try:
            plan = importer.fetch(url, progress=lambda done, total: progress(done, 2 * total))
        except FetchError as exc:
            raise JobFailed(str(exc)) from None
        finally:
            importer.close()
        files = [NamedFile(page.url, page.path) for page in plan.pages]
        with self.lock():
            result = self._ingest(files, _JobProgress(progress, offset=len(files), total=2 * len(files)))
        for page_url, reason in plan.failed:
            result["failed"].append({"path": page_url, "reason": reason})
            result["files"].append({"name": page_url, "source_id": None, "outcome": "failed", "reason": reason})
        result["warnings"] = [{"path": url, "message": message} for message in plan.warnings] + result["warnings"]
        for outcome, named in zip(result["files"], files):
            if outcome["outcome"] == "failed" and self.services.registry.get(outcome["source_id"]) is None:
                self._remove_stored(named.path)
        if files and not any(entry["outcome"] != "failed" for entry in result["files"]):
            raise JobFailed(f"Keine Seite von „{url}“ konnte eingelesen werden", result)
        return result

    def _ingest(self, files: Sequence[NamedFile], progress: _JobProgress) -> dict[str, Any]:
        """Run the pipeline over the files; per-file outcomes from the registry before and after."""
        corpus = self.settings.corpus_dir
        registry = self.services.registry
        ids = [source_id_for(named.path, corpus) for named in files]
        before = {source_id: registry.get(source_id) for source_id in ids}
        report: IngestReport = self.services.pipeline().run([named.path for named in files], progress=progress)
        reasons = {failed.path: failed.reason for failed in report.failed}
        outcomes = []
        for named, source_id in zip(files, ids):
            after = registry.get(source_id)
            reason = reasons.get(str(named.path))
            previous = before[source_id]
            if reason is not None:
                outcome = "failed"
            elif previous is None or previous.status != "ok":
                outcome = "added"
            elif after is not None and after.file_hash == previous.file_hash:
                outcome = "unchanged"
            else:
                outcome = "updated"
            entry = {"name": named.name, "source_id": source_id, "outcome": outcome}
            if reason is not None:
                entry["reason"] = f"{named.name}: {reason}"
            outcomes.append(entry)
        result = report.to_dict()
        by_path = {str(named.path): named.name for named in files}
        result["failed"] = [{"path": by_path.get(f.path, f.path), "reason": f.reason} for f in report.failed]
        result["warnings"] = [{"path": by_path.get(w["path"], w["path"]), "message": w["message"]}
                              for w in report.warnings]
        result["files"] = outcomes
        return result


def _below(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True
