"""Training and cross-validation of the phase models (retriever/phase_training.py) on a bag-of-words stand-in
embedding: what is under test is which passages a model learns from, not tagging quality."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from retriever.phase_training import TrainingData, VectorCache, passages_hash, soft_targets
from core.vocabulary import PHASE_KEYS
from retriever.phases import Lexicon, PhaseTagger, load_definitions
from tests.helpers import HashEmbeddings

SURVEY = "Die Passantenbefragung am Marktplatz zählt Besucher und fragt nach Wünschen für die Innenstadt."
FUNDING = "Der Förderantrag, das Betriebsmodell und die Auswahl der Dienstleister werden im Lenkungskreis beschlossen."


def _passages(source: str, text: str, phase: str, n: int = 6) -> list[dict]:
    return [
        {"id": f"{source}-{i}", "source": source, "text": f"{text} Nummer {i}.", "phases": [phase], "primary": phase,
         "title": "Beitrag", "section": None}
        for i in range(n)
    ]


def _data(tmp_path: Path, passages: list[dict]) -> tuple[HashEmbeddings, TrainingData]:
    embeddings = HashEmbeddings()
    return embeddings, TrainingData(VectorCache(embeddings, tmp_path / "vectors.npz"), passages)


def _tagger(embeddings: HashEmbeddings, data: TrainingData):  # noqa: ANN202
    definitions = load_definitions()
    return lambda models: PhaseTagger(
        embeddings, definitions, Lexicon.load(), models.classifier, None, data.prototypes, models.terms
    )


def test_cross_validation_never_trains_on_the_tested_document(tmp_path: Path) -> None:
    # Two documents say the same things with opposite labels. A model that saw the tested document would
    # reproduce its label; the cross-validated one can only know the other document's.
    passages = _passages("a.md", SURVEY, "E") + _passages("b.md", SURVEY, "K")
    passages += _passages("c.md", FUNDING, "K") + _passages("d.md", FUNDING, "E")
    embeddings, data = _data(tmp_path, passages)
    predicted = data.cross_validate(_tagger(embeddings, data), methods=("classifier", "terms"))
    flipped = {"E": "K", "K": "E"}
    assert predicted == [flipped[p["primary"]] for p in passages]
    assert set(data.folds()) == {"a.md", "b.md", "c.md", "d.md"}


def test_training_embeds_passages_as_chunks_and_caches_the_vectors(tmp_path: Path) -> None:
    passages = _passages("a.md", SURVEY, "E", n=2)
    passages[0]["section"] = "Methode › Stichprobe"
    embeddings, data = _data(tmp_path, passages)
    assert data.texts[0] == f"Methode › Stichprobe\n{passages[0]['text']}"  # read with its section
    expected = embeddings.embed_passages([f"Beitrag › Methode › Stichprobe\n{passages[0]['text']}"])[0]
    np.testing.assert_allclose(data.x[0], expected)  # embedded under its title and section, like a chunk

    calls = embeddings.calls
    again = TrainingData(VectorCache(embeddings, tmp_path / "vectors.npz"), passages)
    assert embeddings.calls == calls  # every vector came from the cache file
    np.testing.assert_allclose(again.x, data.x)


def test_soft_targets_share_the_secondary_phases() -> None:
    targets = soft_targets([
        {"primary": "K", "phases": ["K", "T"]},
        {"primary": "E", "phases": ["E"]},
        {"primary": "T", "phases": ["T", "E", "K"]},
    ])
    assert targets[0].tolist() == [0.0, 0.65, 0.35, 0.0]
    assert targets[1].tolist() == [1.0, 0.0, 0.0, 0.0]
    np.testing.assert_allclose(targets[2], [0.175, 0.175, 0.65, 0.0])
    np.testing.assert_allclose(targets.sum(axis=1), 1.0)
    assert PHASE_KEYS == ("E", "K", "T", "übergreifend")


def test_passages_hash_changes_with_a_label() -> None:
    passages = _passages("a.md", SURVEY, "E", n=2)
    before = passages_hash(passages)
    passages[1]["primary"] = "K"
    assert passages_hash(passages) != before
