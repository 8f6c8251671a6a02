"""Regression gate: the gold evaluation with the real model must not fall below eval/thresholds.json.

The thresholds sit a little below the measured values (README, "Qualität"), so a change that makes retrieval,
answers, abstention or phase tagging worse fails CI. The evaluation store is cached in .eval-cache/ like
`stadtretter eval` does, so a rerun only embeds what changed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stadtretter.benchmarks import load_gold
from stadtretter.evaluation import eval_settings, evaluate
from stadtretter.services import Services
from stadtretter.settings import Settings

# Embedding the gold corpus (~800 chunks) takes ~3 minutes on 2 quiet cores; allow for a busy machine.
pytestmark = [pytest.mark.model, pytest.mark.timeout(2400)]

REPO = Path(__file__).resolve().parents[2]
THRESHOLDS = json.loads((REPO / "eval" / "thresholds.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def report():  # noqa: ANN201
    gold = load_gold()
    services = Services(eval_settings(Settings(), gold, REPO / ".eval-cache"))
    return evaluate(services, gold)


def test_gold_corpus_ingests_without_failures(report) -> None:  # noqa: ANN001
    assert report.ingest_failed == []


@pytest.mark.parametrize("metric", sorted(THRESHOLDS))
def test_metric_is_not_below_its_threshold(report, metric: str) -> None:  # noqa: ANN001
    value = report.metrics.get(metric)
    assert value is not None, f"{metric} wurde nicht gemessen"
    assert value >= THRESHOLDS[metric], f"{metric} = {value:.3f} < Schwelle {THRESHOLDS[metric]:.3f}"
