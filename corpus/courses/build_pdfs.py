#!/usr/bin/env python3
"""Render the Akademie course sources (src/lerneinheit-<n>.md) to reproducible PDFs.

Supported Markdown subset: YAML front matter, '#'/'##'/'###' headings, paragraphs,
'- ' bullets, '- [ ] ' checklist items, '1. ' numbered items, pipe tables and **bold**.
Text before the first heading goes on the title page. The output is byte-identical
across runs: the creation date comes from the front matter and no build time is stored.

Usage: .venv/bin/python corpus/courses/build_pdfs.py
"""
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

try:
    import yaml
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos
    from fpdf.fonts import FontFace
except ImportError as exc:
    sys.exit(f"Fehler: Benötigtes Paket fehlt ({exc.name}). "
             "Bitte 'pip install fpdf2 PyYAML' ausführen.")

HERE = Path(__file__).resolve().parent
SRC_DIR = HERE / "src"
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_FILES = {"": FONT_DIR / "DejaVuSans.ttf", "B": FONT_DIR / "DejaVuSans-Bold.ttf"}
FONT = "DejaVu"

BODY_SIZE, LINE_H = 10.5, 5.6
HEADING_SIZES = {1: 15, 2: 12.5, 3: 11}
MARKERS = {"bullet": "•", "check": "☐"}
LIST_RE = re.compile(r"^(?:- \[ \] |- |(\d+)\. )(.*)$")


def read_source(path: Path) -> tuple[dict, list[str]]:
    """Split a source file into front matter (dict) and body lines."""
    text = path.read_text(encoding="utf-8")
    match = re.match(r"^---\n(.*?)\n---\n(.*)$", text, re.S)
    if not match:
        sys.exit(f"Fehler: {path.name} beginnt nicht mit einem YAML-Kopf (---).")
    meta = yaml.safe_load(match.group(1))
    missing = {"title", "date", "author", "url", "slug"} - meta.keys()
    if missing:
        sys.exit(f"Fehler: In {path.name} fehlen Angaben im YAML-Kopf: "
                 f"{', '.join(sorted(missing))}.")
    return meta, match.group(2).splitlines()


def parse_blocks(lines: list[str]) -> list[tuple]:
    """Group body lines into blocks: (kind, payload...)."""
    blocks, para, table = [], [], []

    def flush() -> None:
        if para:
            blocks.append(("para", " ".join(para)))
            para.clear()
        if table:
            blocks.append(("table", list(table)))
            table.clear()

    for raw in lines:
        line = raw.strip()
        heading = re.match(r"^(#{1,3}) (.+)$", line)
        item = LIST_RE.match(line)
        if not line:
            flush()
        elif line.startswith("|"):
            if para:
                flush()
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
                table.append(cells)
        elif heading:
            flush()
            blocks.append(("heading", len(heading.group(1)), heading.group(2)))
        elif item:
            flush()
            if line.startswith("- [ ] "):
                marker = MARKERS["check"]
            elif item.group(1):
                marker = f"{item.group(1)}."
            else:
                marker = MARKERS["bullet"]
            blocks.append(("item", marker, item.group(2)))
        else:
            para.append(line)
    flush()
    return blocks


class CoursePDF(FPDF):
    def __init__(self, meta: dict):
        super().__init__(format="A4", unit="mm")
        self.meta = meta
        self.set_margins(22, 22, 22)
        self.set_auto_page_break(True, margin=22)
        for style, path in FONT_FILES.items():
            self.add_font(FONT, style, str(path))
        self.set_title(meta["title"])
        self.set_author(meta["author"])
        self.set_subject(meta["url"])
        self.set_creator("Stadtretter-Akademie build_pdfs.py")
        self.set_lang("de-DE")
        day = meta["date"]
        self.set_creation_date(datetime(day.year, day.month, day.day, 12, 0, tzinfo=timezone.utc))

    def header(self) -> None:
        if self.page_no() == 1:
            return
        self.set_font(FONT, "", 8.5)
        self.set_text_color(100)
        self.cell(0, 5, self.meta["title"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_draw_color(170)
        self.line(self.l_margin, self.get_y() + 1, self.w - self.r_margin, self.get_y() + 1)
        self.set_text_color(0)
        self.ln(7)

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font(FONT, "", 8.5)
        self.set_text_color(100)
        self.cell(0, 5, f"Seite {self.page_no()} von {{nb}}", align="C")
        self.set_text_color(0)

    def text_block(self, text: str, size: float = BODY_SIZE, height: float = LINE_H,
                   width: float = 0, bold: bool = False) -> None:
        """Left-aligned text; fpdf2 wraps at spaces only, so words are never hyphenated.

        Regular text understands **bold** spans, bold text (headings) is taken literally."""
        self.set_font(FONT, "B" if bold else "", size)
        self.multi_cell(width, height, text, markdown=not bold, align="L",
                        new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def title_page(self, intro: list[tuple]) -> None:
        self.add_page()
        self.ln(30)
        self.text_block(self.meta["title"], size=22, height=10, bold=True)
        self.ln(8)
        for block in intro:
            self.text_block(block[-1])
            self.ln(3)
        self.ln(6)
        date_de = self.meta["date"].strftime("%d.%m.%Y")
        for label, value in (("Autor*innen", self.meta["author"]), ("Stand", date_de),
                             ("Online", self.meta["url"])):
            self.text_block(f"**{label}:** {value}", size=9.5)
            self.ln(1)

    def heading(self, level: int, text: str) -> None:
        if self.will_page_break(40 if level == 1 else 28):
            self.add_page()
        self.ln(5 if level == 1 else 3)
        size = HEADING_SIZES[level]
        self.text_block(text, size=size, height=size * 0.55, bold=True)
        self.ln(2)

    def item(self, marker: str, text: str) -> None:
        if self.will_page_break(LINE_H):
            self.add_page()
        self.set_x(self.l_margin + 3)
        self.set_font(FONT, "", BODY_SIZE)
        self.cell(7, LINE_H, marker)
        self.text_block(text, width=self.epw - 10)
        self.ln(1.2)

    def table_block(self, rows: list[list[str]]) -> None:
        self.set_font(FONT, "", 9.5)
        self.ln(1)
        extra = len(rows[0]) - 1  # first column is wider and left-aligned, numbers right-aligned
        heading_style = FontFace(emphasis="BOLD", fill_color=(235, 235, 235))
        with self.table(line_height=6, padding=1.5, col_widths=(2,) + (1,) * extra,
                        text_align=("LEFT",) + ("RIGHT",) * extra,
                        headings_style=heading_style) as table:
            for row in rows:
                cells = table.row()
                for value in row:
                    cells.cell(value)
        self.ln(3)


def build(path: Path) -> Path:
    meta, lines = read_source(path)
    blocks = parse_blocks(lines)
    first_heading = next(i for i, b in enumerate(blocks) if b[0] == "heading")
    pdf = CoursePDF(meta)
    pdf.title_page(blocks[:first_heading])
    pdf.add_page()
    previous = None
    for block in blocks[first_heading:]:
        kind = block[0]
        if kind == "heading":
            pdf.heading(block[1], block[2])
        elif kind == "item":
            pdf.item(block[1], block[2])
        elif kind == "table":
            pdf.table_block(block[1])
        else:
            if previous == "item":
                pdf.ln(1.5)
            pdf.text_block(block[1])
            pdf.ln(2.5)
        previous = kind
    number = re.search(r"(\d+)$", path.stem).group(1)
    out = HERE / f"lerneinheit-{number}-{meta['slug']}.pdf"
    pdf.output(str(out))
    return out


def main() -> None:
    for path in FONT_FILES.values():
        if not path.is_file():
            sys.exit(f"Fehler: Schriftdatei {path} nicht gefunden. "
                     "Bitte das Paket 'fonts-dejavu-core' installieren.")
    sources = sorted(SRC_DIR.glob("lerneinheit-*.md"))
    if not sources:
        sys.exit(f"Fehler: Keine Quelltexte in {SRC_DIR} gefunden.")
    for path in sources:
        out = build(path)
        print(f"Erstellt: {out.relative_to(HERE)}")


if __name__ == "__main__":
    main()
