"""The answer and abstention figures of `stadtretter eval` and the paraphrase set loader (no model work)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retriever.models import Answer
from services.benchmarks import load_paraphrase
from services.evaluation import auc, first_cited_sentence, recall_at_false_abstention


def test_auc_counts_pairs_ordered_right_and_ties_half() -> None:
    assert auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert auc([0.1], [0.9]) == 0.0
    assert auc([0.5, 0.9], [0.5]) == 0.75
    assert auc([], [0.3]) == 0.0


def test_recall_at_false_abstention_keeps_wrong_refusals_within_the_limit() -> None:
    answerable = [0.9] * 18 + [0.2, 0.1]  # 20 answerable: at most one may be refused at 5 %
    unanswerable = [0.05, 0.15, 0.3, 0.95]
    # The threshold is the second-lowest answerable score (0.2): 0.1 is refused, 0.05 and 0.15 are caught.
    assert recall_at_false_abstention(answerable, unanswerable) == 0.5
    assert recall_at_false_abstention(answerable, unanswerable, limit=0.10) == 0.75  # two refusals allowed: < 0.9


def test_the_first_cited_sentence_is_the_text_before_the_first_marker() -> None:
    answer = Answer("F", "Befragt wurden 1.214 Passanten. [1] Die Kosten lagen bei 14.800 Euro. [2]", [], False)
    assert first_cited_sentence(answer) == "Befragt wurden 1.214 Passanten."
    assert first_cited_sentence(Answer("F", "Ohne Marke.", [], False)) == "Ohne Marke."


def test_paraphrase_set_is_none_until_it_exists_and_reads_the_gold_format(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    assert load_paraphrase(tmp_path / "paraphrase", corpus) is None
    folder = tmp_path / "paraphrase"
    folder.mkdir()
    rows = [{"id": "p-001", "question": "Wie viele Leute hat man in Hohenbrück gefragt?", "fact_id": "f1",
             "sources": ["articles/a1.md"], "answer_phrase": "1.214 vollständige Interviews", "phase": "E"}]
    (folder / "questions.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    (folder / "unanswerable.jsonl").write_text(json.dumps({"id": "p-u01", "question": "Was kostet Parken?"}) + "\n",
                                               encoding="utf-8")
    eval_set = load_paraphrase(folder, corpus)
    assert eval_set is not None and eval_set.name == "paraphrase" and eval_set.corpus_dir == corpus
    answerable, unanswerable = eval_set.questions
    assert answerable.answerable and answerable.answer_phrase == "1.214 vollständige Interviews"
    assert not unanswerable.answerable


def test_a_broken_paraphrase_line_is_a_german_error_naming_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "paraphrase"
    folder.mkdir()
    (folder / "questions.jsonl").write_text('{"id": "p-001", "question": \n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"questions\.jsonl:1: ungültiges JSON"):
        load_paraphrase(folder, tmp_path)
