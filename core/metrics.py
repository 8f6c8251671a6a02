"""Prometheus metrics of the process (one registry) and per-stage timing usable from every layer.

`with stage("dense_search"):` records the stage's duration into the histogram `stadtretter_stage_seconds` and, when
a request is being timed (`collect_stages()`), into that request's own timings, which the API writes into its log
line. Contextvars carry the per-request timings into the threads FastAPI runs sync endpoints and streams in.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry()

# Answer stages take milliseconds (search) to tens of seconds (an LLM): buckets span both.
_STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

STAGE_SECONDS = Histogram(
    "stadtretter_stage_seconds", "Duration of one stage of answering or ingesting", ["stage"],
    buckets=_STAGE_BUCKETS, registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "stadtretter_http_requests_total", "HTTP requests by route template and status", ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_SECONDS = Histogram(
    "stadtretter_http_request_duration_seconds", "HTTP request duration until the last body byte, by route",
    ["method", "route"], buckets=_REQUEST_BUCKETS, registry=REGISTRY,
)
ANSWERS = Counter("stadtretter_answers_total", "Answers given, by mode and outcome", ["mode", "outcome"],
                  registry=REGISTRY)
LLM_FALLBACKS = Counter("stadtretter_llm_fallbacks_total", "LLM answers replaced by the extractive answer",
                        registry=REGISTRY)
INGEST_FILES = Counter("stadtretter_ingest_files_total", "Files seen by ingestion, by outcome", ["outcome"],
                       registry=REGISTRY)
INGEST_CHUNKS = Counter("stadtretter_ingest_chunks_total", "Chunks stored by ingestion: embedded or reused",
                        ["kind"], registry=REGISTRY)
INDEX_CHUNKS = Gauge("stadtretter_index_chunks", "Chunks in the store (at scrape time)", registry=REGISTRY)
INDEX_SOURCES = Gauge("stadtretter_index_sources", "Ingested documents (at scrape time)", registry=REGISTRY)
LEXICAL_CHUNKS = Gauge("stadtretter_lexical_index_chunks", "Chunks in the lexical index (at scrape time)",
                       registry=REGISTRY)
LEXICAL_UPDATES = Counter(
    "stadtretter_lexical_updates_total", "Lexical index brought to a newer published version, by how (snapshot/sync)",
    ["how"], registry=REGISTRY,
)
for _how in ("snapshot", "sync"):  # both series exist from the start (0), so a scrape can tell "never"
    LEXICAL_UPDATES.labels(_how)
LEXICAL_VERSION = Gauge("stadtretter_lexical_index_version", "Published index version the lexical index is at",
                        registry=REGISTRY)

JOBS = Gauge("stadtretter_jobs", "Background jobs (upload, import, reindex) queued or running (at scrape time)",
             ["status"], registry=REGISTRY)

_request_stages: ContextVar[dict[str, float] | None] = ContextVar("stadtretter_request_stages", default=None)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time a stage: into the histogram, and into the current request's timings (milliseconds, summed)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        record_stage(name, time.perf_counter() - started)


def record_stage(name: str, seconds: float) -> None:
    """Record a stage measured elsewhere (e.g. an LLM's first token, which arrives inside a loop)."""
    STAGE_SECONDS.labels(name).observe(seconds)
    timings = _request_stages.get()
    if timings is not None:
        timings[name] = timings.get(name, 0.0) + seconds * 1000


@contextmanager
def collect_stages() -> Iterator[dict[str, float]]:
    """Stage timings of everything run inside (also in threads started with a copy of this context)."""
    timings: dict[str, float] = {}
    token = _request_stages.set(timings)
    try:
        yield timings
    finally:
        _request_stages.reset(token)


def render() -> tuple[bytes, str]:
    """The registry in Prometheus text format and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
