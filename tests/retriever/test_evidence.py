"""Evidence selection (retriever/evidence.py): answer types, features, the versioned linear models, highlights, and
the extractive answer built from them (HashEmbeddings; the trained figures are in bench/train_evidence.py)."""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import pytest

from core.prompts import render
from retriever.answer import ExtractiveAnswerer
from retriever.evidence import (
    RESULT_FEATURES, SENTENCE_FEATURES, EvidenceScorer, LinearModel, TermStats, answer_type, candidate_sentences,
    highlight_spans, load_answerability_model, load_sentence_model, result_features,
)
from retriever.models import SearchHit
from tests.helpers import HashEmbeddings

QUESTION = "Wie viele Passanten wurden in Hohenbrück befragt?"


def _hit(chunk_id: str, text: str, score: float, **meta: str) -> SearchHit:
    return SearchHit(chunk_id, text, score, {"title": f"Titel {chunk_id}", "type": "article", "source_id": chunk_id,
                                             **meta})


def _hits() -> list[SearchHit]:
    return [
        _hit("a", "Hohenbrück hat im Sommer eine Passantenbefragung gemacht. Befragt wurden 1.214 Passanten in der "
                  "Fußgängerzone. Die Ergebnisse stehen im Bericht.", 0.6),
        _hit("b", "Herzlich willkommen zu unserem Webtalk über Hohenbrück und die Befragung von Passanten.", 0.5,
             type="webtalk"),
        _hit("c", "Die Stadt plant neue Sitzbänke am Marktplatz.", 0.3),
    ]


@pytest.mark.parametrize(("question", "expected"), [
    ("Wie viele Leute wurden befragt?", "number"), ("wieviel hat das gekostet", "number"),
    ("Was kostet die Lizenz?", "number"), ("Wann startete der Lieferdienst?", "date"),
    ("Wer hat die Befragung durchgeführt?", "person"), ("Wo stehen die Sensoren?", "place"),
    ("Warum zählt WLAN ungenauer?", "reason"), ("Was wünschen sich die Besucher?", "other"),
])
def test_the_question_word_gives_the_expected_answer_type(question: str, expected: str) -> None:
    assert answer_type(question) == expected


def test_highlights_mark_what_answers_the_question_type_and_nothing_else() -> None:
    text = "Befragt wurden 1.214 Passanten, das kostete 14.800 Euro. [1]"
    spans = highlight_spans("Wie viele Passanten?", text, 0, text.index(" [1]"))
    assert [text[s:e] for s, e in spans] == ["1.214", "14.800 Euro"]
    date_text = "Der Dienst startete am 15. März 2023 in Ulm."
    assert [date_text[s:e] for s, e in highlight_spans("Wann startete er?", date_text, 0, len(date_text))] == [
        "15. März", "2023"]
    assert highlight_spans("Was wünschen sich die Besucher?", text, 0, len(text)) == []


def test_features_see_overlap_answer_type_and_moderation() -> None:
    hits = _hits()
    sentences = candidate_sentences(hits)
    features = EvidenceScorer(TermStats(None)).features(QUESTION, hits, sentences, np.full(len(sentences), 0.8))
    column = {name: i for i, name in enumerate(SENTENCE_FEATURES)}
    rows = {s.text[:20]: features.rows[i] for i, s in enumerate(sentences)}
    answer, greeting, benches = rows["Befragt wurden 1.214"], rows["Herzlich willkommen "], rows["Die Stadt plant neue"]
    assert answer[column["number_match"]] == 1.0 and answer[column["number_missing"]] == 0.0
    assert benches[column["number_missing"]] == 1.0
    assert answer[column["overlap_idf"]] > benches[column["overlap_idf"]]
    assert greeting[column["moderation"]] == 1.0 and answer[column["moderation"]] == 0.0
    assert features.rows.shape == (len(sentences), len(SENTENCE_FEATURES))
    assert result_features(features, np.arange(len(sentences), dtype=float)).shape == (len(RESULT_FEATURES),)


def test_models_round_trip_as_versioned_json_and_refuse_other_features(tmp_path) -> None:  # noqa: ANN001
    model = LinearModel(SENTENCE_FEATURES, np.linspace(-1, 1, len(SENTENCE_FEATURES)), 0.25, 0.4, info={"x": 1})
    path = tmp_path / "model.json"
    path.write_text(model.to_json(), encoding="utf-8")
    loaded = LinearModel.load(path, SENTENCE_FEATURES)
    rows = np.random.default_rng(0).normal(size=(5, len(SENTENCE_FEATURES)))
    assert np.allclose(loaded.probability(rows), model.probability(rows), atol=1e-5) and loaded.threshold == 0.4
    with pytest.raises(ValueError, match="neu trainieren"):
        LinearModel.load(path, RESULT_FEATURES)


def test_shipped_models_are_trained_and_load() -> None:
    sentence, answerability = load_sentence_model(), load_answerability_model()
    assert sentence.features == SENTENCE_FEATURES and answerability.features == RESULT_FEATURES
    assert 0.0 < answerability.threshold < 1.0
    # The caution level lies above the abstention threshold: answers between the two ask to check the source.
    assert answerability.caution is not None and answerability.threshold < answerability.caution < 1.0
    assert "caution" in answerability.info
    for model in (sentence, answerability):
        assert model.info.get("script") == "bench/train_evidence.py" and model.info.get("trained_on")
    assert files("retriever").joinpath("calibration", "abstention.json").is_file() is False  # the old rule is gone


def test_the_answer_leads_with_the_answering_sentence_and_marks_the_number() -> None:
    answerer = ExtractiveAnswerer(None, HashEmbeddings(), rerank_depth=0)  # type: ignore[arg-type]
    answerer.answer_threshold = answerer.caution_threshold = 0.0
    answer = answerer.run(QUESTION, hits=_hits())
    assert not answer.abstained and not answer.uncertain and answer.notice is None
    assert answer.answer.startswith("Befragt wurden 1.214 Passanten in der Fußgängerzone. [1]")
    assert answer.answer.count("[") <= 3  # 1–3 sentences, each with its marker
    assert [answer.answer[s:e] for s, e in answer.highlights] == ["1.214"]
    assert answer.answerability is not None and 0.0 <= answer.answerability <= 1.0


def test_the_answerability_threshold_decides_and_the_score_is_kept() -> None:
    answerer = ExtractiveAnswerer(None, HashEmbeddings(), rerank_depth=0)  # type: ignore[arg-type]
    answerer.answer_threshold = 1.01
    answer = answerer.run(QUESTION, hits=_hits())
    assert answer.abstained and answer.highlights == [] and answer.answerability is not None
    answerer.caution_threshold = 1.02  # a refused answer is refused, never "answered with a caution"
    answer = answerer.run(QUESTION, hits=_hits())
    assert answer.abstained and not answer.uncertain and answer.notice is None


def test_an_answer_below_the_caution_level_asks_to_check_the_source() -> None:
    answerer = ExtractiveAnswerer(None, HashEmbeddings(), rerank_depth=0)  # type: ignore[arg-type]
    answerer.answer_threshold = 0.0
    answerer.caution_threshold = 1.01
    answer = answerer.run(QUESTION, hits=_hits())
    assert not answer.abstained and answer.uncertain
    assert answer.answer.startswith("Befragt wurden 1.214 Passanten")  # the same answer, only marked
    assert answer.notice == render("answer_uncertain.txt") and "zitierte Stelle prüfen" in answer.notice
    answerer.caution_threshold = answer.answerability - 1e-3  # just below the answer's probability: no caution
    assert not answerer.run(QUESTION, hits=_hits()).uncertain
