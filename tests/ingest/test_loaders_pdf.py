"""PDF loader: text per page, hyphenation, headers/footers, headings, broken and hostile files."""

from __future__ import annotations

import io
import multiprocessing
from pathlib import Path

import pytest
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter

from ingest.loaders import load_file
from ingest.loaders.pdf import Line, build_parsed, join_hyphenated, remove_headers_footers
from ingest.models import LoaderError
from core.settings import Settings

BODY = 11
LINE_H = 5.0  # mm, about 1.3 x the body font size


class _RunningPdf(FPDF):
    """A PDF with a running header and a 'Seite N von M' footer on every page."""

    header_text = "Leitfaden Innenstadt 2024"

    def header(self) -> None:
        self.set_font("helvetica", size=8)
        self.cell(0, 5, self.header_text, new_x="LMARGIN", new_y="NEXT")
        self.ln(4)

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("helvetica", size=8)
        self.cell(0, 5, f"Seite {self.page_no()} von {{nb}}", align="C")


def make_pdf(path: Path, pages: list[list[tuple[str, str]]], running: bool = False, title: str | None = None,
             author: str | None = None) -> Path:  # fmt: skip
    """pages: per page a list of (kind, text) with kind "h" (heading), "p" (paragraph, explicit \\n lines allowed)."""
    pdf = _RunningPdf() if running else FPDF()
    pdf.set_auto_page_break(False)
    if title:
        pdf.set_title(title)
    if author:
        pdf.set_author(author)
    for items in pages:
        pdf.add_page()
        for kind, text in items:
            if kind == "h":
                pdf.set_font("helvetica", style="B", size=18)
                pdf.multi_cell(0, 9, text, new_x="LMARGIN", new_y="NEXT")
                pdf.ln(2)
            else:
                pdf.set_font("helvetica", size=BODY)
                pdf.multi_cell(0, LINE_H, text, new_x="LMARGIN", new_y="NEXT")
                pdf.ln(4)
    path.write_bytes(bytes(pdf.output()))
    return path


@pytest.fixture
def settings() -> Settings:
    return Settings(file_timeout_seconds=60)


def test_pages_headings_and_paragraphs(tmp_path: Path, settings: Settings) -> None:
    path = make_pdf(
        tmp_path / "leitfaden.pdf",
        [
            [("h", "Ausgangslage"), ("p", "Die Innenstadt verliert Kundschaft.\nDer Handel reagiert mit neuen Ideen."),
             ("p", "Ein zweiter Absatz beginnt hier.")],
            [("p", "Fortsetzung auf Seite zwei ohne neue Überschrift."), ("h", "Maßnahmen"),
             ("p", "Ein Leerstandsmanagement wird eingerichtet.")],
        ],
        title="Leitfaden Innenstadt", author="Stadt Lindenfeld",
    )  # fmt: skip
    doc = load_file(path, settings)
    assert doc.title == "Leitfaden Innenstadt"
    assert doc.author == "Stadt Lindenfeld"
    assert doc.date is not None and len(doc.date) == 10
    assert {b.page for b in doc.blocks} == {1, 2}
    texts = [b.text for b in doc.blocks]
    # wrapped lines of one paragraph are joined; a vertical gap starts a new paragraph
    assert "Die Innenstadt verliert Kundschaft. Der Handel reagiert mit neuen Ideen." in texts
    assert "Ein zweiter Absatz beginnt hier." in texts
    # headings become sections (and carry over to the next page until a new heading)
    by_text = {b.text: b for b in doc.blocks}
    assert by_text["Ein zweiter Absatz beginnt hier."].section == "Ausgangslage"
    assert by_text["Fortsetzung auf Seite zwei ohne neue Überschrift."].section == "Ausgangslage"
    assert by_text["Ein Leerstandsmanagement wird eingerichtet."].section == "Maßnahmen"
    assert not any(t in ("Ausgangslage", "Maßnahmen") for t in texts)
    assert doc.warnings == []


def test_hyphenation_at_line_ends(tmp_path: Path, settings: Settings) -> None:
    path = make_pdf(
        tmp_path / "trennung.pdf",
        [[("p", "Die Innen-\nstadt lebt vom Stadt-\nMarketing und vom Wengen-\nund Dichterviertel.")]],
    )
    doc = load_file(path, settings)
    text = " ".join(b.text for b in doc.blocks)
    assert "Innenstadt" in text
    assert "Stadt-Marketing" in text
    assert "Wengen- und Dichterviertel" in text
    assert "Innen- stadt" not in text and "Innen-stadt" not in text


def test_join_hyphenated_rules() -> None:
    assert join_hyphenated("die Innen-", "stadt") == "die Innenstadt"
    assert join_hyphenated("das Stadt-", "Marketing") == "das Stadt-Marketing"
    assert join_hyphenated("Wengen-", "und Dichter") == "Wengen- und Dichter"
    assert join_hyphenated("Ende.", "Neu") == "Ende. Neu"
    assert join_hyphenated("Fahr\u00ad", "rad") == "Fahrrad"
    assert join_hyphenated("Jahre 2020 -", "2024") == "Jahre 2020 - 2024"


def test_running_header_and_page_footer_are_dropped(tmp_path: Path, settings: Settings) -> None:
    topics = ["Leerstand", "Parkraum", "Wochenmarkt", "Begrünung"]
    pages = [[("p", f"Dieser Abschnitt behandelt das Thema {topic} ausführlich.")] for topic in topics]
    path = make_pdf(tmp_path / "kopf.pdf", pages, running=True)
    doc = load_file(path, settings)
    assert [b.page for b in doc.blocks] == [1, 2, 3, 4]
    for block, topic in zip(doc.blocks, topics):
        assert block.text == f"Dieser Abschnitt behandelt das Thema {topic} ausführlich."


def test_header_detection_ignores_page_numbers_in_running_lines() -> None:
    words = ["Vision", "Ziele", "Projekte", "Beteiligung", "Zeitplan"]
    pages = [
        [Line(f"13. August 2020 DIGITALE AGENDA | STADT ULM {n + 3}"), Line(word), Line(f"Mehr zu {word}."), Line(str(n))]
        for n, word in enumerate(words, start=1)
    ]
    cleaned = remove_headers_footers(pages)
    assert [[ln.text for ln in page] for page in cleaned] == [[w, f"Mehr zu {w}."] for w in words]


def test_empty_page_warns_and_all_empty_fails(tmp_path: Path, settings: Settings) -> None:
    path = make_pdf(tmp_path / "luecke.pdf", [[("p", "Erste Seite mit Text.")], [], [("p", "Dritte Seite.")]])
    doc = load_file(path, settings)
    assert {b.page for b in doc.blocks} == {1, 3}
    assert doc.warnings == ["Seite 2 enthält keinen Text (vermutlich gescannt)"]

    empty = make_pdf(tmp_path / "scan.pdf", [[], []])
    with pytest.raises(LoaderError, match="PDF enthält keinen extrahierbaren Text"):
        load_file(empty, settings)


def test_encrypted_pdf(tmp_path: Path, settings: Settings) -> None:
    plain = make_pdf(tmp_path / "plain.pdf", [[("p", "Geheimer Inhalt der Stadtverwaltung.")]])
    for name, user_password in (("locked.pdf", "geheim"), ("open.pdf", "")):
        writer = PdfWriter(clone_from=PdfReader(plain))
        writer.encrypt(user_password=user_password, owner_password="eigentuemer", algorithm="RC4-128")
        buffer = io.BytesIO()
        writer.write(buffer)
        (tmp_path / name).write_bytes(buffer.getvalue())

    with pytest.raises(LoaderError, match="^PDF ist verschlüsselt$"):
        load_file(tmp_path / "locked.pdf", settings)
    doc = load_file(tmp_path / "open.pdf", settings)  # empty user password: readable
    assert "Geheimer Inhalt" in doc.blocks[0].text


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\nkaputt kaputt\n%%EOF", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4],
)
def test_corrupt_pdf(tmp_path: Path, settings: Settings, data: bytes) -> None:
    path = tmp_path / "kaputt.pdf"
    path.write_bytes(data)
    with pytest.raises(LoaderError, match="^PDF ist beschädigt oder unlesbar: "):
        load_file(path, settings)


def test_truncated_pdf_is_corrupt(tmp_path: Path, settings: Settings) -> None:
    good = make_pdf(tmp_path / "gut.pdf", [[("p", "Text.")]]).read_bytes()
    path = tmp_path / "abgeschnitten.pdf"
    path.write_bytes(good[: len(good) // 3])
    with pytest.raises(LoaderError, match="PDF"):
        load_file(path, settings)


def test_empty_pdf_file(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "leer.pdf"
    path.write_bytes(b"")
    with pytest.raises(LoaderError, match="^Datei ist leer$"):
        load_file(path, settings)


def test_timeout_kills_the_extraction(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "langsam.pdf", [[("p", "Text.")]])
    with pytest.raises(LoaderError, match=r"^Zeitlimit von 0.001 s beim Lesen überschritten$"):
        load_file(path, Settings(file_timeout_seconds=0.001))
    assert multiprocessing.active_children() == []


def test_page_cap(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "lang.pdf", [[("p", f"Seite {n} Text.")] for n in range(1, 5)])
    doc = load_file(path, Settings(pdf_max_pages=2, file_timeout_seconds=60))
    assert {b.page for b in doc.blocks} == {1, 2}
    assert "PDF hat 4 Seiten; nur die ersten 2 wurden gelesen" in doc.warnings


def test_title_falls_back_to_first_page_and_ignores_office_titles(tmp_path: Path, settings: Settings) -> None:
    path = make_pdf(
        tmp_path / "folien.pdf",
        [[("h", "Smart City Modellstadt"), ("p", "Clever. Offen. Für alle.")]],
        title="PowerPoint-Präsentation",
    )
    doc = load_file(path, settings)
    assert doc.title == "Smart City Modellstadt"


def test_metadata_from_raw_extraction() -> None:
    raw = {
        "total": 1,
        "meta": {"title": "Bericht", "subject": "https://example.org/bericht", "creationdate": "D:20200813173559+02'00'"},
        "pages": [[Line("Ein Satz.")]],
        "page_errors": [],
    }
    parsed = build_parsed(raw, max_pages=10)
    assert parsed.meta == {"title": "Bericht", "url": "https://example.org/bericht", "date": "2020-08-13"}
    assert parsed.blocks[0].page == 1
