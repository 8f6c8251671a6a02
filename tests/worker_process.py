"""`stadtretter worker` in a real process for tests, with the fast test embedding (HashEmbeddings).

Run as `python -m tests.worker_process [SECONDS_PER_EMBEDDING_BATCH]`: settings come from the environment, as for
`stadtretter worker`; the optional delay slows ingestion down so a test can kill the worker in the middle of a job.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import numpy as np

from tests.helpers import HashEmbeddings


class SlowHashEmbeddings(HashEmbeddings):
    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        time.sleep(self.delay)
        return super().embed_passages(texts)


def main(delay: float) -> None:
    from core.settings import Settings
    from services.container import Services
    from stadtretter.worker_cli import run_worker

    run_worker(Services(Settings(), embeddings=SlowHashEmbeddings(delay), phase_tagger=None))


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 0.0)
