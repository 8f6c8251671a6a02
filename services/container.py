"""Composition root: builds the components from one Settings object. The API, the CLI, the evaluation and the
benchmarks all get their parts here, so they are wired the same way."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Final

from argon2 import PasswordHasher
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from redis import Redis

from core.database import Database, DatabaseUnusable
from core.embeddings import StadtretterEmbeddings, get_embeddings
from core.metrics import INDEX_CHUNKS, INDEX_SOURCES, LEXICAL_CHUNKS
from core.settings import Settings
from core.store import ChunkStore, make_client
from ingest.pipeline import IngestPipeline, IngestReport, Progress
from ingest.registry import Registry
from retriever.answer import ExtractiveAnswerer
from retriever.conversation import ConversationStore
from retriever.lexical import LexicalIndex
from retriever.phases import PhaseTagger
from retriever.qa import AnswerTagger, QAService
from retriever.replication import LexicalFollower, LexicalPublisher, VersionLog
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
from services.legacy_state import import_legacy_files
from services.job_queue import LOST_AFTER_SECONDS, RedisJobQueue
from services.jobs import Handler, Job, JobStore, JobWorker
from services.uploads import ContentError
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
        self._follower: LexicalFollower | None = None

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
        return Registry(self.database.engine, self.settings.collection)

    @cached_property
    def lexical(self) -> LexicalIndex:
        if self._lexical is not None:
            return self._lexical
        index = LexicalIndex(self.settings.lexical_path)
        index.load()
        return index

    @cached_property
    def index_versions(self) -> VersionLog:
        """Published index versions and lexical snapshots (state database), for replicas on several machines."""
        return VersionLog(self.database.engine, self.settings.lexical_snapshots_keep)

    @property
    def lexical_publisher(self) -> LexicalPublisher:
        """Syncs the lexical index after a commit to the store and publishes the new version: every writer uses it."""
        return LexicalPublisher(self.lexical, self.index_versions, self.settings.publish_lexical_snapshots)

    def start_follower(self) -> None:
        """At server start: bring the lexical index to the newest published version once (a new replica installs the
        snapshot instead of analysing every chunk), then follow the versions in a background thread."""
        if self._follower is not None:
            return
        self._follower = LexicalFollower(
            lambda: self.lexical, lambda: self.store, self.index_versions, self.settings.lexical_poll_seconds,
            store_replaced=self.reset,
        )
        try:
            self._follower.step()
        except Exception as exc:  # noqa: BLE001 - serve with the local index; the thread tries again
            logger.error("Stichwortindex beim Start nicht nachgeführt: %s", exc)
        self._follower.start()

    def stop_follower(self) -> None:
        if self._follower is not None:
            self._follower.stop()
            self._follower = None

    @cached_property
    def phase_tagger(self) -> PhaseTagger | None:
        if not isinstance(self._phase_tagger, _Load):
            return self._phase_tagger
        return PhaseTagger.load(self.embeddings)

    def pipeline(self) -> IngestPipeline:
        return IngestPipeline(
            self.settings, self.embeddings, self.store, self.registry,
            enrichers=self._enrichers(),
            listeners=[self.lexical_publisher, self.coverage],  # coverage reads the lexical index
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
        )

    @cached_property
    def qa(self) -> QAService:
        """Questions and answers (extractive or LLM, streamed or not, with conversations): API and CLI use this."""
        conversations = ConversationStore(
            self.database.engine, self.settings.conversation_retention_days, self.settings.conversation_max_turns
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
        return FeedbackStore(self.database.engine)

    @cached_property
    def database(self) -> Database:
        """The state database. SQLite (the default) is migrated on first use; another database (PostgreSQL) must be
        migrated by `stadtretter db upgrade` first, otherwise this refuses with a German message. Then the state
        files of older versions in the data directory are copied in, once."""
        database = Database(self.settings.state_database_url)
        database.ensure_current(apply=database.is_sqlite)
        import_legacy_files(database.engine, self.settings.data_dir, self.settings.collection)
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
        handlers: dict[str, Handler] = {
            "upload": content.ingest_uploads,
            "import": lambda job, progress: content.import_url(job.params["url"], progress),
            "reindex": lambda job, progress: content.reindex(progress),
        }
        return JobWorker(self.jobs, handlers)

    @cached_property
    def job_queue(self) -> RedisJobQueue | None:
        """The queue shared by all machines (STADTRETTER_REDIS_URL); None = jobs run in this server's thread."""
        if not self.settings.redis_url:
            return None
        return RedisJobQueue(self.settings.redis_url, self.settings.worker_heartbeat_seconds)

    @cached_property
    def redis(self) -> Redis:
        """Redis for the shared writer lock (only used when STADTRETTER_REDIS_URL is set)."""
        return Redis.from_url(self.settings.redis_url or "")

    def dispatch(self, job: Job) -> None:
        """A job was stored: hand it to the shared queue, or wake this process's worker thread. A queue that cannot
        be reached fails the job at once (German message) instead of leaving it queued for nobody."""
        if self.job_queue is None:
            self.wake_worker()
            return
        try:
            self.job_queue.dispatch(job.id, job.dispatch_token or "")
        except Exception as exc:  # noqa: BLE001 - e.g. Redis down: the admin gets a 503 with a reason
            message = f"Die Auftragswarteschlange (Redis) ist nicht erreichbar: {exc}"
            self.jobs.finish(job.id, None, message)
            raise ContentError(message, 503) from exc

    def run_queue_worker(self, stop: threading.Event) -> None:
        """`stadtretter worker`: run the shared queue's jobs until `stop` is set."""
        if self.job_queue is None:
            raise RuntimeError("STADTRETTER_REDIS_URL ist nicht gesetzt: ohne gemeinsame Warteschlange führt der "
                               "Server die Aufträge selbst aus")
        jobs = self.jobs
        self.job_queue.work(self.job_worker().run_delivered, stop,
                            resend=lambda: jobs.redispatch_waiting(LOST_AFTER_SECONDS))

    def start_worker(self) -> None:
        """Start this process's background worker (the server does, at start). With the shared queue the server
        only queues jobs: `stadtretter worker` processes run them."""
        if self.job_queue is not None:
            return
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
            sources=self._source_count(),
            detail=detail,
        )

    def _source_count(self) -> int:
        try:
            return len(self.registry.all())
        except (DatabaseUnusable, SQLAlchemyError):  # the readiness check "database" says why
            return 0

    def readiness(self) -> list[ReadinessCheck]:
        """What /readyz reports: store reachable, model loaded, data directory writable, lexical index in step with
        the store, state database reachable and current. German details; never raises."""
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
        checks.append(self._database_check())
        return checks

    def _database_check(self) -> ReadinessCheck:
        try:
            with self.database.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except DatabaseUnusable:
            return ReadinessCheck("database", False, "Zustandsdatenbank nicht auf dem aktuellen Stand")
        except SQLAlchemyError as exc:  # no URL or host in the detail: /readyz is public
            return ReadinessCheck("database", False, f"Zustandsdatenbank nicht erreichbar ({type(exc).__name__})")
        return ReadinessCheck("database", True, "Zustandsdatenbank erreichbar")

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
        """In step with the newest published index version (replicas), and with the store's chunk count."""
        try:
            lexical = self.lexical
            current = lexical.is_current(self.store, chunks)
        except Exception as exc:  # noqa: BLE001 - a broken index is what this reports
            return ReadinessCheck("lexical_index", False, f"Stichwortindex nicht lesbar: {exc}")
        try:
            latest = self.index_versions.latest()
        except Exception as exc:  # noqa: BLE001 - without it, "in step with the other replicas" is unknown
            logger.error("Indexversion nicht abrufbar: %s", exc)  # not in the detail: /readyz is public
            return ReadinessCheck(
                "lexical_index", False, "Indexversion nicht abrufbar: Zustandsdatenbank nicht erreichbar"
            )
        if latest is not None and lexical.content_signature == latest.signature:
            lexical.mark_version(latest.version)  # e.g. built by another process on this disk
        if latest is not None and lexical.index_version != latest.version:
            return ReadinessCheck(
                "lexical_index", False,
                f"Stichwortindex (Version {lexical.index_version or 'unbekannt'}) hinter der veröffentlichten "
                f"Version {latest.version}: wird nachgeführt",
            )
        at_version = f", Version {latest.version}" if latest is not None else ""
        if current:
            return ReadinessCheck(
                "lexical_index", True, f"Stichwortindex passt zum Store ({chunks} Abschnitte{at_version})"
            )
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

    def reset(self) -> None:
        """Forget the store, registry, lexical index and everything built on them: the next use opens the index
        anew (after `reindex` swapped it)."""
        for name in self._INDEX_PARTS:
            vars(self).pop(name, None)  # how a cached_property is cleared

    def reindex(self, progress: Progress | None = None) -> IngestReport:
        """Rebuild into a side collection and registry, then swap: a failed reindex leaves the old index intact."""
        registry = self.registry
        paths = [Path(p) for p in sorted({r.path for r in registry.all()})]
        side = self.settings.model_copy(update={"collection": f"{self.settings.collection}-reindex"})
        side_registry = Registry(self.database.engine, side.collection)
        side_registry.clear()  # left over from an interrupted reindex
        client = make_client(self.settings)  # not self.store: opening the old collection is refused after a model change
        try:
            client.delete_collection(side.collection)  # left over from an interrupted reindex
        except Exception:  # none there
            pass
        side_store = ChunkStore(side, self.embeddings.model_name, self.embeddings.dimension, client=client)
        side_lexical = LexicalIndex(self.settings.data_dir / "lexical-reindex")
        pipeline = IngestPipeline(
            side, self.embeddings, side_store, side_registry,
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
        registry.adopt(side_registry)
        shutil.rmtree(self.settings.lexical_path, ignore_errors=True)
        os.replace(side_lexical.path, self.settings.lexical_path)
        self.reset()
        self.lexical_publisher.publish(self.store)
        return report
