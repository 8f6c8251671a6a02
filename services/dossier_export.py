"""A dossier as Markdown, DOCX (python-docx) and PDF (fpdf2 with DejaVu fonts, which cover German umlauts and ß).

Every export has the same parts: title, archive state, notice, per phase the sources with excerpts, locators and
links, WebTalk moments, course pages, related terms and notes (briefing and questions when a model wrote them), and
at the end the numbered source list with links.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from core.vocabulary import type_label
from services.dossier import Dossier, PhaseSection

# fonts-dejavu-core (Debian) installs them here; `make fonts` installs the package.
DEJAVU_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
FORMATS = {
    "md": ("text/markdown; charset=utf-8", "md"),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
    "pdf": ("application/pdf", "pdf"),
}


class ExportUnavailable(RuntimeError):
    """An export format cannot be produced here (German message)."""


@dataclass
class Block:
    """One line of the document, format-neutral: kind is title | heading | subheading | text | note | quote |
    item | link."""

    kind: str
    text: str
    link: str | None = None


def german_date(iso: str | None) -> str:
    if not iso:
        return "unbekannt"
    return date.fromisoformat(iso[:10]).strftime("%d.%m.%Y")


def file_name(dossier: Dossier, extension: str) -> str:
    slug = "".join(ch if ch.isalnum() else "-" for ch in dossier.topic.lower()).strip("-")
    slug = "-".join(part for part in slug.split("-") if part)[:60] or "thema"
    return f"materialmappe-{slug}.{extension}"


def blocks(dossier: Dossier) -> Iterator[Block]:
    yield Block("title", f"Materialmappe: {dossier.topic}")
    yield Block("text", f"Stand des Archivs: {german_date(dossier.archive_date)} · erstellt am "
                        f"{german_date(dossier.created_at)}")
    yield Block("note", dossier.notice)
    for section in dossier.phases:
        yield from _phase_blocks(section)
    yield Block("heading", "Quellenverzeichnis")
    for phase, source in dossier.all_sources():
        when = f", {german_date(source.date)}" if source.date else ""
        yield Block("link", f"{phase}{source.n}: {source.title} ({type_label(source.type)}{when})", source.link)


def _phase_blocks(section: PhaseSection) -> Iterator[Block]:
    yield Block("heading", f"Phase {section.label} ({section.phase})")
    if section.note:
        yield Block("note", section.note)
    if section.briefing:
        yield Block("subheading", "Kurzbriefing")
        yield Block("text", section.briefing.text)
        if section.briefing.questions:
            yield Block("subheading", "Fragen für die Diskussion")
            for question in section.briefing.questions:
                yield Block("item", question)
    if section.sources:
        yield Block("subheading", "Quellen und Kernaussagen")
    for source in section.sources:
        yield Block("link", f"[{source.n}] {source.title} ({type_label(source.type)})", source.link)
        for excerpt in source.excerpts:
            yield Block("quote", f"„{excerpt.text}“ ({excerpt.locator})", excerpt.link)
    if section.moments:
        yield Block("subheading", "WebTalk-Momente")
        for moment in section.moments:
            speaker = f" {moment.speaker}:" if moment.speaker else ""
            yield Block("link", f"[{moment.n}] {moment.title}, {moment.time}{speaker} {moment.text}", moment.link)
    if section.course_pages:
        yield Block("subheading", "Kursmaterial")
        for page in section.course_pages:
            yield Block("link", f"{page.locator}: {page.text}", page.link)
    if section.related_terms:
        yield Block("subheading", "Verwandte Begriffe")
        yield Block("text", ", ".join(section.related_terms))


def to_markdown(dossier: Dossier) -> str:
    lines: list[str] = []
    for block in blocks(dossier):
        link = f" – <{block.link}>" if block.link else ""
        lines.append({
            "title": f"# {block.text}\n",
            "heading": f"\n## {block.text}\n",
            "subheading": f"\n### {block.text}\n",
            "note": f"> {block.text}\n",
            "quote": f"  - {block.text}{link}",
            "item": f"- {block.text}",
            "link": f"- {block.text}{link}",
        }.get(block.kind, f"{block.text}\n"))
    return "\n".join(lines).rstrip() + "\n"


def to_docx(dossier: Dossier) -> bytes:
    from docx import Document

    document = Document()
    document.core_properties.title = f"Materialmappe: {dossier.topic}"
    document.core_properties.language = "de-DE"
    for block in blocks(dossier):
        if block.kind == "title":
            document.add_heading(block.text, level=0)
        elif block.kind in ("heading", "subheading"):
            document.add_heading(block.text, level=1 if block.kind == "heading" else 2)
        elif block.kind == "note":
            document.add_paragraph(block.text).runs[0].italic = True
        else:
            style = {"quote": "List Bullet 2", "item": "List Bullet", "link": "List Bullet"}.get(block.kind)
            paragraph = document.add_paragraph(block.text, style=style)
            if block.link:
                paragraph.add_run(f" {block.link}").font.underline = True
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def dejavu_dir() -> Path:
    for folder in DEJAVU_DIRS:
        if (folder / "DejaVuSans.ttf").is_file():
            return folder
    raise ExportUnavailable(
        "PDF-Export nicht möglich: die Schrift DejaVu fehlt (Debian-Paket fonts-dejavu-core, `make fonts`)"
    )


def to_pdf(dossier: Dossier) -> bytes:
    from fpdf import FPDF

    fonts = dejavu_dir()
    pdf = FPDF(format="A4")
    pdf.set_title(f"Materialmappe: {dossier.topic}")
    pdf.set_lang("de-DE")
    pdf.add_font("DejaVu", "", str(fonts / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(fonts / "DejaVuSans-Bold.ttf"))
    pdf.add_font("DejaVu", "I", str(fonts / "DejaVuSans-Oblique.ttf"))
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    sizes = {"title": ("B", 18), "heading": ("B", 14), "subheading": ("B", 12), "note": ("I", 10)}
    for block in blocks(dossier):
        style, size = sizes.get(block.kind, ("", 10))
        pdf.set_font("DejaVu", style, size)
        if block.kind in ("heading", "subheading"):
            pdf.ln(3)
        indent = {"quote": 10, "item": 5, "link": 5}.get(block.kind, 0)
        pdf.set_x(pdf.l_margin + indent)
        prefix = "• " if indent else ""
        pdf.multi_cell(0, 5 if size <= 10 else 8, prefix + block.text, align="L", new_x="LMARGIN", new_y="NEXT")
        if block.link:
            pdf.set_x(pdf.l_margin + indent + 4)
            pdf.set_font("DejaVu", "", 8)
            pdf.set_text_color(29, 78, 216)
            pdf.multi_cell(0, 4, block.link, link=block.link, align="L", new_x="LMARGIN", new_y="NEXT")
            pdf.set_text_color(0, 0, 0)
        pdf.ln(1)
    return bytes(pdf.output())


def export(dossier: Dossier, fmt: str) -> bytes:
    if fmt == "md":
        return to_markdown(dossier).encode("utf-8")
    if fmt == "docx":
        return to_docx(dossier)
    if fmt == "pdf":
        return to_pdf(dossier)
    raise ValueError(f"Unbekanntes Format: {fmt} (erlaubt: md, docx, pdf)")
