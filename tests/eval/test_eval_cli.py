"""`stadtretter eval`: its German report table and its errors for bad arguments (no model work)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from stadtretter import cli
from stadtretter.eval_cli import print_report
from services.evaluation import Report


def test_report_prints_german_labels_counts_and_confusion(capsys: pytest.CaptureFixture[str]) -> None:
    report = Report(
        "gold", 4,
        {"hit@1": 0.75, "phase_accuracy": 0.75, "phase_accuracy_answer_cited": 1.0, "questions_answer_cited": 3,
         "phase_accuracy_answer_not_cited": 0.0, "questions_answer_not_cited": 1, "latency_p50_ms": 12.34},
        confusion={"E": {"E": 2}, "K": {"K": 1, "T": 1}},
    )
    print_report(report, {"passages": 8, "documents": 4, "macro_f1": 0.9, "accuracy": 0.875,
                          "confusion": {"E": {"E": 4}, "T": {"T": 3, "E": 1}}})
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines at the terminal width
    assert "Treffer@1 │ 0.750 │" in out
    assert "Phase korrekt, Antwortstelle zitiert │ 1.000 │" in out
    assert "Fragen mit zitierter Antwortstelle │ 3 │" in out  # a count, not "3.000"
    assert "Latenz p50 (ms) │ 12.3 │" in out
    assert "Phasen der Fragen" in out and "Phasen der Passagen" in out and "Makro-F1 0.900" in out

def test_unknown_benchmark_and_missing_gold_file_are_german_errors(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli.app, ["eval", "--benchmark", "squad"])
    assert result.exit_code == 2 and "unbekannter Benchmark 'squad'" in result.output
    missing = tmp_path / "fehlt.jsonl"
    result = CliRunner().invoke(cli.app, ["eval", "--gold", str(missing)])
    assert result.exit_code == 2 and "Gold-Datei nicht gefunden" in result.output and "fehlt.jsonl" in result.output
    assert "Traceback" not in result.output


def test_missing_evaluation_data_is_a_german_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An installed package has no eval/ folder beside it: say so instead of evaluating zero questions.
    from services import benchmarks

    monkeypatch.setattr(benchmarks, "GOLD_DIR", tmp_path / "eval" / "gold")
    result = CliRunner().invoke(cli.app, ["eval", "--cache", str(tmp_path / "cache")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    output = " ".join(result.output.split())
    assert "Ordner der Gold-Fragen nicht gefunden" in output and "Quell-Repository" in output
