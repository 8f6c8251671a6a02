"""Random bytes and truncated files never produce anything but a LoaderError (or a document)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ingest.chunking import Chunker
from ingest.loaders import SUPPORTED_SUFFIXES, load_file
from ingest.models import LoaderError
from core.settings import Settings

SAMPLES = {
    ".md": "---\ntitle: T\n---\n# T\n\n## A\n\n- x\n- [y](z)\n\n```\nc\n```\n",
    ".markdown": "# T\n\nText.\n",
    ".html": "<html><head><title>T</title></head><body><main><h1>T</h1><p>Text</p><ul><li>a</li></ul></main></body></html>",
    ".htm": "<p>Text</p>",
    ".txt": "Titel\n\nText.\n",
    ".vtt": "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<v A>Hallo\n",
    ".srt": "1\n00:00:01,000 --> 00:00:02,000\nHallo\n",
}


@pytest.mark.parametrize("suffix", sorted(SUPPORTED_SUFFIXES - {".pdf"}))
def test_mutated_files_fail_cleanly(tmp_path: Path, suffix: str) -> None:
    rng = random.Random(suffix)
    original = SAMPLES[suffix].encode()
    settings = Settings()
    for round_ in range(40):
        data = bytearray(original)
        for _ in range(rng.randint(1, 8)):
            op = rng.random()
            pos = rng.randrange(len(data)) if data else 0
            if op < 0.4 and data:
                data[pos] = rng.randrange(256)
            elif op < 0.7:
                data.insert(pos, rng.randrange(256))
            elif data:
                del data[pos : pos + rng.randint(1, 10)]
        path = tmp_path / f"m{round_}{suffix}"
        path.write_bytes(bytes(data))
        try:
            doc = load_file(path, settings)
        except LoaderError as exc:
            assert str(exc)
            continue
        for chunk in Chunker().run(doc):
            assert chunk.text.strip()
