"""Training the EKT phase models from the hand-labelled passages (eval/phase), and their cross-validation grouped by
document. bench/train_phase_classifier.py stores the result in retriever/calibration/phase_classifier.npz;
bench/phase_eval.py and `stadtretter eval` report the cross-validated figures.

A passage is embedded as ingestion embeds a chunk (title › section above the text, core.embeddings.embedding_text)
and read with its section, as the tagger reads a chunk: the models learn the form they later tag.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from retriever.phases import (
    Calibration, PhaseDefinition, PhaseTagger, load_definitions, prototype_texts, tagging_text, train_linear,
    train_terms,
)
from core.embeddings import embedding_text, model_key
from core.vocabulary import PHASE_KEYS

SECONDARY_SHARE = 0.35  # soft target: 0.65 primary phase, 0.35 shared by the passage's other phases
L2 = 0.3  # classifier ridge (measured: 0.1–1.0 change passages macro-F1 by < 0.005)
TERMS_L2 = 1.0  # term model ridge (0.3–3 measured, same)
ITERATIONS = 400


class Vectors(Protocol):
    """Where training vectors come from: the embedding model, or a cache in front of it."""

    def passages(self, texts: list[str]) -> np.ndarray: ...

    def queries(self, texts: list[str]) -> np.ndarray: ...


class VectorCache:
    """Passage and query vectors by content hash in one .npz per embedding model, so retraining and evaluating
    re-embed nothing they have embedded before."""

    def __init__(self, embeddings: Any, path: Path) -> None:
        self.embeddings = embeddings
        self.path = path
        self.vectors: dict[str, np.ndarray] = {}
        if path.exists():
            with np.load(path) as data:
                self.vectors = {str(k): v for k, v in zip(data["keys"], data["vectors"])}

    @staticmethod
    def key(kind: str, text: str) -> str:
        return hashlib.sha256(f"{kind}\x00{text}".encode()).hexdigest()[:32]

    def _get(self, kind: str, texts: list[str]) -> np.ndarray:
        keys = [self.key(kind, t) for t in texts]
        missing = sorted({(k, t) for k, t in zip(keys, texts) if k not in self.vectors})
        if missing:
            embed = self.embeddings.embed_passages if kind == "passage" else self.embeddings.embed_queries
            for (k, _), vector in zip(missing, embed([t for _, t in missing])):
                self.vectors[k] = np.asarray(vector, dtype=np.float32)
            self._save()
        if not keys:
            return np.empty((0, self.embeddings.dimension), dtype=np.float32)
        return np.stack([self.vectors[k] for k in keys])

    def passages(self, texts: list[str]) -> np.ndarray:
        return self._get("passage", texts)

    def queries(self, texts: list[str]) -> np.ndarray:
        return self._get("query", texts)

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.stem + ".tmp.npz")
        np.savez(tmp, keys=np.array(list(self.vectors), dtype="U32"), vectors=np.stack(list(self.vectors.values())))
        tmp.replace(self.path)


def cache_path(directory: Path, embeddings: Any) -> Path:
    return directory / f"vectors-{model_key(embeddings.model_name)}.npz"


def soft_targets(passages: Sequence[dict], secondary: float = SECONDARY_SHARE) -> np.ndarray:
    targets = np.zeros((len(passages), len(PHASE_KEYS)))
    for row, passage in zip(targets, passages):
        others = [p for p in passage.get("phases", []) if p != passage["primary"] and p in PHASE_KEYS]
        row[PHASE_KEYS.index(passage["primary"])] = 1.0 - (secondary if others else 0.0)
        for phase in others:
            row[PHASE_KEYS.index(phase)] += secondary / len(others)
    return targets


def passages_hash(passages: Sequence[dict]) -> str:
    digest = hashlib.sha256()
    for passage in passages:
        digest.update(f"{passage['id']}|{passage['primary']}|{passage['text']}".encode())
    return digest.hexdigest()[:16]


class TrainingData:
    """Vectors, texts and targets of the labelled passages and of the prototypes (prompts/phases)."""

    def __init__(
        self, vectors: Vectors, passages: Sequence[dict], definitions: dict[str, PhaseDefinition] | None = None
    ) -> None:
        self.passages = list(passages)
        self.groups = np.array([p["source"] for p in self.passages])  # folds never split a document
        self.x = vectors.passages([embedding_text(p.get("title", ""), p.get("section"), p["text"]) for p in self.passages])
        self.texts = [tagging_text(p.get("section"), p["text"]) for p in self.passages]
        self.targets = soft_targets(self.passages)
        passage_texts, passage_labels, question_texts, question_labels = prototype_texts(definitions or load_definitions())
        self.proto_passages = vectors.passages(passage_texts)
        self.proto_questions = vectors.queries(question_texts)
        eye = np.eye(len(PHASE_KEYS))
        self.proto_x = np.vstack([self.proto_passages, self.proto_questions])
        self.proto_targets = np.vstack([eye[passage_labels], eye[question_labels]])
        self.proto_texts = passage_texts  # the term model learns from prototype passages, not questions
        self.proto_text_targets = eye[passage_labels]

    @property
    def prototypes(self) -> dict[str, np.ndarray]:
        return {"proto_passages": self.proto_passages, "proto_questions": self.proto_questions}

    def fit(self, exclude_document: str | None = None) -> Calibration:
        """The embedding classifier and the term model, trained without the passages of `exclude_document`."""
        keep = self.groups != exclude_document
        x = np.vstack([self.x[keep], self.proto_x])
        y = np.vstack([self.targets[keep], self.proto_targets])
        texts = [t for t, k in zip(self.texts, keep) if k] + self.proto_texts
        terms = train_terms(texts, np.vstack([self.targets[keep], self.proto_text_targets]), l2=TERMS_L2)
        return Calibration(train_linear(x, y, l2=L2, iterations=ITERATIONS), terms)

    def folds(self) -> dict[str, Calibration]:
        """Leave-one-document-out: one pair of models per labelled document, trained without its passages."""
        return {document: self.fit(document) for document in sorted(set(self.groups))}

    def cross_validate(
        self, make_tagger: Callable[[Calibration], PhaseTagger], folds: dict[str, Calibration] | None = None,
        methods: Sequence[str] | None = None,
    ) -> list[str]:
        """The primary phase of every passage, tagged by a tagger whose trained models never saw its document."""
        predicted = [""] * len(self.passages)
        for document, models in (folds or self.folds()).items():
            index = np.flatnonzero(self.groups == document)
            tagger = make_tagger(models)
            dist, _ = tagger.distribution([self.texts[i] for i in index], self.x[index], methods=methods)
            for i, row in zip(index, dist):
                predicted[i] = tagger.primary(row)
        return predicted
