"""The evaluation data must stay true to the corpus: every gold answer phrase and labelled passage stands in its
source (as the loaders read it), every referenced file exists, every id is unique."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest

from ingest.loaders import load_file
from services.benchmarks import load_gold, load_phase_passages
from services.evaluation import normalise
from core.settings import Settings

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "corpus"
GOLD = load_gold()
PASSAGES = load_phase_passages()


@lru_cache(maxsize=None)
def source_text(relative: str) -> str:
    doc = load_file(CORPUS / relative, Settings(corpus_dir=CORPUS), CORPUS)
    parts: list[str] = []
    section = None
    for block in doc.blocks:  # headings live in block.section; put them back where they stood
        if block.section and block.section != section:
            parts.append(block.section.split(" › ")[-1])
        section = block.section
        parts.append(block.text)
    return normalise(" ".join(parts))


def test_set_sizes_meet_the_floor() -> None:
    answerable = [q for q in GOLD.questions if q.answerable]
    assert len(answerable) >= 150
    assert len([q for q in GOLD.questions if not q.answerable]) >= 30
    assert sum(1 for q in answerable if q.sources[0].endswith(".vtt")) >= 30
    assert sum(1 for q in answerable if q.sources[0].endswith(".pdf")) >= 25
    assert len(PASSAGES) >= 200


def test_ids_are_unique() -> None:
    ids = [q.id for q in GOLD.questions]
    assert len(ids) == len(set(ids))
    passage_ids = [p["id"] for p in PASSAGES]
    assert len(passage_ids) == len(set(passage_ids))


@pytest.mark.parametrize("question", [q for q in GOLD.questions if q.answerable], ids=lambda q: q.id)
def test_answer_phrase_stands_in_its_source(question) -> None:  # noqa: ANN001
    for relative in question.sources:
        assert (CORPUS / relative).is_file(), f"{question.id}: Datei fehlt: {relative}"
    assert question.phase in {"E", "K", "T", "übergreifend"}
    assert question.locator, f"{question.id}: Fundstelle fehlt"
    phrase = normalise(question.answer_phrase)
    assert any(phrase in source_text(relative) for relative in question.sources), (
        f"{question.id}: Antwortphrase nicht (mehr) in der Quelle: {question.answer_phrase!r}"
    )


@pytest.mark.parametrize("passage", PASSAGES, ids=lambda p: p["id"])
def test_labelled_passage_stands_in_its_source(passage: dict) -> None:
    assert passage["primary"] in {"E", "K", "T", "übergreifend"}
    assert set(passage["phases"]) <= {"E", "K", "T", "übergreifend"}
    text = normalise(passage["text"]).replace("**", "")
    source = source_text(passage["source"]).replace("**", "")
    # Passages were cut from the raw source; the loaders drop Markdown list markers, so compare word sequences.
    assert _words(text) in _words(source), f"{passage['id']}: Passage nicht in {passage['source']}"


def _words(text: str) -> str:
    import re

    return " ".join(re.findall(r"\w+", text))


def test_a_passage_gets_the_section_it_starts_in() -> None:
    from ingest.models import Block
    from services.benchmarks import _section_of

    blocks = [
        Block("Einleitung ohne Überschrift.", None),
        Block("Was kam heraus?", "Ergebnisse"),
        Block("Nur 41 Prozent der Betriebe haben eine eigene Website.", "Ergebnisse"),
        Block("Wir haben **drei** Maßnahmen ausgewählt und den Plan beschlossen.", "Konzept › Maßnahmen"),
    ]
    assert _section_of("Wir haben drei Maßnahmen ausgewählt", blocks) == "Konzept › Maßnahmen"  # emphasis dropped
    assert _section_of("**Was kam heraus?**\n\nNur 41 Prozent der Betriebe", blocks) == "Ergebnisse"  # lead-in line
    assert _section_of("Einleitung ohne Überschrift.", blocks) is None
    assert _section_of("Ein Satz, der nirgends steht.", blocks) is None


def test_labelled_article_passages_know_their_section() -> None:
    articles = [p for p in PASSAGES if p["source"].startswith("articles/")]
    assert all(p["title"] for p in PASSAGES)
    assert sum(1 for p in articles if p["section"]) >= 0.9 * len(articles)
