"""Regression gate: the gold evaluation with the real model must not fall below eval/thresholds.json.

The thresholds sit a little below the measured values (README, "Qualität"), so a change that makes retrieval,
answers, abstention or phase tagging worse fails CI. The evaluation store is cached in .eval-cache/ like
`stadtretter eval` does, so a rerun only embeds what changed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.benchmarks import load_gold, load_paraphrase, load_phase_passages
from services.evaluation import eval_settings, evaluate, phase_passage_report
from services.container import Services
from core.settings import Settings

# Embedding the gold corpus (~800 chunks) takes ~3 minutes on 2 quiet cores; allow for a busy machine.
pytestmark = [pytest.mark.model, pytest.mark.timeout(2400)]

REPO = Path(__file__).resolve().parents[2]
GATE = json.loads((REPO / "eval" / "thresholds.json").read_text(encoding="utf-8"))
# Floors (metric >= value) at the top level, ceilings (metric <= value) under "max", the paraphrase set's own
# floors and ceilings under "paraphrase" (gated only once eval/paraphrase/questions.jsonl exists).
THRESHOLDS = {key: value for key, value in GATE.items() if not isinstance(value, dict)}
CEILINGS = GATE.get("max", {})
PARAPHRASE = GATE.get("paraphrase", {})
PASSAGE_F1 = "phase_passages_macro_f1"  # not a metric of the gold questions: checked on the labelled passages


@pytest.fixture(scope="module")
def services() -> Services:
    return Services(eval_settings(Settings(), load_gold(), REPO / ".eval-cache"))


@pytest.fixture(scope="module")
def report(services: Services):  # noqa: ANN201
    return evaluate(services, load_gold())


@pytest.fixture(scope="module")
def passages_report(services: Services):  # noqa: ANN201
    return phase_passage_report(services, load_phase_passages(), REPO / ".eval-cache" / "phase")


def test_gold_corpus_ingests_without_failures(report) -> None:  # noqa: ANN001
    assert report.ingest_failed == []


@pytest.mark.parametrize("metric", sorted(set(THRESHOLDS) - {PASSAGE_F1}))
def test_metric_is_not_below_its_threshold(report, metric: str) -> None:  # noqa: ANN001
    value = report.metrics.get(metric)
    assert value is not None, f"{metric} wurde nicht gemessen"
    assert value >= THRESHOLDS[metric], f"{metric} = {value:.3f} < Schwelle {THRESHOLDS[metric]:.3f}"


@pytest.mark.parametrize("metric", sorted(CEILINGS))
def test_metric_is_not_above_its_ceiling(report, metric: str) -> None:  # noqa: ANN001
    value = report.metrics.get(metric)
    assert value is not None, f"{metric} wurde nicht gemessen"
    assert value <= CEILINGS[metric], f"{metric} = {value:.3f} > Obergrenze {CEILINGS[metric]:.3f}"


@pytest.fixture(scope="module")
def paraphrase_report(services: Services):  # noqa: ANN201
    paraphrase = load_paraphrase()
    assert paraphrase is not None, "eval/paraphrase/questions.jsonl fehlt: der Paraphrasen-Satz gehört zum Gate"
    return evaluate(services, paraphrase, phases=False)


@pytest.mark.parametrize("metric", sorted(set(PARAPHRASE) - {"max"}))
def test_paraphrase_metric_is_not_below_its_threshold(paraphrase_report, metric: str) -> None:  # noqa: ANN001
    value = paraphrase_report.metrics.get(metric)
    assert value is not None, f"{metric} wurde nicht gemessen"
    assert value >= PARAPHRASE[metric], f"Paraphrasen: {metric} = {value:.3f} < Schwelle {PARAPHRASE[metric]:.3f}"


@pytest.mark.parametrize("metric", sorted(PARAPHRASE.get("max", {})))
def test_paraphrase_metric_is_not_above_its_ceiling(paraphrase_report, metric: str) -> None:  # noqa: ANN001
    value, ceiling = paraphrase_report.metrics.get(metric), PARAPHRASE["max"][metric]
    assert value is not None, f"{metric} wurde nicht gemessen"
    assert value <= ceiling, f"Paraphrasen: {metric} = {value:.3f} > Obergrenze {ceiling:.3f}"


def test_phase_tagging_of_labelled_passages_is_not_below_its_threshold(passages_report) -> None:  # noqa: ANN001
    assert passages_report is not None and passages_report["validation"] == "leave-one-document-out"
    value = passages_report["macro_f1"]
    assert value >= THRESHOLDS[PASSAGE_F1], f"Phasen-Passagen Makro-F1 = {value:.3f} < {THRESHOLDS[PASSAGE_F1]:.3f}"


def test_phase_accuracy_splits_by_whether_the_answer_chunk_was_cited(report) -> None:  # noqa: ANN001
    metrics = report.metrics
    cited, not_cited = metrics["questions_answer_cited"], metrics["questions_answer_not_cited"]
    phased = sum(sum(row.values()) for row in report.confusion.values())
    assert cited + not_cited == phased
    combined = (metrics["phase_accuracy_answer_cited"] * cited + metrics["phase_accuracy_answer_not_cited"] * not_cited)
    assert combined / phased == pytest.approx(metrics["phase_accuracy"], abs=1e-3)
