"""Dossiers: verbatim excerpts at their locators, one entry per document, notes for thin phases, briefings with
checked citations, and the three exports read back."""

from __future__ import annotations

import io
import re

import pytest
import webvtt
from docx import Document
from pypdf import PdfReader

from services.dossier import Dossier, DossierRequest, parse_briefing
from services.dossier_export import file_name, to_docx, to_markdown, to_pdf
from tests.llm_fake import llm_settings


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.fixture(scope="module")
def dossier(trainer) -> Dossier:  # noqa: ANN001
    request = DossierRequest("Frequenzmessung Passantenbefragung Generationenwechsel", ["E", "K", "T"], size=4)
    return trainer.services.dossiers.build(request, base_url="http://werkstatt.test")


def test_every_excerpt_stands_verbatim_in_its_source_at_its_locator(trainer, dossier) -> None:  # noqa: ANN001
    excerpts = [(source, excerpt) for _, source in dossier.all_sources() for excerpt in source.excerpts]
    assert len(excerpts) >= 5
    pdf_pages = [_flat(page.extract_text()) for page in PdfReader(trainer.corpus["pdf"]).pages]
    captions = webvtt.read(str(trainer.corpus["webtalk"]))
    for source, excerpt in excerpts:
        chunk = trainer.services.store.get([excerpt.chunk_id])[0]
        assert chunk.metadata["source_id"] == source.source_id
        assert excerpt.text in chunk.text
        if source.type == "course":
            assert excerpt.locator == f"Seite {excerpt.page}"
            assert _flat(excerpt.text) in pdf_pages[excerpt.page - 1]
            assert excerpt.link.endswith(f"/datei#page={excerpt.page}")
        elif source.type == "webtalk":
            caption = next(c for c in captions if abs(c.start_in_seconds - excerpt.start) < 1)
            assert excerpt.text in caption.text and excerpt.speaker == caption.voice
            assert excerpt.speaker in excerpt.locator and excerpt.link.endswith(f"?t={int(excerpt.start)}")
        else:
            assert excerpt.section is None or excerpt.section in excerpt.locator
            assert excerpt.link == source.url


def test_each_phase_lists_a_document_once_with_two_to_four_excerpts(dossier) -> None:  # noqa: ANN001
    assert [section.phase for section in dossier.phases] == ["E", "K", "T"]
    for section in dossier.phases:
        ids = [source.source_id for source in section.sources]
        assert len(ids) == len(set(ids))
        assert [source.n for source in section.sources] == list(range(1, len(ids) + 1))
        for source in section.sources:
            chunks = {excerpt.chunk_id for excerpt in source.excerpts}
            assert 1 <= len(source.excerpts) <= 4
            assert len(source.excerpts) >= 2 or len(chunks) == 1


def test_webtalk_moments_course_pages_and_related_terms(dossier) -> None:  # noqa: ANN001
    by_phase = {section.phase: section for section in dossier.phases}
    assert by_phase["T"].moments and all("?t=" in moment.link for moment in by_phase["T"].moments)
    assert by_phase["E"].course_pages and all(page.page in (1, 2) for page in by_phase["E"].course_pages)
    terms = by_phase["E"].related_terms
    assert terms and all(term[:1].isupper() for term in terms)
    text = " ".join(e.text for s in by_phase["E"].sources for e in s.excerpts)
    assert all(term in text for term in terms)  # surface forms, not stems


def test_thin_and_empty_phases_get_a_german_note(trainer) -> None:  # noqa: ANN001
    dossier = trainer.services.dossiers.build(DossierRequest("Generationenwechsel Nachfolge", ["T", "K"]))
    transformation, konzeption = dossier.phases
    assert len(transformation.sources) == 1
    assert transformation.note == "Zur Transformation gibt es zu diesem Thema nur eine Quelle."
    assert not konzeption.sources
    assert konzeption.note == "Zur Konzeption gibt es zu diesem Thema keine Quelle im Archiv."
    assert dossier.mode == "extractive" and "rein extraktiv" in dossier.notice


def test_type_filter_keeps_only_that_type(trainer) -> None:  # noqa: ANN001
    request = DossierRequest("Frequenzmessung Passantenbefragung", ["E"], types=["article"])
    dossier = trainer.services.dossiers.build(request)
    assert dossier.phases[0].sources
    assert {source.type for _, source in dossier.all_sources()} == {"article"}


def test_briefing_keeps_only_sentences_with_valid_citations() -> None:
    reply = (
        "BRIEFING:\nDie Befragung findet an drei Tagen statt [1]. Die Stadt hat 40 Millionen Einwohner [7]. "
        "Ohne Beleg steht dieser Satz da.\nFRAGEN:\n- Wie viele Passanten werden befragt? [1]\n"
        "- Was halten Sie davon?\n2. Welche Orte eignen sich für die Befragung? [2]"
    )
    briefing = parse_briefing(reply, {1, 2})
    assert briefing is not None
    assert briefing.text == "Die Befragung findet an drei Tagen statt [1]."
    assert briefing.questions == ["Wie viele Passanten werden befragt? [1]",
                                  "Welche Orte eignen sich für die Befragung? [2]"]
    assert briefing.verification["markers_removed"] == 1
    assert briefing.verification["sentences_dropped"] == 2 and briefing.verification["questions_dropped"] == 1


def test_with_a_language_model_each_phase_gets_a_checked_briefing(trainer, fake_llm) -> None:  # noqa: ANN001
    fake_llm.script("BRIEFING:\nDie Frequenzmessung zählt Passanten mit Lasersensoren [1]. Erfunden [9].\n"
                    "FRAGEN:\n- Welche Kennzahlen nennt die Lerneinheit? [1]")
    services = trainer.services_with(**llm_settings(fake_llm))
    dossier = services.dossiers.build(DossierRequest("Frequenzmessung", ["E"]))
    briefing = dossier.phases[0].briefing
    assert dossier.mode == "llm" and "Sprachmodell" in dossier.notice
    assert briefing is not None and briefing.text == "Die Frequenzmessung zählt Passanten mit Lasersensoren [1]."
    assert briefing.questions == ["Welche Kennzahlen nennt die Lerneinheit? [1]"]
    prompt = fake_llm.last_user()
    assert "Frequenzmessung" in prompt and '<quelle nr="1"' in prompt


def test_model_failure_leaves_the_extractive_dossier(trainer, fake_llm) -> None:  # noqa: ANN001
    from tests.llm_fake import Reply

    fake_llm.script(Reply(status=500))
    services = trainer.services_with(**llm_settings(fake_llm))
    dossier = services.dossiers.build(DossierRequest("Frequenzmessung", ["E"]))
    assert dossier.mode == "extractive" and dossier.phases[0].briefing is None and dossier.phases[0].sources


def _expected_parts(dossier: Dossier) -> tuple[list[str], list[str], list[str]]:
    sources = [source for _, source in dossier.all_sources()]
    excerpts = [excerpt.text for source in sources for excerpt in source.excerpts]
    links = sorted({excerpt.link for source in sources for excerpt in source.excerpts} | {s.link for s in sources})
    return excerpts, links, [source.title for source in sources]


def test_markdown_export(dossier) -> None:  # noqa: ANN001
    text = to_markdown(dossier)
    excerpts, links, titles = _expected_parts(dossier)
    assert "## Quellenverzeichnis" in text and "Stand des Archivs:" in text
    assert all(excerpt in text for excerpt in excerpts) and all(link in text for link in links)
    assert all(f": {title} (" in text.split("## Quellenverzeichnis")[1] for title in titles)
    assert file_name(dossier, "md").startswith("materialmappe-frequenzmessung-passantenbefragung")


def test_docx_export_reopened_with_python_docx(dossier) -> None:  # noqa: ANN001
    document = Document(io.BytesIO(to_docx(dossier)))
    text = "\n".join(paragraph.text for paragraph in document.paragraphs)
    excerpts, links, titles = _expected_parts(dossier)
    assert "Quellenverzeichnis" in text and "Stand des Archivs:" in text
    assert all(excerpt in text for excerpt in excerpts) and all(link in text for link in links)
    assert all(title in text.split("Quellenverzeichnis")[1] for title in titles)


def test_pdf_export_read_back_with_pypdf(dossier) -> None:  # noqa: ANN001
    reader = PdfReader(io.BytesIO(to_pdf(dossier)))
    text = _flat(" ".join(page.extract_text() for page in reader.pages))
    excerpts, links, titles = _expected_parts(dossier)
    assert "Quellenverzeichnis" in text and "Stand des Archivs:" in text and "Auszüge" in text  # umlauts render
    assert all(_flat(excerpt) in text for excerpt in excerpts)
    uris = {annot.get_object()["/A"]["/URI"] for page in reader.pages for annot in page.get("/Annots", [])}
    assert set(links) <= uris
    assert all(_flat(title) in text.split("Quellenverzeichnis")[1] for title in titles)
