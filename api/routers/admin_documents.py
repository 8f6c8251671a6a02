"""Content management for admins: upload documents, follow jobs, list and delete sources, import from the web,
reindex. Uploads, imports and reindex answer 202 with a job at once; the work runs in the background worker."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, UploadFile
from pydantic import BaseModel, Field

from api.auth import AdminDep
from api.deps import ServicesDep
from api.schemas import SourceSummary
from core.vocabulary import Phase, SourceType
from services.jobs import Job
from services.uploads import ContentError, UploadMetadata

class ErrorOut(BaseModel):
    detail: str | list[dict[str, Any]] = Field(description="deutsche Meldung, nennt Datei oder Feld")
    request_id: str | None = None


def _refusal(description: str) -> dict:
    return {"model": ErrorOut, "description": description}


# Documented for clients (and Schemathesis): who may call, and the German refusals of the content checks.
ADMIN_RESPONSES: dict[int | str, dict] = {
    401: {"description": "Nicht angemeldet, oder der API-Schlüssel ist ungültig"},
    403: {"description": "Die Rolle Administrator*in oder das CSRF-Token fehlt"},
    422: _refusal("Ungültige Eingabe (Feld oder Datei genannt)"),
}
UPLOAD_REFUSALS: dict[int | str, dict] = {
    413: _refusal("Datei größer als STADTRETTER_MAX_UPLOAD_MB oder zu viele Dateien"),
    415: _refusal("Dateityp nicht unterstützt oder Inhalt passt nicht zur Endung"),
}
NOT_FOUND: dict[int | str, dict] = {404: _refusal("Nicht gefunden")}
BUSY: dict[int | str, dict] = {409: _refusal("Ein anderer Schreibvorgang läuft noch")}
SourceIdPath = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._-]+$")]
JobIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]

router = APIRouter(prefix="/admin", tags=["Verwaltung"], responses=ADMIN_RESPONSES)


class JobProgress(BaseModel):
    done: int
    total: int


class JobOut(BaseModel):
    id: str
    kind: str = Field(description="upload | import | reindex")
    status: str = Field(description="queued | running | done | failed")
    progress: JobProgress
    result: dict[str, Any] | None = Field(
        None, description="wie `stadtretter ingest --json`, dazu `files`: je Datei name, source_id, outcome, reason"
    )
    error: str | None = None
    attempts: int = Field(0, description="begonnene Versuche; ein unterbrochener Auftrag läuft höchstens zweimal")
    files: list[str] = Field(default_factory=list, description="Dateinamen bzw. URL des Auftrags")
    created_by: str | None = None
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None


class JobsOut(BaseModel):
    jobs: list[JobOut]


class ImportRequest(BaseModel):
    url: str = Field(min_length=1, max_length=2000, description="Seite, Sitemap oder RSS/Atom-Feed (http/https)")


class AdminSource(SourceSummary):
    origin: str = Field(description="upload | import | corpus")
    warnings: list[str] = Field(default_factory=list)


class AdminSourcesOut(BaseModel):
    sources: list[AdminSource]


class DeletedOut(BaseModel):
    source_id: str
    title: str | None


def _time(value: float | None) -> str | None:
    return dt.datetime.fromtimestamp(value, dt.UTC).isoformat(timespec="seconds") if value else None


def _job_out(job: Job) -> JobOut:
    names = [item["name"] for item in job.params.get("files", [])]
    if "url" in job.params:
        names.append(job.params["url"])
    return JobOut(
        id=job.id, kind=job.kind, status=job.status, progress=JobProgress(done=job.progress_done,
        total=job.progress_total), result=job.result, error=job.error, attempts=job.attempts, files=names,
        created_by=job.created_by,
        created_at=_time(job.created_at) or "", started_at=_time(job.started_at), finished_at=_time(job.finished_at),
    )  # fmt: skip


@router.post("/documents", status_code=202, response_model=JobOut, summary="Dokumente hochladen (Auftrag)",
             responses=UPLOAD_REFUSALS)
def upload_documents(
    principal: AdminDep,
    services: ServicesDep,
    files: Annotated[list[UploadFile], File(description="eine oder mehrere Dateien")],
    type: Annotated[str | None, Form(description="article | webtalk | course")] = None,  # noqa: A002
    title: Annotated[str | None, Form()] = None,
    date: Annotated[str | None, Form(description="JJJJ-MM-TT")] = None,
    url: Annotated[str | None, Form(description="Link für die Quellenangabe")] = None,
    phase: Annotated[str | None, Form(description="E | K | T")] = None,
) -> JobOut:
    limit = int(services.settings.max_upload_mb * 1024 * 1024)
    received = [(upload.filename, upload.file.read(limit + 1)) for upload in files if upload.filename != ""]
    metadata = UploadMetadata(type=type, title=title, date=date, url=url, phase=phase)
    return _job_out(services.content.queue_upload(received, metadata, created_by=principal.name))


@router.get("/jobs", response_model=JobsOut, summary="Aufträge (neueste zuerst)")
def list_jobs(principal: AdminDep, services: ServicesDep,
              limit: Annotated[int, Query(ge=1, le=200)] = 50) -> JobsOut:  # fmt: skip
    return JobsOut(jobs=[_job_out(job) for job in services.jobs.recent(limit)])


@router.get("/jobs/{job_id}", response_model=JobOut, summary="Ein Auftrag mit Fortschritt und Ergebnis je Datei",
            responses=NOT_FOUND)
def get_job(job_id: JobIdPath, principal: AdminDep, services: ServicesDep) -> JobOut:
    job = services.jobs.get(job_id)
    if job is None:
        raise ContentError(f"Auftrag „{job_id}“ nicht gefunden", 404)
    return _job_out(job)


@router.get("/documents", response_model=AdminSourcesOut, summary="Eingelesene Dokumente mit Herkunft")
def list_documents(
    principal: AdminDep,
    services: ServicesDep,
    type: Annotated[list[SourceType] | None, Query(description="article | webtalk | course")] = None,  # noqa: A002
    phase: Annotated[list[Phase] | None, Query(description="E | K | T")] = None,
) -> AdminSourcesOut:
    content = services.content
    return AdminSourcesOut(sources=[
        AdminSource(
            source_id=r.source_id, title=r.title, type=r.type, url=r.url, date=r.date, author=r.author,
            chunk_count=r.chunk_count, phase=r.phase, phase_scores=r.phase_scores, origin=content.origin(r),
            warnings=r.warnings,
        )
        for r in content.sources(type or [], phase or [])
    ])


@router.delete("/documents/{source_id}", response_model=DeletedOut, summary="Dokument entfernen",
               responses={**NOT_FOUND, **BUSY})
def delete_document(source_id: SourceIdPath, principal: AdminDep, services: ServicesDep) -> DeletedOut:
    record = services.content.delete(source_id)
    return DeletedOut(source_id=record.source_id, title=record.title)


@router.post("/imports", status_code=202, response_model=JobOut, summary="Von der Website importieren (Auftrag)")
def import_url(body: ImportRequest, principal: AdminDep, services: ServicesDep) -> JobOut:
    return _job_out(services.content.queue_import(body.url, created_by=principal.name))


@router.post("/reindex", status_code=202, response_model=JobOut, summary="Index neu aufbauen (Auftrag)")
def reindex(principal: AdminDep, services: ServicesDep) -> JobOut:
    return _job_out(services.content.queue_reindex(created_by=principal.name))
