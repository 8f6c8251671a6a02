"""Searches while the lexical index is rebuilt and swapped in the same process (what an upload job does): every
search reads one build, so none crashes and every hit's id belongs to the build it was scored in."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from core.settings import Settings
from services.container import Services
from tests.helpers import HashEmbeddings


def test_searches_during_lexical_swaps_never_mix_two_builds(tmp_path: Path, tiny_corpus: Path) -> None:
    services = Services(Settings(data_dir=tmp_path / "data", corpus_dir=tiny_corpus), embeddings=HashEmbeddings(),
                        phase_tagger=None)
    services.pipeline().run([tiny_corpus])
    extra = tiny_corpus / "articles" / "zusatz.md"
    errors: list[str] = []
    stop = time.monotonic() + 4

    def swap() -> None:  # the index grows and shrinks: rows of one build index other ids in the next
        n = 0
        while time.monotonic() < stop:
            n += 1
            extra.write_text(f"# Zusatz {n}\n\n" + "Passanten Samstag Innenstadt Lasersensoren. " * (n % 7 + 1) * 40)
            services.pipeline().run([tiny_corpus], prune=True)
            extra.unlink()
            services.pipeline().run([tiny_corpus], prune=True)

    def search() -> None:
        while time.monotonic() < stop:
            for mode in ("lexical", "hybrid"):
                try:
                    hits = services.search.search("Passanten Samstag Lasersensoren", k=8, mode=mode)
                    assert all(hit.text for hit in hits)
                except Exception as exc:  # noqa: BLE001 - collected and reported below
                    errors.append(f"{mode}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=swap)] + [threading.Thread(target=search) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors[:5]
