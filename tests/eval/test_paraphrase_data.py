"""The paraphrase set's data must stay true to the corpus: every fact in summaries.md has a facts.jsonl line, every
answer phrase stands verbatim in its source as the loaders read it, and the locator names where it stands."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import pytest

from core.settings import Settings
from ingest.loaders import load_file
from ingest.models import Block
from retriever.models import Citation
from services.evaluation import locator_matches, normalise

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "corpus"
SET_DIR = REPO / "eval" / "paraphrase"
SUMMARIES = (SET_DIR / "summaries.md").read_text(encoding="utf-8")
FACTS = [json.loads(line) for line in (SET_DIR / "facts.jsonl").read_text(encoding="utf-8").splitlines() if line]
PHASES = {"E", "K", "T", "übergreifend"}


@lru_cache(maxsize=None)
def blocks_of(relative: str) -> tuple[str, list[Block]]:
    doc = load_file(CORPUS / relative, Settings(corpus_dir=CORPUS), CORPUS)
    return doc.title, doc.blocks


def test_every_fact_in_the_summaries_has_exactly_one_data_line() -> None:
    in_summaries = re.findall(r"\[(F\d{3})\]", SUMMARIES)
    in_data = [fact["fact_id"] for fact in FACTS]
    assert len(in_summaries) == len(set(in_summaries)), "Fakt-ID doppelt in summaries.md"
    assert len(in_data) == len(set(in_data)), "Fakt-ID doppelt in facts.jsonl"
    assert set(in_summaries) == set(in_data)


def test_set_sizes_meet_the_floor() -> None:
    not_contained = [
        item for line in re.findall(r"^Nicht enthalten: (.+)$", SUMMARIES, flags=re.MULTILINE)
        for item in line.split(";") if item.strip()
    ]
    documents = {path.relative_to(CORPUS).as_posix() for path in CORPUS.glob("*/*")
                 if path.suffix in {".md", ".html", ".pdf", ".vtt"}}
    per_document = {source: sum(1 for fact in FACTS if fact["source"] == source) for source in documents}
    assert len(FACTS) >= 140
    assert len(not_contained) >= 45
    assert len(re.findall(r"^## D\d{2} ", SUMMARIES, flags=re.MULTILINE)) == len(documents)
    assert min(per_document.values()) >= 3, f"Quelle mit zu wenigen Fakten: {per_document}"


@pytest.mark.parametrize("fact", FACTS, ids=lambda fact: fact["fact_id"])
def test_answer_phrase_stands_where_the_locator_says(fact: dict) -> None:
    assert (CORPUS / fact["source"]).is_file(), f"{fact['fact_id']}: Datei fehlt: {fact['source']}"
    assert fact["phase"] in PHASES
    title, blocks = blocks_of(fact["source"])
    phrase = normalise(fact["answer_phrase"])
    holding = [block for block in blocks if phrase in normalise(block.text)]
    assert holding, f"{fact['fact_id']}: Antwortphrase nicht in der Quelle: {fact['answer_phrase']!r}"
    assert any(locator_matches(_citation_of(block, title), fact["locator"]) for block in holding), (
        f"{fact['fact_id']}: Fundstelle {fact['locator']} passt nicht zur Antwortphrase"
    )


def _citation_of(block: Block, title: str) -> Citation:
    return Citation(
        n=1, source_id="", title=title, type="", url=None, locator="", snippet=block.text, score=0.0,
        page=block.page, start=block.start, end=block.end, section=block.section,
    )


def test_questions_point_to_their_fact_and_unanswerables_to_no_source() -> None:
    questions = [json.loads(line) for line in (SET_DIR / "questions.jsonl").read_text(encoding="utf-8").splitlines()]
    unanswerable = [json.loads(line) for line in (SET_DIR / "unanswerable.jsonl").read_text(encoding="utf-8").splitlines()]
    facts = {fact["fact_id"]: fact for fact in FACTS}
    assert len(questions) >= 80 and len(unanswerable) >= 30
    assert len({q["fact_id"] for q in questions}) == len(questions), "ein Fakt, mehrere Fragen"
    for question in questions:
        fact = facts[question["fact_id"]]
        assert question["sources"] == [fact["source"]] and question["answer_phrase"] == fact["answer_phrase"]
        assert question["locator"] == fact["locator"] and question["phase"] == fact["phase"]
    assert all("sources" not in q and "answer_phrase" not in q and q["phase"] in PHASES for q in unanswerable)
    ids = [q["id"] for q in questions + unanswerable]
    assert len(ids) == len(set(ids))
