"""Chunker: structure, pages, sentences, transcripts, ids and metadata."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from core.sentences import split_sentences
from ingest.chunking import Chunker
from ingest.models import Block, SourceDocument

METADATA_KEYS = {
    "source_id", "title", "type", "url", "path", "date", "date_int", "author", "section", "page", "start", "end",
    "speakers", "cues", "chunk_index", "content_hash",
}  # fmt: skip


def make_doc(blocks: list[Block], **kwargs: object) -> SourceDocument:
    fields: dict[str, object] = {
        "path": Path("/korpus/articles/test.md"), "source_id": "test-0123abcd", "title": "Testdokument",
        "type": "article", "blocks": blocks,
    }  # fmt: skip
    fields.update(kwargs)
    return SourceDocument(**fields)  # type: ignore[arg-type]


SENTENCES = [
    "Am 18. März 2024 beschloss der Rat z. B. neue Regeln für die Innenstadt.",
    "Die Kosten liegen bei ca. 3.5 Mio. Euro bzw. etwas darunter.",
    "Dr. Müller erläuterte die Maßnahme Nr. 7 im Detail.",
    "Danach folgte eine lange Diskussion!",
    "Wer bezahlt das am Ende?",
    "Die 2. Phase beginnt im Herbst.",
]


def test_split_sentences_german() -> None:
    assert split_sentences(" ".join(SENTENCES)) == SENTENCES
    assert split_sentences("Er kam im Jahr 2020. Danach ging er.") == ["Er kam im Jahr 2020.", "Danach ging er."]
    assert split_sentences("Erster Absatz ohne Punkt\n\nZweiter Absatz") == ["Erster Absatz ohne Punkt", "Zweiter Absatz"]
    assert split_sentences("„Das ist gut.“ Sagte sie.") == ["„Das ist gut.“", "Sagte sie."]
    assert split_sentences("") == []


def test_sections_and_packing() -> None:
    blocks = [
        Block("Absatz eins.", section="A"),
        Block("Absatz zwei.", section="A"),
        Block("Absatz drei.", section="A › B"),
        Block("Absatz vier.", section=None),
    ]
    chunks = Chunker(chunk_chars=200).run(make_doc(blocks))
    assert [c.text for c in chunks] == ["Absatz eins.\n\nAbsatz zwei.", "Absatz drei.", "Absatz vier."]
    assert [c.metadata.get("section") for c in chunks] == ["A", "A › B", None]
    assert chunks[0].embed_text == "Testdokument › A\nAbsatz eins.\n\nAbsatz zwei."
    assert chunks[2].embed_text == "Testdokument\nAbsatz vier."


def test_no_chunk_crosses_a_pdf_page() -> None:
    blocks = [Block(f"Seite {p} Absatz {i}.", section="Kapitel", page=p) for p in (1, 2, 3) for i in range(3)]
    chunks = Chunker(chunk_chars=1000).run(make_doc(blocks))
    assert [c.metadata["page"] for c in chunks] == [1, 2, 3]
    for chunk in chunks:
        assert all(f"Seite {chunk.metadata['page']} " in line for line in chunk.text.split("\n\n"))


def test_long_block_is_split_at_sentences_only() -> None:
    text = " ".join(SENTENCES * 6)
    budget = 200
    chunks = Chunker(chunk_chars=budget).run(make_doc([Block(text, section="S")]))
    assert len(chunks) > 3
    sentence_set = set(SENTENCES)
    for chunk in chunks:
        assert len(chunk.text) <= budget * 1.3
        assert all(s in sentence_set for s in split_sentences(chunk.text)), chunk.text
    assert " ".join(c.text for c in chunks) == text


def test_small_tail_joins_previous_chunk() -> None:
    budget = 200
    body = "Ein mittellanger Satz über die Innenstadt und ihre Läden. " * 3  # ~174 chars
    blocks = [Block(body.strip(), section="S"), Block("Kurzer Rest.", section="S")]
    chunks = Chunker(chunk_chars=budget).run(make_doc(blocks))
    assert len(chunks) == 1 and chunks[0].text.endswith("Kurzer Rest.")


def test_giant_sentence_is_cut_at_whitespace() -> None:
    budget = 200
    giant = " ".join(["Wort"] * 200) + "."  # ~1000 chars, one sentence
    chunks = Chunker(chunk_chars=budget).run(make_doc([Block(giant)]))
    assert len(chunks) >= 4
    assert all(len(c.text) <= budget * 1.3 for c in chunks)
    assert all(not c.text.startswith(" ") and "Wor " not in c.text for c in chunks)


def test_list_block_split_at_lines() -> None:
    items = "\n".join(f"- Punkt {i} mit etwas Text dazu" for i in range(40))
    chunks = Chunker(chunk_chars=200).run(make_doc([Block(items, section="Liste")]))
    assert len(chunks) > 1
    for chunk in chunks:
        assert all(line.startswith("- Punkt ") for line in chunk.text.split("\n"))


def test_transcript_grouping() -> None:
    cues = [
        Block("Willkommen.", start=0.0, end=4.0, speaker="Maria Brandt"),
        Block("Heute geht es um Leerstand.", start=4.0, end=10.0, speaker="Maria Brandt"),
        Block("Danke für die Einladung.", start=11.0, end=15.0, speaker="Tobias Lang"),
        Block("Eine Frage aus dem Chat.", start=50.0, end=58.0, speaker=None),
        Block("Zweiter Teil beginnt.", start=61.0, end=70.0, speaker="Tobias Lang"),
        Block("Und weiter.", start=71.0, end=80.0, speaker="Maria Brandt"),
    ]
    doc = make_doc(cues, type="webtalk", path=Path("/korpus/webtalks/talk.vtt"))
    chunks = Chunker(chunk_chars=900, transcript_seconds=60).run(doc)
    assert [c.text for c in chunks] == [
        "Maria Brandt: Willkommen.\nMaria Brandt: Heute geht es um Leerstand.\nTobias Lang: Danke für die Einladung.\n"
        "Eine Frage aus dem Chat.",
        "Tobias Lang: Zweiter Teil beginnt.\nMaria Brandt: Und weiter.",
    ]
    first, second = (c.metadata for c in chunks)
    assert (first["start"], first["end"], first["speakers"]) == (0.0, 58.0, "Maria Brandt, Tobias Lang")
    assert (second["start"], second["end"], second["speakers"]) == (61.0, 80.0, "Tobias Lang, Maria Brandt")
    assert json.loads(first["cues"]) == [[0.0, 4.0], [4.0, 10.0], [11.0, 15.0], [50.0, 58.0]]
    assert json.loads(second["cues"]) == [[61.0, 70.0], [71.0, 80.0]]
    assert "page" not in first


def test_transcript_respects_char_budget() -> None:
    cues = [Block("Ein Satz mit ein paar Worten darin. " * 2, start=float(i), end=i + 1.0) for i in range(20)]
    chunks = Chunker(chunk_chars=200, transcript_seconds=600).run(make_doc(cues, type="webtalk"))
    assert len(chunks) > 3
    assert all(len(c.text) <= 200 for c in chunks)
    starts = [c.metadata["start"] for c in chunks]
    assert starts == sorted(starts)
    for chunk in chunks:  # one [start, end] per line
        assert len(json.loads(chunk.metadata["cues"])) == len(chunk.text.split("\n"))


def test_ids_stable_and_unique_with_duplicate_paragraphs() -> None:
    blocks = [Block("Gleicher Absatz.", section="A"), Block("Gleicher Absatz.", section="B"), Block("Anders.", section="C")]
    doc = make_doc(blocks)
    first = Chunker().run(doc)
    second = Chunker().run(make_doc([Block(b.text, section=b.section) for b in blocks]))
    assert [c.id for c in first] == [c.id for c in second]
    assert len({c.id for c in first}) == 3
    expected = hashlib.sha256("test-0123abcd\x00Gleicher Absatz.\x001".encode()).hexdigest()[:32]
    assert first[1].id == expected
    assert all(re.fullmatch(r"[0-9a-f]{32}", c.id) for c in first)


def test_metadata_complete_and_without_none() -> None:
    doc = make_doc(
        [Block("Text.", section="A", page=3)], url="https://example.org", date="2024-03-18", author="Petra Sommer"
    )
    chunk = Chunker().run(doc)[0]
    assert chunk.metadata == {
        "source_id": "test-0123abcd", "title": "Testdokument", "type": "article", "url": "https://example.org",
        "path": "/korpus/articles/test.md", "date": "2024-03-18", "date_int": 20240318, "author": "Petra Sommer",
        "section": "A", "page": 3, "chunk_index": 0,
        "content_hash": hashlib.sha256(chunk.embed_text.encode()).hexdigest(),
    }  # fmt: skip
    bare = Chunker().run(make_doc([Block("Text.")]))[0]
    assert set(bare.metadata) == {"source_id", "title", "type", "path", "chunk_index", "content_hash"}
    for c in (chunk, bare):
        assert set(c.metadata) <= METADATA_KEYS
        assert all(v is not None for v in c.metadata.values())


def test_empty_blocks_never_make_chunks() -> None:
    chunks = Chunker().run(make_doc([Block("   "), Block("Inhalt."), Block("")]))
    assert [c.text for c in chunks] == ["Inhalt."]
    assert chunks[0].metadata["chunk_index"] == 0


@pytest.mark.parametrize("budget", [200, 900])
def test_chunk_index_sequential(budget: int) -> None:
    blocks = [Block(" ".join(SENTENCES), section=f"S{i}") for i in range(5)]
    chunks = Chunker(chunk_chars=budget).run(make_doc(blocks))
    assert [c.metadata["chunk_index"] for c in chunks] == list(range(len(chunks)))
