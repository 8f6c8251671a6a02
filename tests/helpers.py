"""Test helpers shared by the suites."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from core.embeddings import StadtretterEmbeddings
from retriever.answer import ExtractiveAnswerer
from retriever.evidence import RESULT_FEATURES, LinearModel


class HashEmbeddings(StadtretterEmbeddings):
    """Deterministic bag-of-words embedding for fast unit tests of the plumbing (not of retrieval quality).
    Texts sharing words get similar vectors, so ranking-dependent plumbing still behaves sensibly."""

    def __init__(self, dimension: int = 64, model_name: str = "test:hash-bow") -> None:
        self.dimension = dimension
        self.model_name = model_name
        self.calls = 0
        self.embedded = 0

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dimension, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            digest = hashlib.md5(word.encode()).digest()
            vector[digest[0] % self.dimension] += 1.0
            vector[digest[1] % self.dimension] += 0.5
        norm = np.linalg.norm(vector)
        return vector / norm if norm else vector

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.embedded += len(texts)
        return np.stack([self._vector(t) for t in texts]) if texts else np.empty((0, self.dimension), np.float32)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts]) if texts else np.empty((0, self.dimension), np.float32)


def hash_answerability(answerer: ExtractiveAnswerer) -> None:
    """HashEmbeddings are a bag of words, not a language model: the trained answerability model is calibrated for the
    real one. A stand-in on the best sentence cosine and the question's names found in the chunks read answers
    corpus questions (cosine ≥ 0.5, names found) and refuses unrelated ones (≈ 0.4, no name found)."""
    weights = np.zeros(len(RESULT_FEATURES))
    weights[RESULT_FEATURES.index("best_cosine")], weights[RESULT_FEATURES.index("read_names")] = 20.0, 10.0
    answerer.answerability = LinearModel(RESULT_FEATURES, weights, -15.0)
    answerer.answer_threshold = answerer.caution_threshold = 0.5  # no caution: the stand-in has no level for it
