"""Markdown loader: YAML front matter plus structure-aware blocks (paragraphs, whole lists, tables, code)."""

from __future__ import annotations

import re
from typing import Any

import yaml
from frontmatter.default_handlers import YAMLHandler
from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode
from selectolax.lexbor import LexborHTMLParser

from core.vocabulary import SECTION_SEP
from ingest.loaders.common import ParsedFile, clean_inline, clean_lines, yaml_problem
from ingest.models import Block, LoaderError


_md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


_FOOTNOTE_DEF_RE = re.compile(r"^[ ]{0,3}\[\^([^\]\s]+)\]:[ \t]*(.*)$", re.MULTILINE)
_FOOTNOTE_REF_RE = re.compile(r"\[\^([^\]\s]+)\]")
FOOTNOTE_SECTION = "Fußnoten"
# A star inside a word is the German gender star ("Besucher*innen"), not emphasis: two of them in one paragraph
# would otherwise be parsed as *emphasis* and silently lose both stars.
_GENDER_STAR_RE = re.compile(r"(?<=\w)\*(?=\w)")


def parse_markdown(text: str) -> ParsedFile:
    meta, body = _split_front_matter(text)
    body, footnotes = _extract_footnotes(body)
    root = SyntaxTreeNode(_md.parse(_GENDER_STAR_RE.sub(r"\\*", body)))
    walker = _Walker(front_title=_front_title(meta))
    walker.walk_children(root)
    if footnotes:
        walker.blocks.append(Block(text="\n".join(footnotes), section=FOOTNOTE_SECTION))
    return ParsedFile(blocks=walker.blocks, meta=meta, title_guess=walker.title_guess)


def _extract_footnotes(body: str) -> tuple[str, list[str]]:
    """Footnote definitions ("[^3]: text") become one block at the end; references "[^3]" become "[3]"."""
    notes: list[str] = []

    def keep(m: re.Match[str]) -> str:
        text = clean_inline(_FOOTNOTE_REF_RE.sub(r"[\1]", m.group(2)))
        if text:
            notes.append(f"[{m.group(1)}] {text}")
        return ""

    body = _FOOTNOTE_DEF_RE.sub(keep, body)
    return _FOOTNOTE_REF_RE.sub(r"[\1]", body), notes


def _split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    stripped = text.lstrip("\ufeff")
    handler = YAMLHandler()
    if not handler.detect(stripped):
        return {}, stripped
    try:
        head, body = handler.split(stripped)
    except ValueError:  # "---" as a thematic break without a closing delimiter
        return {}, stripped
    try:
        data = yaml.safe_load(head)
    except yaml.YAMLError as exc:
        raise LoaderError(f"Ungültiger YAML-Kopf: {yaml_problem(exc)}") from None
    if data is None:
        return {}, body
    if not isinstance(data, dict):
        raise LoaderError("Ungültiger YAML-Kopf: erwartet werden Schlüssel: Wert-Paare")
    return {str(k): v for k, v in data.items()}, body


def _front_title(meta: dict[str, Any]) -> str | None:
    for key in ("title", "titel", "Title", "Titel"):
        value = meta.get(key)
        if value is not None and str(value).strip():
            return clean_inline(str(value))
    return None


def _norm(text: str) -> str:
    return clean_inline(text).casefold()


class _Walker:
    def __init__(self, front_title: str | None) -> None:
        self.blocks: list[Block] = []
        self.front_title = front_title
        self.title_guess: str | None = None
        self._title_taken = front_title is not None
        self._headings: list[tuple[int, str]] = []  # (level, text) stack

    # -- structure
    @property
    def section(self) -> str | None:
        return SECTION_SEP.join(text for _, text in self._headings) or None

    def add(self, text: str, keep_indent: bool = False) -> None:
        text = clean_lines(text, keep_indent=keep_indent)
        if text:
            self.blocks.append(Block(text=text, section=self.section))

    def heading(self, level: int, text: str) -> None:
        text = clean_inline(text).rstrip(":").strip()
        if not text:
            return
        if not self._title_taken and level == 1:
            # The first H1 serves as the title and does not enter the heading path.
            self.title_guess = text
            self._title_taken = True
            self._headings = []
            return
        title = self.front_title or self.title_guess
        if level == 1 and title is not None and _norm(text) == _norm(title):
            self._headings = []
            return
        while self._headings and self._headings[-1][0] >= level:
            self._headings.pop()
        self._headings.append((level, text))

    def walk_children(self, node: SyntaxTreeNode) -> None:
        for child in node.children:
            self.walk(child)

    def walk(self, node: SyntaxTreeNode) -> None:
        kind = node.type
        if kind == "heading":
            self.heading(int(node.tag[1:]), _inline_text(node))
        elif kind == "paragraph":
            self.add(_inline_text(node))
        elif kind in ("bullet_list", "ordered_list"):
            self.add("\n".join(_list_lines(node, depth=0)), keep_indent=True)
        elif kind in ("fence", "code_block"):
            self.add(node.content)
        elif kind == "table":
            self.add("\n".join(_table_rows(node)))
        elif kind == "html_block":
            self.add(_html_text(node.content))
        elif kind == "hr":
            return
        else:  # blockquote and other containers: walk inside
            self.walk_children(node)


def _inline_text(node: SyntaxTreeNode) -> str:
    """Plain text of a block: link text kept, images and emphasis markers removed, hard breaks kept."""
    parts: list[str] = []
    for child in node.children:
        if child.type == "inline":
            parts.append(_render_inline(child))
        else:
            parts.append(_inline_text(child))
    return "".join(parts)


def _render_inline(node: SyntaxTreeNode) -> str:
    out: list[str] = []
    for child in node.children:
        kind = child.type
        if kind in ("text", "code_inline"):
            out.append(child.content)
        elif kind == "softbreak":
            out.append(" ")
        elif kind == "hardbreak":
            out.append("\n")
        elif kind == "image":
            continue
        elif kind == "html_inline":
            tag = child.content.strip().lower()
            if tag.startswith("<br"):
                out.append("\n")
        else:  # link, strong, em, s: keep the inner text only
            out.append(_render_inline(child))
    return "".join(out)


def _list_lines(node: SyntaxTreeNode, depth: int) -> list[str]:
    lines: list[str] = []
    ordered = node.type == "ordered_list"
    start = int(node.attrs.get("start", 1) or 1) if ordered else 1
    indent = "  " * depth
    for number, item in enumerate(node.children, start=start):
        marker = f"{number}." if ordered else "-"
        texts: list[str] = []
        nested: list[str] = []
        for part in item.children:
            if part.type in ("bullet_list", "ordered_list"):
                nested.extend(_list_lines(part, depth + 1))
            elif part.type in ("fence", "code_block"):
                texts.append(clean_inline(part.content))
            elif part.type == "paragraph":
                texts.append(clean_inline(_inline_text(part)))
            else:
                texts.append(clean_inline(_inline_text(part)))
        text = " ".join(t for t in texts if t)
        if text:
            lines.append(f"{indent}{marker} {text}")
        lines.extend(nested)
    return lines


def _table_rows(node: SyntaxTreeNode) -> list[str]:
    rows: list[str] = []

    def visit(n: SyntaxTreeNode) -> None:
        if n.type == "tr":
            cells = [clean_inline(_inline_text(cell)) for cell in n.children]
            if any(cells):
                rows.append(" | ".join(cells))
            return
        for child in n.children:
            visit(child)

    visit(node)
    return rows


def _html_text(fragment: str) -> str:
    if fragment.lstrip().startswith("<!--"):
        return ""
    tree = LexborHTMLParser(fragment)
    for bad in tree.css("script, style"):
        bad.decompose()
    body = tree.body
    return clean_inline(body.text(deep=True, separator=" ")) if body is not None else ""
