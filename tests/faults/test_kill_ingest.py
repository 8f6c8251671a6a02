"""kill -9 during `stadtretter ingest` at random points, then ingest again: the store, the registry and the lexical
index equal those of a clean ingestion, no chunk is duplicated, and questions get the same citations."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

from tests.faults.conftest import ROOT, child_command, child_env, parse_snapshot, run_child

KILLS = 10
SEED = 1616  # fixed, so that a failure can be replayed


def _kill_during_ingestion(env: dict[str, str], corpus: Path, delay: float) -> None:
    process = subprocess.Popen(child_command("ingest", str(corpus)), env=env, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ingest-start"
        time.sleep(delay)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def test_kill_9_during_ingestion_then_rerun_equals_a_clean_ingestion(
    tmp_path: Path, fault_corpus: Path, clean_snapshot: dict
) -> None:
    rng = random.Random(SEED)
    interrupted = 0
    for n in range(KILLS):
        env = child_env(tmp_path / f"data-{n}", fault_corpus)
        delay = rng.uniform(0.0, clean_snapshot["seconds"] * 1.2)
        _kill_during_ingestion(env, fault_corpus, delay)
        result = run_child(env, "rerun", str(fault_corpus))
        partial = json.loads(result.stdout.split("\n", 1)[0].removeprefix("partial "))
        interrupted += partial != sorted([r[0], r[3], r[2]] for r in clean_snapshot["registry"])
        assert result.returncode == 0, f"Lauf {n} (kill nach {delay:.2f} s): {result.stderr[-2000:]}"
        after = parse_snapshot(result.stdout)
        where = f"Lauf {n}, kill nach {delay:.2f} s"
        assert len(after["ids"]) == len(set(after["ids"])), f"{where}: doppelte Abschnitte"
        assert sorted(after["ids"]) == sorted(clean_snapshot["ids"]), where
        assert after["registry"] == clean_snapshot["registry"], where
        assert sorted(after["lexical_ids"]) == sorted(clean_snapshot["ids"]), where
        assert after["citations"] == clean_snapshot["citations"], where
    # the kills really landed inside ingestions (not all before the first file or after the last)
    assert interrupted >= KILLS // 2, f"nur {interrupted} von {KILLS} Abbrüchen mitten im Einlesen"
