"""Test helpers shared by the suites."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from core.embeddings import StadtretterEmbeddings


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
