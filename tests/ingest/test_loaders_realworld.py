"""The real municipal documents of the Ulm smart city strategy: 13 Markdown files and a 37-page PDF."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.chunking import Chunker
from ingest.loaders import load_file
from core.settings import Settings

ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "realworld" / "ulm_smart_city"
pytestmark = pytest.mark.skipif(not ROOT.is_dir(), reason="real-world documents not available")

# "Innen- stadt": a hyphen, a space, then a lowercase word that is not a conjunction ("Wengen- und ...")
BROKEN_HYPHEN = re.compile(r"\w- (?!(?:und|oder|bzw|sowie|als|bis|wie)\b)[a-zäöüß]")


def _settings() -> Settings:
    return Settings(file_timeout_seconds=60)


def test_markdown_documents() -> None:
    files = sorted((ROOT / "markdown").glob("*.md"))
    assert len(files) == 13
    chunker = Chunker()
    for path in files:
        doc = load_file(path, _settings(), corpus_root=ROOT)
        assert doc.title and doc.type == "article" and doc.blocks, path.name
        source = " ".join(path.read_text(encoding="utf-8").split())
        for chunk in chunker.run(doc):
            assert chunk.text.strip(), path.name
            assert not re.search(r"!\[|\]\(|\*\*|^#", chunk.text, re.MULTILINE), (path.name, chunk.text[:200])
            for m in BROKEN_HYPHEN.finditer(chunk.text):  # only allowed where the source itself has it
                assert chunk.text[m.start(): m.end() + 10] in source, (path.name, chunk.text[m.start(): m.end() + 10])

    doc = load_file(ROOT / "markdown" / "01_Ausgangslage-und-Herausforderungen.md", _settings(), corpus_root=ROOT)
    assert doc.title == "Ausgangslage und Herausforderungen"
    sections = {b.section for b in doc.blocks}
    assert "Intro › Wieso, Weshalb, Warum?" in sections
    assert "Intro › Nährboden und Projektumfeld: Bisherige Entwicklung zu einer digitalen Stadt › Ulmer Nährboden" in sections
    assert "Anhang › Smart City Vorbilder › Kopenhagen" in sections

    mobility = load_file(ROOT / "markdown" / "03_Handlungsfelder_Mobilitaet.md", _settings(), corpus_root=ROOT)
    assert mobility.title == "Mobilität"
    assert "2. Leitinien › Bedarfsorientierte Angebote zu Mobility as a Service (MAAS)" in {
        b.section for b in mobility.blocks
    }


def test_pdf_document() -> None:
    doc = load_file(ROOT / "pdf" / "Ueberblick_Ulm4CleverCity.pdf", _settings(), corpus_root=ROOT)
    # /Title is "PowerPoint-Präsentation": the title comes from the largest text on page 1 instead
    assert doc.title == "Ulm4CleverCity – Smart City Modellstadt"
    assert doc.author == "Anne Baumgärtel"
    assert doc.date == "2020-08-13"
    pages = {b.page for b in doc.blocks}
    warned = {int(m.group(1)) for w in doc.warnings if (m := re.match(r"Seite (\d+) enthält keinen Text", w))}
    assert pages | warned == set(range(1, 38))
    # the running header "13. August 2020 DIGITALE AGENDA | STADT ULM <n>" is gone
    assert not any("DIGITALE AGENDA | STADT ULM" in b.text and "August" in b.text for b in doc.blocks)
    # slide titles become sections
    sections = {b.section for b in doc.blocks}
    assert {"Projektstruktur", "17 Prämissen und Leitplanken", "Der Ulmer Weg"} <= sections

    chunks = Chunker().run(doc)
    assert chunks and all(c.text.strip() for c in chunks)
    assert all(isinstance(c.metadata["page"], int) for c in chunks)
    text = "\n".join(c.text for c in chunks)
    assert not BROKEN_HYPHEN.search(text), BROKEN_HYPHEN.search(text)
    assert "Beteiligungsplattform" in text  # "Beteiligungsplatt-\nform" joined
    assert "GitHub-Prozess" in text  # "GitHub-\nProzess": capitalised continuation keeps the hyphen
