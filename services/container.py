"""Composition root: builds the components from one Settings object. The API, the CLI, the evaluation and the
benchmarks all get their parts here, so they are wired the same way."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Final

from argon2 import PasswordHasher

from core.database import Database
from core.embeddings import StadtretterEmbeddings, get_embeddings
from core.metrics import INDEX_CHUNKS, INDEX_SOURCES, JOBS, LEXICAL_CHUNKS
from core.settings import Settings
from core.store import ChunkStore, make_client
from ingest.pipeline import IngestPipeline, IngestReport, Progress
from ingest.registry import Registry
from retriever.answer import ExtractiveAnswerer
from retriever.conversation import ConversationStore
from retriever.lexical import LexicalIndex
from retriever.phases import PhaseTagger
from retriever.qa import AnswerTagger, QAService
from retriever.search import SearchService
from services.accounts import AccountService
from services.api_keys import ApiKeyService
from services.catalogue import PhaseCatalogue
from services.content import ContentService
from services.coverage import CoverageService
from services.dossier import DossierBuilder
from services.question_groups import QuestionReport
from services.question_log import LoggedQA, QuestionLog
from services.feedback import FeedbackStore
from services.jobs import JobStore, JobWorker
from services.source_view import SourceViewService

logger = logging.getLogger("stadtretter.services")


class _Load:
    def __repr__(self) -> str:
        return "LOAD"


LOAD: Final = _Load()  # "build the real one", as opposed to None ("there is none")


@dataclass
class Status:
    """What /healthz reports."""

    store_reachable: bool
    model_loaded: bool
    embedding_model: str | None
    chunks: int
    sources: int
    detail: str | None = None

    @property
    def ready(self) -> bool:
        return self.store_reachable and self.model_loaded


@dataclass
class ReadinessCheck:
    """One check of /readyz, with its German detail."""

    name: str
    ok: bool
    detail: str


class Services:
    """Every component is built on first use (the embedding model loads only when something needs it). Tests and
    tools pass their own collaborators to the constructor; `reset()` drops what depends on the index."""

    _INDEX_PARTS = (
        "store", "registry", "lexical", "search", "answerer", "catalogue", "qa", "source_view", "dossiers", "coverage",
    )

    def __init__(
        self,
        settings: Settings,
        *,
        embeddings: StadtretterEmbeddings | None = None,
        lexical: LexicalIndex | None = None,
        phase_tagger: PhaseTagger | None | _Load = LOAD,
    ) -> None:
        self.settings = settings
        self._embeddings = embeddings
        self._lexical = lexical
        self._phase_tagger = phase_tagger
        self._worker: JobWorker | None = None

    @property
    def embeddings(self) -> StadtretterEmbeddings:
        if self._embeddings is None:
            self._embeddings = get_embeddings(self.settings)
        return self._embeddings

    @property
    def model_loaded(self) -> bool:
        return self._embeddings is not None

    @cached_property
    def store(self) -> ChunkStore:
        return ChunkStore(self.settings, self.embeddings.model_name, self.embeddings.dimension)

    @cached_property
    def registry(self) -> Registry:
        return Registry(self.settings.registry_path)

    @cached_property
    def lexical(self) -> LexicalIndex:
        if self._lexical is not None:
            return self._lexical
        index = LexicalIndex(self.settings.lexical_path)
        index.load()
        return index

    @cached_property
    def phase_tagger(self) -> PhaseTagger | None:
        if not isinstance(self._phase_tagger, _Load):
            return self._phase_tagger
        return PhaseTagger.load(self.embeddings)

    def pipeline(self) -> IngestPipeline:
        return IngestPipeline(
            self.settings, self.embeddings, self.store, self.registry,
            enrichers=self._enrichers(), listeners=[self.lexical, self.coverage],  # coverage reads the lexical index
        )

    def _enrichers(self) -> list:
        return [self.phase_tagger] if self.phase_tagger is not None else []

    @cached_property
    def search(self) -> SearchService:
        return SearchService(self.embeddings, self.store, self.lexical, default_mode=self.settings.search_mode)

    @cached_property
    def answerer(self) -> ExtractiveAnswerer:
        return ExtractiveAnswerer(
            self.search, self.embeddings, k=self.settings.top_k,
            rerank_depth=self.settings.rerank_depth, rerank_weight=self.settings.rerank_weight,
            cache_size=self.settings.sentence_cache_size,
        )

    @cached_property
    def qa(self) -> QAService:
        """Questions and answers (extractive or LLM, streamed or not, with conversations): API and CLI use this."""
        conversations = ConversationStore(
            self.settings.app_db_path, self.settings.conversation_retention_days, self.settings.conversation_max_turns
        )
        return QAService(self.settings, self.answerer, self.embeddings, conversations, self._answer_tagger())

    def _answer_tagger(self) -> AnswerTagger | None:
        """The phase tagger when it can tag answers; None otherwise (answers then carry no phase)."""
        try:
            tagger = self.phase_tagger
        except Exception as exc:  # noqa: BLE001 - e.g. missing phase definitions must not stop answers
            logger.error("Phasen-Zuordnung nicht verfügbar: %s", exc)
            return None
        return tagger if callable(getattr(tagger, "tag_answer", None)) else None

    @cached_property
    def catalogue(self) -> PhaseCatalogue:
        return PhaseCatalogue(self.store, self.registry, self.lexical)

    @cached_property
    def source_view(self) -> SourceViewService:
        return SourceViewService(self.registry, self.store, self.settings.corpus_dir, self.settings.uploads_path)

    @cached_property
    def dossiers(self) -> DossierBuilder:
        """Material dossiers for trainers; with a configured language model they get briefings."""
        chat_model = self.qa.chat_model if self.settings.llm_backend != "none" else None
        return DossierBuilder(self.answerer, self.registry, chat_model)

    @cached_property
    def coverage(self) -> CoverageService:
        return CoverageService(self.store, self.lexical, self.registry, self.settings.data_dir / "coverage.json")

    @cached_property
    def feedback(self) -> FeedbackStore:
        return FeedbackStore(self.settings.app_db_path)

    @cached_property
    def database(self) -> Database:
        """The state database. SQLite (the default) is migrated on first use; another database (PostgreSQL) must be
        migrated by `stadtretter db upgrade` first, otherwise this refuses with a German message."""
        database = Database(self.settings.state_database_url)
        database.ensure_current(apply=database.is_sqlite)
        return database

    @cached_property
    def question_log(self) -> QuestionLog:
        return QuestionLog(self.database.engine, self.settings.question_log_days, self.embeddings)

    @property
    def question_report(self) -> QuestionReport:
        return QuestionReport(self.question_log, self.feedback, self.settings.question_group_distance)

    @property
    def public_qa(self) -> QAService | LoggedQA:
        """QAService for the public API: each question is logged unless STADTRETTER_QUESTION_LOG=false. An
        unusable state database costs the log, never the answer."""
        if not self.settings.question_log:
            return self.qa
        try:
            return LoggedQA(self.qa, self.question_log)
        except Exception as exc:  # noqa: BLE001 - e.g. an unmigrated PostgreSQL database
            logger.error("Fragenprotokoll nicht verfügbar: %s", exc)
            return self.qa

    def log_rating(self, question: str, rating: str, comment: str | None) -> None:
        """A participant's rating also goes to the question log; a failing log never loses the feedback."""
        if not self.settings.question_log:
            return
        try:
            self.question_log.rate(question, rating, comment)
        except Exception as exc:  # noqa: BLE001
            logger.error("Bewertung nicht im Fragenprotokoll vermerkt: %s", exc)

    @cached_property
    def accounts(self) -> AccountService:
        hasher = PasswordHasher(
            time_cost=self.settings.password_hash_iterations, memory_cost=self.settings.password_hash_memory_kib
        )
        return AccountService(self.database, timedelta(hours=self.settings.session_hours), hasher)

    @cached_property
    def api_keys(self) -> ApiKeyService:
        return ApiKeyService(self.database)

    @cached_property
    def content(self) -> ContentService:
        """Uploads, deletion, web import and reindex under the writer lock (admin API, Verwaltung, CLI)."""
        return ContentService(self)

    @cached_property
    def jobs(self) -> JobStore:
        return JobStore(self.database.engine)

    def job_worker(self) -> JobWorker:
        """A worker running upload, import and reindex jobs (tests call `run_next` on it directly)."""
        content = self.content
        handlers = {"upload": content.ingest_uploads, "import": content.import_url, "reindex": content.reindex}
        return JobWorker(self.jobs, handlers)

    def start_worker(self) -> None:
        """Start this process's background worker (the server does, at start)."""
        if self._worker is None:
            self._worker = self.job_worker()
            self._worker.start()

    def stop_worker(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker = None

    def wake_worker(self) -> None:
        """A job was queued: the worker looks now instead of at its next poll."""
        if self._worker is not None:
            self._worker.wake()

    def status(self) -> Status:
        """Store reachable, model loaded, how much is indexed. Reports problems instead of raising them."""
        model_loaded = self.model_loaded  # before opening the store, which loads the model
        try:
            store = self.store
            reachable = store.heartbeat()
            chunks = store.count() if reachable else 0
            detail = None
        except Exception as exc:  # noqa: BLE001 - this exists to say what is wrong
            reachable, chunks, detail = False, 0, str(exc)
        return Status(
            store_reachable=reachable,
            model_loaded=model_loaded,
            embedding_model=self.embeddings.model_name if model_loaded else None,
            chunks=chunks,
            sources=len(self.registry.all()),
            detail=detail,
        )

    def readiness(self) -> list[ReadinessCheck]:
        """What /readyz reports: store reachable, model loaded, data directory writable, lexical index in step with
        the store. German details; never raises."""
        status = self.status()
        checks = [
            ReadinessCheck("store", status.store_reachable, f"Chroma erreichbar, {status.chunks} Abschnitte"
                           if status.store_reachable else f"Chroma nicht erreichbar: {status.detail or 'keine Antwort'}"),
            ReadinessCheck("model", status.model_loaded, f"Embedding-Modell {status.embedding_model} geladen"
                           if status.model_loaded else "Das Embedding-Modell ist noch nicht geladen"),
            self._data_dir_check(),
        ]
        if status.store_reachable:
            checks.append(self._lexical_check(status.chunks))
        else:
            checks.append(ReadinessCheck("lexical_index", False, "Ohne erreichbaren Store nicht prüfbar"))
        return checks

    def _data_dir_check(self) -> ReadinessCheck:
        data_dir = self.settings.data_dir
        try:
            with tempfile.NamedTemporaryFile(dir=data_dir, prefix=".readyz-") as probe:
                probe.write(b"ok")
                probe.flush()
                os.fsync(probe.fileno())
        except OSError as exc:
            # no path in the detail: /readyz is public (load balancers probe it without credentials)
            return ReadinessCheck("data_dir", False, f"Datenordner nicht beschreibbar: {exc.strerror or exc}")
        return ReadinessCheck("data_dir", True, "Datenordner beschreibbar")

    def _lexical_check(self, chunks: int) -> ReadinessCheck:
        try:
            lexical = self.lexical
            current = lexical.is_current(self.store, chunks)
        except Exception as exc:  # noqa: BLE001 - a broken index is what this reports
            return ReadinessCheck("lexical_index", False, f"Stichwortindex nicht lesbar: {exc}")
        if current:
            return ReadinessCheck("lexical_index", True, f"Stichwortindex passt zum Store ({chunks} Abschnitte)")
        if chunks == 0 and not lexical.ids:  # a new instance: nothing ingested yet, no index built yet
            return ReadinessCheck("lexical_index", True, "Noch nichts eingelesen: Store und Stichwortindex sind leer")
        return ReadinessCheck(
            "lexical_index", False,
            f"Stichwortindex ({len(lexical.ids)} Abschnitte) weicht vom Store ({chunks}) ab: läuft ein Einlesen? "
            "Sonst 'stadtretter ingest' erneut ausführen.",
        )

    def observe_index(self) -> None:
        """Index size into the gauges, at scrape time (nothing is set when the store is unreachable)."""
        status = self.status()
        if status.store_reachable:
            INDEX_CHUNKS.set(status.chunks)
            INDEX_SOURCES.set(status.sources)
            LEXICAL_CHUNKS.set(len(self.lexical.ids))

    def observe_jobs(self) -> None:
        """Queued and running jobs into the gauge, at scrape time (nothing is set when the state DB fails)."""
        try:
            queued, running = self.jobs.queue_length(), self.jobs.running_count()
        except Exception as exc:  # noqa: BLE001 - a scrape must still show everything else
            logger.error("Auftragszahlen für die Metriken nicht lesbar: %s", exc)
            return
        JOBS.labels("queued").set(queued)
        JOBS.labels("running").set(running)

    def reset(self) -> None:
        """Forget the store, registry, lexical index and everything built on them: the next use opens the index
        anew (after `reindex` swapped it)."""
        for name in self._INDEX_PARTS:
            vars(self).pop(name, None)  # how a cached_property is cleared

    def reindex(self, progress: Progress | None = None) -> IngestReport:
        """Rebuild into a side collection and registry, then swap: a failed reindex leaves the old index intact."""
        paths = [Path(p) for p in sorted({r.path for r in Registry(self.settings.registry_path).all()})]
        side = self.settings.model_copy(update={"collection": f"{self.settings.collection}-reindex"})
        side_registry_path = self.settings.data_dir / "registry-reindex.sqlite"
        side_registry_path.unlink(missing_ok=True)
        client = make_client(self.settings)  # not self.store: opening the old collection is refused after a model change
        try:
            client.delete_collection(side.collection)  # left over from an interrupted reindex
        except Exception:  # none there
            pass
        side_store = ChunkStore(side, self.embeddings.model_name, self.embeddings.dimension, client=client)
        side_lexical = LexicalIndex(self.settings.data_dir / "lexical-reindex")
        pipeline = IngestPipeline(
            side, self.embeddings, side_store, Registry(side_registry_path),
            enrichers=self._enrichers(), listeners=[side_lexical],
        )
        report = pipeline.run(paths or [self.settings.corpus_dir], progress=progress)
        if report.failed and not (report.added or report.updated):
            return report  # nothing usable was built: keep the old index
        try:
            client.delete_collection(self.settings.collection)
        except Exception:  # the old collection may not exist
            pass
        side_store.collection.modify(name=self.settings.collection)
        os.replace(side_registry_path, self.settings.registry_path)
        shutil.rmtree(self.settings.lexical_path, ignore_errors=True)
        os.replace(side_lexical.path, self.settings.lexical_path)
        self.reset()
        return report
