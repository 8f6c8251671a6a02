"""`stadtretter eval`: prints every quality figure as a table (or JSON)."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from services.benchmarks import REPO, load_germanquad, load_gold, load_paraphrase, load_phase_passages, load_xquad
from services.evaluation import Report, eval_settings, evaluate, phase_passage_report
from services.container import Services
from services.question_groups import evaluate_grouping, load_labelled
from core.settings import get_settings

console = Console(stderr=True)
BENCHMARKS = {"xquad": load_xquad, "germanquad": load_germanquad}
METRIC_LABELS = {
    "hit@1": "Treffer@1", "hit@3": "Treffer@3", "hit@5": "Treffer@5", "hit@10": "Treffer@10", "mrr": "MRR",
    "ndcg@10": "nDCG@10", "answer_in_top5": "Antwort in Top-5-Abschnitten", "answer_hit": "Antwort im Zitat",
    "answer_in_first": "Antwort im ersten zitierten Satz",
    "locator_accuracy": "Fundstelle korrekt", "abstention_precision": "Enthaltung: Präzision",
    "abstention_recall": "Enthaltung: Trefferquote", "false_abstention_rate": "Enthaltung bei beantwortbaren Fragen",
    "caution_rate": "Mit Vorbehalt beantwortet (beantwortbare Fragen)",
    "unanswerable_caution_rate": "Mit Vorbehalt beantwortet (unbeantwortbare Fragen)",
    "abstention_auc": "Enthaltung: AUC",
    "abstention_recall_at_5pct": "Enthaltung: Trefferquote bei ≤ 5 % Fehlenthaltung",
    "phase_accuracy": "Phase korrekt (Fragen)",
    "phase_accuracy_answer_cited": "Phase korrekt, Antwortstelle zitiert",
    "questions_answer_cited": "  Fragen mit zitierter Antwortstelle",
    "phase_accuracy_answer_not_cited": "Phase korrekt, Antwortstelle nicht zitiert",
    "questions_answer_not_cited": "  Fragen ohne zitierte Antwortstelle",
    "latency_p50_ms": "Latenz p50 (ms)", "latency_p95_ms": "Latenz p95 (ms)",
}


def eval_command(
    gold: Annotated[Optional[Path], typer.Option("--gold", help="Gold-Datei (JSONL); Standard: eval/gold/*.jsonl")] = None,
    benchmark: Annotated[Optional[str], typer.Option("--benchmark", help="xquad | germanquad")] = None,
    cache: Annotated[Path, typer.Option("--cache", help="Ordner für die Auswertungs-Indizes")] = REPO / ".eval-cache",
    as_json: Annotated[bool, typer.Option("--json", help="Kennzahlen als JSON")] = False,
) -> None:
    """Qualität messen: Retrieval, Antworten, Enthaltung, Fundstellen, Phasen."""
    if benchmark and benchmark not in BENCHMARKS:
        console.print(f"[red]Fehler:[/red] unbekannter Benchmark '{benchmark}' (erlaubt: xquad, germanquad)")
        raise typer.Exit(2)
    if gold and not gold.is_file():
        console.print(f"[red]Fehler:[/red] Gold-Datei nicht gefunden: {gold}")
        raise typer.Exit(2)
    base = get_settings()
    try:
        cache.mkdir(parents=True, exist_ok=True)
        eval_set = BENCHMARKS[benchmark](cache) if benchmark else load_gold(gold)
    except (OSError, ValueError, KeyError) as exc:
        console.print(f"[red]Fehler beim Lesen der Auswertungsdaten:[/red] {exc}")
        raise typer.Exit(2) from exc
    services = Services(eval_settings(base, eval_set, cache))
    # The paraphrase set asks about the gold corpus: evaluated with the same index, when it exists.
    paraphrase = load_paraphrase() if benchmark is None and gold is None else None
    with console.status(f"Auswertung '{eval_set.name}': {len(eval_set.questions)} Fragen …"):
        report = evaluate(services, eval_set, answers=benchmark is None, phases=benchmark is None)
        passages = phase_passage_report(services, load_phase_passages(), cache / "phase") if benchmark is None else None
        groups = grouping_report(services) if benchmark is None else None
        paraphrase_report = evaluate(services, paraphrase, phases=False) if paraphrase else None
    if as_json:
        extra = {"paraphrase": asdict(paraphrase_report)} if paraphrase_report else {}
        sys.stdout.write(json.dumps({**asdict(report), "phase_passages": passages, "question_groups": groups,
                                     **extra}, ensure_ascii=False, indent=2) + "\n")
        return
    print_report(report, passages)
    if paraphrase_report:
        print_report(paraphrase_report, None)
    if groups:
        dev, test = groups["dev"], groups["test"]
        Console().print(
            f"Fragengruppen (Fragenprotokoll): Schwelle {dev['threshold']:.2f} gewählt auf der Entwicklungshälfte "
            f"(F1 {dev['f1']:.3f}) · Testhälfte ({test['questions']} Fragen, {test['groups']} Gruppen): paarweise "
            f"Präzision {test['precision']:.3f} · Trefferquote {test['recall']:.3f} · F1 {test['f1']:.3f}"
        )


def grouping_report(services: Services) -> dict | None:
    """Pairwise precision/recall/F1 of the question log's meaning groups on eval/question_groups."""
    folder = REPO / "eval" / "question_groups"
    if not folder.is_dir():
        console.print(f"Fragengruppen: {folder} fehlt, die Gruppierung wird nicht bewertet.")
        return None
    dev, test = evaluate_grouping(load_labelled(folder), services.embeddings, services.search)
    return {"dev": asdict(dev), "test": asdict(test)}


def print_report(report: Report, passages: dict | None) -> None:
    out = Console()
    table = Table(title=f"Auswertung: {report.name} ({report.questions} Fragen)")
    table.add_column("Kennzahl")
    table.add_column("Wert", justify="right")
    for key, value in report.metrics.items():
        table.add_row(METRIC_LABELS.get(key, key), _format(key, value))
    out.print(table)
    out.print(f"Einlesen: {report.ingest_seconds:.1f} s · Fragen: {report.eval_seconds:.1f} s")
    for failed in report.ingest_failed:
        out.print(f"[red]Nicht eingelesen:[/red] {failed['path']}: {failed['reason']}")
    if report.confusion:
        out.print(_confusion_table("Phasen der Fragen (Zeile: Gold, Spalte: erkannt)", report.confusion))
    if passages:
        out.print(
            f"Phasen-Passagen: {passages['passages']} aus {passages['documents']} Dokumenten, Kreuzvalidierung je "
            f"Dokument · Makro-F1 {passages['macro_f1']:.3f} · Genauigkeit {passages['accuracy']:.3f}"
        )
        out.print(_confusion_table("Phasen der Passagen (Zeile: Gold, Spalte: erkannt)", passages["confusion"]))
    if report.worst:
        out.print("[bold]Schwächste Fragen:[/bold]")
        for row in report.worst:
            out.print(f"  {row['id']}: Rang {row['rank'] or '>10'} · Antwort im Zitat: {row['answer_hit']} · {row['question']}")


def _format(key: str, value: float) -> str:
    if key.endswith("_ms"):
        return f"{value:.1f}"
    return f"{value:.0f}" if key.startswith("questions_") else f"{value:.3f}"


def _confusion_table(title: str, confusion: dict[str, dict[str, int]]) -> Table:
    labels = sorted({*confusion, *(p for row in confusion.values() for p in row)})
    table = Table(title=title)
    table.add_column("")
    for label in labels:
        table.add_column(label, justify="right")
    for gold in labels:
        table.add_row(gold, *[str(confusion.get(gold, {}).get(p, 0)) for p in labels])
    return table
