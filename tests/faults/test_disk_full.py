"""A full disk during ingestion: the data directory on a small tmpfs (or, where mounting is not allowed, a file
size limit in the child). The ingestion fails with a German message and no traceback, what is served is not
half-written, and after freeing space a re-run completes and equals a clean ingestion."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.faults.conftest import child_env, parse_snapshot, run_child

SMALL = 1024 * 1024  # a clean ingestion of the fault corpus needs ~2 MB


def _file_size_limit() -> None:  # runs in the child before exec
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write beyond the limit fails with EFBIG instead of a kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (SMALL, SMALL))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[tuple[Path, Callable[[], dict], Callable[[], None]]]:
    """(data dir, popen options that fill the disk, free_space())."""
    mount_point = tmp_path / "klein"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SMALL}", "tmpfs", str(mount_point)],
                             capture_output=True).returncode == 0
    state = {"limited": True}

    def options() -> dict:
        return {} if mounted or not state["limited"] else {"preexec_fn": _file_size_limit}

    def free_space() -> None:
        if mounted:
            subprocess.run(["mount", "-o", "remount,size=64m", str(mount_point)], check=True)
        state["limited"] = False

    try:
        yield mount_point / "data", options, free_space
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_disk_full_fails_in_german_serves_nothing_half_written_and_recovers(
    small_disk: tuple[Path, Callable[[], dict], Callable[[], None]], fault_corpus: Path, clean_snapshot: dict
) -> None:
    data_dir, options, free_space = small_disk
    env = child_env(data_dir, fault_corpus)
    first = sorted(str(path) for path in fault_corpus.glob("*.md"))[:4]
    assert run_child(env, "ingest", *first, **options()).returncode == 0  # an index that is served
    failed = run_child(env, "ingest", str(fault_corpus), **options())
    assert failed.returncode != 0
    assert "Traceback" not in failed.stderr and "Error" not in failed.stderr, failed.stderr[-3000:]
    message = " ".join(failed.stderr.split())
    assert message.startswith("Fehler:") and "Speicherplatz des Datenordners" in message, message
    assert "ist erschöpft. Bitte Platz schaffen" in message, message

    free_space()
    served = run_child(env, "snapshot")
    assert served.returncode == 0, served.stderr[-3000:]
    state = parse_snapshot(served.stdout)
    lexical, stored = set(state["lexical_ids"]), set(state["ids"])
    assert stored - lexical, "der abgebrochene Lauf hat nichts in Chroma hinterlassen: der Test prüft dann nichts"
    assert all(state["citations"].values())
    for question, cited in state["citations"].items():
        assert set(cited) <= lexical & stored, f"{question}: zitiert einen halb eingelesenen Abschnitt"
    assert len(stored) < len(clean_snapshot["ids"])  # the disk really was full before the end

    result = run_child(env, "rerun", str(fault_corpus))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout[result.stdout.index("{") : result.stdout.index("snapshot ")])
    assert not report["failed"]
    after = parse_snapshot(result.stdout)
    assert len(after["ids"]) == len(set(after["ids"]))
    assert sorted(after["ids"]) == sorted(clean_snapshot["ids"])
    assert after["registry"] == clean_snapshot["registry"]
    assert sorted(after["lexical_ids"]) == sorted(clean_snapshot["ids"])
    assert after["citations"] == clean_snapshot["citations"]
