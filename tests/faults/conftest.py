"""Fault tests: real child processes (tests/faults/child.py) on a generated corpus, bounded in time."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

TOWNS = ["Lindenfeld", "Marktheide", "Osterbrunn", "Brückenheim", "Lindenau", "Tannstedt", "Auenburg", "Kirchwalde"]
TOPICS = [
    ("Marktplatz", "Die Förderung für den Marktplatz betrug {n} Prozent der Baukosten aus dem Städtebauprogramm."),
    ("Frequenz", "Vier Lasersensoren zählen die Passanten in der Hauptstraße, im Schnitt {n} am Samstag."),
    ("WLAN", "Das WLAN in der Innenstadt betreibt die Stadtmarketing GmbH, {n} Access Points sind verbaut."),
    ("Leerstand", "Der Leerstand sank nach dem Zwischennutzungsprogramm um {n} Ladenlokale."),
    ("Verfügungsfonds", "Der Verfügungsfonds finanziert Projekte der Händler mit bis zu {n} Euro."),
]
FILLER = ("Die Werbegemeinschaft stimmte sich eng mit der Wirtschaftsförderung ab. Händler, Eigentümer und Verwaltung "
          "trafen sich monatlich im Rathaus. Die Ergebnisse wurden im Stadtrat vorgestellt und veröffentlicht. ")


def make_corpus(root: Path, files: int = 30, seed: int = 7) -> Path:
    """`files` articles of three sections (~3 chunks each), deterministic."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for n in range(files):
        town = TOWNS[n % len(TOWNS)]
        sections = []
        for topic, sentence in rng.sample(TOPICS, 3):
            body = (FILLER * 4) + sentence.format(n=rng.randint(3, 900)) + " " + FILLER * 3
            sections.append(f"## {topic} in {town}\n\n{body}\n")
        text = (f"---\ntitle: Bericht {n:02d} aus {town}\ndate: 2024-{n % 12 + 1:02d}-15\ntype: article\n---\n\n"
                + "\n".join(sections))
        (root / f"bericht-{n:02d}.md").write_text(text, encoding="utf-8")
    return root


def child_env(data_dir: Path, corpus: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("STADTRETTER_")}
    env.update({"STADTRETTER_DATA_DIR": str(data_dir), "STADTRETTER_CORPUS_DIR": str(corpus),
                "PYTHONPATH": str(ROOT), **{f"STADTRETTER_{k.upper()}": v for k, v in extra.items()}})
    return env


def child_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "tests.faults.child", *arguments]


def run_child(env: dict[str, str], *arguments: str, timeout: float = 120, **popen) -> subprocess.CompletedProcess:
    return subprocess.run(child_command(*arguments), env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, **popen)


def parse_snapshot(stdout: str) -> dict:
    line = next(line for line in stdout.splitlines() if line.startswith("snapshot "))
    return json.loads(line.removeprefix("snapshot "))


@pytest.fixture(scope="module")
def fault_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("fault-corpus") / "corpus")


@pytest.fixture(scope="module")
def clean_snapshot(tmp_path_factory: pytest.TempPathFactory, fault_corpus: Path) -> dict:
    """A clean ingestion of the corpus, then its snapshot (and how long the ingestion took)."""
    data_dir = tmp_path_factory.mktemp("clean") / "data"
    result = run_child(child_env(data_dir, fault_corpus), "rerun", str(fault_corpus))
    assert result.returncode == 0, result.stderr
    snapshot = parse_snapshot(result.stdout)
    report = json.loads(result.stdout[result.stdout.index("{") : result.stdout.index("snapshot ")])
    assert report["added"] == 30 and not report["failed"], report
    snapshot["seconds"] = report["seconds"]
    return snapshot
