"""Jobs in the state database and the content operations they run: uploads, deletion, reindex."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from core.database import Database
from core.settings import Settings, get_settings
from services.container import Services
from services.jobs import INTERRUPTED, JobStore, JobWorker, metadata
from services.uploads import ContentError, UploadMetadata
from stadtretter.cli import app
from tests.conftest import TRANSCRIPT, free_port
from tests.helpers import HashEmbeddings

ARTICLE_NEW = """---
title: Leerstandsmanagement in Auenstadt
---

# Leerstandsmanagement

Auenstadt vermittelt leere Ladenlokale über eine Leerstandsbörse mit 37 gemeldeten Flächen an Gründerinnen.
"""


@pytest.fixture
def job_store(tmp_path: Path) -> JobStore:
    engine = Database(f"sqlite:///{tmp_path / 'state.sqlite3'}").engine  # foreign keys on, as in the app
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


def test_a_delivered_job_runs_again_once_when_its_worker_died_then_fails(job_store: JobStore) -> None:
    """The shared queue delivers a dead worker's job again: `claim` counts the attempts."""
    job = job_store.create("upload", {"files": [{"name": "a.md"}]}, files=[("a.md", b"# A")])
    other = job_store.create("reindex", {})
    assert job_store.queue_length() == 2
    assert job_store.staged_files(job.id) == [("a.md", b"# A")]
    job_store.progress(job.id, 1, 2)
    first = job_store.claim(job.id, job.dispatch_token)
    assert (first.status, first.attempts, first.progress_done) == ("running", 1, 0)
    assert job_store.queue_length() == 1
    job_store.progress(job.id, 1, 2)  # the worker dies here; the queue delivers the job again
    second = job_store.claim(job.id, job.dispatch_token)
    assert (second.status, second.attempts, second.progress_done) == ("running", 2, 0)
    assert job_store.claim(job.id, job.dispatch_token) is None  # and dies again: no third attempt
    failed = job_store.get(job.id)
    assert (failed.status, failed.error) == ("failed", INTERRUPTED)
    assert job_store.staged_files(job.id) == []  # staged files end with the job
    assert job_store.claim("unbekannt", "x") is None
    worker = JobWorker(job_store, {"reindex": lambda job, progress: {}})
    worker.run_delivered(other.id, other.dispatch_token)
    assert job_store.get(other.id).status == "done" and job_store.claim(other.id, other.dispatch_token) is None


def test_a_job_waiting_too_long_is_sent_again_and_its_old_message_ignored(job_store: JobStore) -> None:
    job = job_store.create("reindex", {})
    assert job_store.redispatch_waiting(older_than_seconds=60) == []  # just queued: its message is on its way
    [(job_id, token)] = job_store.redispatch_waiting(older_than_seconds=0)
    assert job_id == job.id and token != job.dispatch_token
    assert job_store.claim(job.id, job.dispatch_token) is None  # the old message, if it still comes
    assert job_store.claim(job.id, token).status == "running"
    assert job_store.redispatch_waiting(older_than_seconds=0) == []  # running jobs are not sent again


@pytest.fixture
def services(tmp_path: Path, tiny_corpus: Path) -> Services:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", corpus_dir=tiny_corpus, max_upload_mb=1)
    services = Services(settings, embeddings=HashEmbeddings(), phase_tagger=None)
    services.pipeline().run([tiny_corpus])
    return services


def _upload(services: Services, files: dict[str, bytes], metadata: UploadMetadata = UploadMetadata()) -> dict:
    job = services.content.queue_upload(list(files.items()), metadata)
    assert [name for name, _ in services.jobs.staged_files(job.id)] == list(files)  # the worker stores them
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


def test_with_redis_unreachable_the_upload_is_refused_with_503_and_its_job_failed(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", redis_url=f"redis://127.0.0.1:{free_port()}/0")
    services = Services(settings, embeddings=HashEmbeddings(), phase_tagger=None)
    with pytest.raises(ContentError) as refused:
        services.content.queue_upload([("a.md", ARTICLE_NEW.encode())], UploadMetadata())
    assert refused.value.status_code == 503
    assert "Auftragswarteschlange (Redis) ist nicht erreichbar" in str(refused.value)
    [job] = services.jobs.recent()
    assert job.status == "failed" and services.jobs.staged_files(job.id) == [] and services.jobs.queue_length() == 0


def test_settings_refuse_a_redis_url_of_another_scheme_and_share_limits_through_redis() -> None:
    with pytest.raises(ValidationError, match="STADTRETTER_REDIS_URL muss mit redis://"):
        Settings(_env_file=None, redis_url="http://127.0.0.1:6379")
    assert Settings(_env_file=None).limits_storage_uri == "memory://"
    assert Settings(_env_file=None, redis_url="redis://r:6379/0").limits_storage_uri == "redis://r:6379/0"
    explicit = Settings(_env_file=None, redis_url="redis://r:6379/0", rate_limit_storage_uri="redis://other:6379")
    assert explicit.limits_storage_uri == "redis://other:6379"


def test_the_worker_command_without_redis_says_why_in_german(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("STADTRETTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("STADTRETTER_REDIS_URL", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["worker"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2 and "STADTRETTER_REDIS_URL ist nicht gesetzt" in result.output
