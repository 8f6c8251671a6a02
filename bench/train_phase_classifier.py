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

import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import phase_eval  # noqa: E402  (bench helper module: caches, metrics)

from retriever.phase_training import (  # noqa: E402
    ITERATIONS, L2, SECONDARY_SHARE, TERMS_L2, TrainingData, VectorCache, cache_path, passages_hash,
)
from core.vocabulary import PHASE_KEYS  # noqa: E402
from retriever.phases import prompts_hash, save_classifier  # noqa: E402
from services.benchmarks import load_phase_passages  # noqa: E402

# In the source tree (committed), not in the installed package that retriever.phases reads.
CLASSIFIER_FILE = phase_eval.REPO / "retriever" / "calibration" / "phase_classifier.npz"


def main() -> None:
    from core.embeddings import get_embeddings
    from core.settings import Settings

    started = time.perf_counter()
    embeddings = get_embeddings(Settings())
    data = TrainingData(VectorCache(embeddings, cache_path(phase_eval.CACHE, embeddings)), load_phase_passages())
    folds = data.folds()
    cv: dict[str, dict[str, float]] = {}
    gold = [p["primary"] for p in data.passages]
    for name, logits_of in (
        ("classifier", lambda models, index: models.classifier.logits(data.x[index])),
        ("terms", lambda models, index: models.terms.logits([data.texts[i] for i in index])),
    ):
        logits = np.zeros((len(data.passages), len(PHASE_KEYS)))
        for document, models in folds.items():
            index = np.flatnonzero(data.groups == document)
            logits[index] = logits_of(models, index)
        predicted = [PHASE_KEYS[i] for i in logits.argmax(axis=1)]
        cv[name] = {"macro_f1": round(phase_eval.macro_f1(gold, predicted), 4),
                    "accuracy": round(phase_eval.accuracy(gold, predicted), 4)}
        print(f"{'Klassifikator' if name == 'classifier' else 'Begriffsmodell'} allein, Kreuzvalidierung je Dokument "
              f"({len(folds)} Dokumente, {len(gold)} Passagen): "
              f"Makro-F1 {cv[name]['macro_f1']:.3f} · Genauigkeit {cv[name]['accuracy']:.3f}")
    calibration = data.fit()
    calibration.classifier.model_name = embeddings.model_name
    calibration.prototypes = data.prototypes
    calibration.meta = {
        "model_name": embeddings.model_name,
        "dimension": int(embeddings.dimension),
        "labels": list(PHASE_KEYS),
        "prompts_hash": prompts_hash(),
        "passages": len(data.passages),
        "passages_hash": passages_hash(data.passages),
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
