"""Train the EKT phase models and store them with the prototype vectors in retriever/calibration/phase_classifier.npz:
the classifier (multinomial logistic regression on embeddings) and the term model (the same on TF-IDF weighted stems).

    .venv/bin/python bench/train_phase_classifier.py

Training data, all in the repository:
- the hand-labelled passages eval/phase/*.jsonl (soft targets: 0.65 primary phase, 0.35 shared by the other
  phases the passage is labelled with; a passage with one phase gets 1.0). Each is embedded as ingestion embeds a
  chunk, with the title and section it stands under in its source document, and read with its section,
- the prototype passages and questions of prompts/phases/*.md (our own writing, hard targets; the term model
  takes the passages only).

Before saving, it reports each model's leave-one-document-out cross-validation on the labelled passages: for
each document a model is trained without any passage of that document (the prototypes always stay in training,
they belong to no document). bench/phase_eval.py uses the same folds for the combined tagger.
Vectors are cached under .eval-cache/phase/ (see bench/phase_eval.py), so retraining takes seconds.
"""

from __future__ import annotations

import hashlib
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository before bench/ (bench/ingest.py)
sys.path.append(str(Path(__file__).resolve().parent))
import phase_eval  # noqa: E402  (bench helper module: caches, metrics)

from ingest.chunking import embedding_text  # noqa: E402
from retriever.phases import (  # noqa: E402
    CLASSIFIER_FILE, LABELS, Calibration, load_definitions, prompts_hash, prototype_texts, save_classifier,
    tagging_text, train_linear, train_terms,
)

SECONDARY_SHARE = 0.35
L2 = 0.3
TERMS_L2 = 1.0
ITERATIONS = 400


def soft_targets(passages: list[dict], secondary: float = SECONDARY_SHARE) -> np.ndarray:
    targets = np.zeros((len(passages), len(LABELS)))
    for row, passage in zip(targets, passages):
        others = [p for p in passage.get("phases", []) if p != passage["primary"] and p in LABELS]
        row[LABELS.index(passage["primary"])] = 1.0 - (secondary if others else 0.0)
        for phase in others:
            row[LABELS.index(phase)] += secondary / len(others)
    return targets


class TrainingData:
    """Vectors, texts and targets of the labelled passages and of the prototypes. A passage is embedded as ingestion
    embeds a chunk (title › section above the text) and read with its section, as the tagger reads a chunk."""

    def __init__(self, cache: phase_eval.VectorCache, passages: list[dict] | None = None) -> None:
        self.passages = passages if passages is not None else phase_eval.load_passages()
        self.groups = np.array(phase_eval.passage_groups(self.passages))
        self.x = cache.passages([embedding_text(p.get("title", ""), p.get("section"), p["text"]) for p in self.passages])
        self.texts = [tagging_text(p.get("section"), p["text"]) for p in self.passages]
        self.targets = soft_targets(self.passages)
        self.labels = np.array([LABELS.index(p["primary"]) for p in self.passages])
        passages_text, passage_labels, questions_text, question_labels = prototype_texts(load_definitions())
        self.proto_passages = cache.passages(passages_text)
        self.proto_questions = cache.queries(questions_text)
        eye = np.eye(len(LABELS))
        self.proto_x = np.vstack([self.proto_passages, self.proto_questions])
        self.proto_targets = np.vstack([eye[passage_labels], eye[question_labels]])
        self.proto_texts = passages_text
        self.proto_text_targets = eye[passage_labels]

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


def data_hash(passages: list[dict]) -> str:
    digest = hashlib.sha256()
    for passage in passages:
        digest.update(f"{passage['id']}|{passage['primary']}|{passage['text']}".encode())
    return digest.hexdigest()[:16]


def main() -> None:
    from stadtretter.embeddings import get_embeddings
    from stadtretter.settings import Settings

    started = time.perf_counter()
    embeddings = get_embeddings(Settings())
    cache = phase_eval.VectorCache(embeddings)
    data = TrainingData(cache)
    folds = data.folds()
    cv: dict[str, dict[str, float]] = {}
    gold = [p["primary"] for p in data.passages]
    for name, logits_of in (
        ("classifier", lambda models, index: models.classifier.logits(data.x[index])),
        ("terms", lambda models, index: models.terms.logits([data.texts[i] for i in index])),
    ):
        logits = np.zeros((len(data.passages), len(LABELS)))
        for document, models in folds.items():
            index = np.flatnonzero(data.groups == document)
            logits[index] = logits_of(models, index)
        predicted = [LABELS[i] for i in logits.argmax(axis=1)]
        cv[name] = {"macro_f1": round(phase_eval.macro_f1(gold, predicted), 4),
                    "accuracy": round(phase_eval.accuracy(gold, predicted), 4)}
        print(f"{'Klassifikator' if name == 'classifier' else 'Begriffsmodell'} allein, Kreuzvalidierung je Dokument "
              f"({len(folds)} Dokumente, {len(gold)} Passagen): "
              f"Makro-F1 {cv[name]['macro_f1']:.3f} · Genauigkeit {cv[name]['accuracy']:.3f}")
    calibration = data.fit()
    calibration.classifier.model_name = embeddings.model_name
    calibration.prototypes = {"proto_passages": data.proto_passages, "proto_questions": data.proto_questions}
    calibration.meta = {
        "model_name": embeddings.model_name,
        "dimension": int(embeddings.dimension),
        "labels": list(LABELS),
        "prompts_hash": prompts_hash(),
        "passages": len(data.passages),
        "passages_hash": data_hash(data.passages),
        "prototypes": int(len(data.proto_x)),
        "l2": L2,
        "iterations": ITERATIONS,
        "secondary_share": SECONDARY_SHARE,
        "terms": len(calibration.terms.vocabulary),
        "terms_l2": TERMS_L2,
        "cv_leave_one_document_out": cv,
        "trained": date.today().isoformat(),
    }
    save_classifier(CLASSIFIER_FILE, calibration)
    size = CLASSIFIER_FILE.stat().st_size / 1024
    print(f"Gespeichert: {CLASSIFIER_FILE.relative_to(phase_eval.REPO)} ({size:.0f} KB) in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
