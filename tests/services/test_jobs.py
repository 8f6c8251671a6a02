"""Jobs in the state database and the content operations they run: uploads, deletion, reindex."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine

from core.settings import Settings
from services.container import Services
from services.jobs import INTERRUPTED, JobStore, JobWorker, metadata
from services.uploads import ContentError, UploadMetadata
from tests.conftest import TRANSCRIPT
from tests.helpers import HashEmbeddings

ARTICLE_NEW = """---
title: Leerstandsmanagement in Auenstadt
---

# Leerstandsmanagement

Auenstadt vermittelt leere Ladenlokale über eine Leerstandsbörse mit 37 gemeldeten Flächen an Gründerinnen.
"""


@pytest.fixture
def job_store(tmp_path: Path) -> JobStore:
    engine = create_engine(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    metadata.create_all(engine)
    return JobStore(engine)


def test_a_job_runs_once_and_records_its_result(job_store: JobStore) -> None:
    calls: list[dict] = []

    def handler(job, progress) -> dict:  # noqa: ANN001
        calls.append(job.params)
        progress(1, 2)
        return {"added": 1}

    job = job_store.create("upload", {"files": []}, created_by="admin")
    worker = JobWorker(job_store, {"upload": handler})
    assert worker.run_next() and not worker.run_next()
    done = job_store.get(job.id)
    assert (done.status, done.result, done.progress_done, done.progress_total) == ("done", {"added": 1}, 1, 2)
    assert done.started_at and done.finished_at and len(calls) == 1


def test_a_failing_handler_ends_failed_with_its_message(job_store: JobStore) -> None:
    def boom(job, progress) -> dict:  # noqa: ANN001
        raise ValueError("kaputt")

    job = job_store.create("reindex", {})
    JobWorker(job_store, {"reindex": boom}).run_next()
    failed = job_store.get(job.id)
    assert failed.status == "failed" and "kaputt" in failed.error


def test_a_job_left_running_by_a_dead_process_is_requeued_once(job_store: JobStore) -> None:
    job = job_store.create("reindex", {})
    assert job_store.claim_next().id == job.id  # the process "dies" here
    assert job_store.recover_interrupted() == [job.id]
    assert job_store.get(job.id).status == "queued"
    job_store.claim_next()  # and dies again
    job_store.recover_interrupted()
    failed = job_store.get(job.id)
    assert (failed.status, failed.error) == ("failed", INTERRUPTED)


@pytest.fixture
def services(tmp_path: Path, tiny_corpus: Path) -> Services:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", corpus_dir=tiny_corpus, max_upload_mb=1)
    services = Services(settings, embeddings=HashEmbeddings(), phase_tagger=None)
    services.pipeline().run([tiny_corpus])
    return services


def _upload(services: Services, files: dict[str, bytes], metadata: UploadMetadata = UploadMetadata()) -> dict:
    job = services.content.queue_upload(list(files.items()), metadata)
    services.job_worker().run_next()
    assert services.jobs.staged_files(job.id) == []  # the staged copies end with the job
    return services.jobs.get(job.id).result


def test_uploads_are_ingested_cited_and_deleted(services: Services) -> None:
    result = _upload(services, {"leerstand.md": ARTICLE_NEW.encode(), "talk.vtt": TRANSCRIPT.encode()},
                     UploadMetadata(type="article", phase="T"))
    assert [f["outcome"] for f in result["files"]] == ["added", "added"] and result["added"] == 2
    source_id = result["files"][0]["source_id"]
    record = services.registry.get(source_id)
    assert record.title == "Leerstandsmanagement in Auenstadt" and record.type == "article"
    hits = services.search.search("Leerstandsbörse Ladenlokale", k=3)
    assert hits[0].metadata["source_id"] == source_id

    again = _upload(services, {"leerstand.md": ARTICLE_NEW.encode()})
    assert again["files"][0]["outcome"] == "unchanged"

    services.content.delete(source_id)
    assert services.registry.get(source_id) is None
    assert not services.store.ids_for_source(source_id)
    assert not Path(record.path).exists()
    assert all(hit.metadata["source_id"] != source_id for hit in services.search.search("Leerstandsbörse", k=8))
    with pytest.raises(ContentError) as missing:
        services.content.delete(source_id)
    assert missing.value.status_code == 404


def test_a_file_the_loaders_refuse_leaves_nothing_behind(services: Services) -> None:
    before = {r.source_id for r in services.registry.all()}
    result = _upload(services, {"kaputt.pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\n%%EOF garbage"})
    entry = result["files"][0]
    assert entry["outcome"] == "failed" and entry["reason"].startswith("kaputt.pdf: PDF ist beschädigt")
    assert result["failed"][0]["path"] == "kaputt.pdf"
    assert {r.source_id for r in services.registry.all()} == before
    assert not any(services.settings.uploads_path.iterdir())
    assert services.search.search("Access Point Betriebskosten", k=1)[0].metadata["title"].startswith("WLAN")


def test_reindex_runs_as_a_job_and_keeps_uploads(services: Services) -> None:
    _upload(services, {"leerstand.md": ARTICLE_NEW.encode()})
    job = services.jobs.create("reindex", {})
    services.job_worker().run_next()
    finished = services.jobs.get(job.id)
    assert finished.status == "done" and finished.result["added"] == 4
    assert len(services.content.sources()) == 4
    assert [r.title for r in services.content.sources(types=["webtalk"])] == ["WebTalk Frequenzmessung"]


def test_the_cli_ingest_and_a_job_never_write_at_once(services: Services) -> None:
    job = services.jobs.create("reindex", {})
    services = Services(services.settings.model_copy(update={"writer_wait_seconds": 0.2}),
                        embeddings=HashEmbeddings(), phase_tagger=None)
    with services.content.lock():
        services.job_worker().run_next()
    failed = services.jobs.get(job.id)
    assert failed.status == "failed" and "anderer Schreibvorgang" in failed.error
