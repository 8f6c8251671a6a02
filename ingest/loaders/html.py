"""HTML loader: boilerplate removal, main content detection, meta tags, blocks with heading sections."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from selectolax.lexbor import LexborHTMLParser, LexborNode

from core.vocabulary import SECTION_SEP
from ingest.loaders.common import ParsedFile, clean_inline, clean_lines
from ingest.models import Block


DROP_TAGS = (
    "script", "style", "noscript", "nav", "header", "footer", "aside", "form", "iframe", "svg", "template",
    "object", "embed", "canvas", "button", "select", "dialog", "head",
)  # fmt: skip
BOILERPLATE_RE = re.compile(r"cookie|consent|banner|newsletter|breadcrumb|share", re.IGNORECASE)
# Containers that must survive even if a class says "cookie-consent-open" (that would wipe the whole page).
NEVER_DROP = {"html", "body", "main", "article"}

HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4}
MINOR_HEADINGS = {"h5", "h6"}
LIST_TAGS = {"ul", "ol", "dl"}
BLOCK_TAGS = {
    "p", "div", "section", "article", "main", "blockquote", "pre", "table", "ul", "ol", "dl", "figure",
    "figcaption", "address", "details", "summary", "fieldset", "center", "hgroup", "body", "li", "dd", "dt",
    "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td", "th", "thead", "tbody", "tfoot", "caption", "hr",
}  # fmt: skip


def parse_html(text: str) -> ParsedFile:
    tree = LexborHTMLParser(text)
    meta = _read_meta(tree)
    page_title = _node_text(tree.css_first("title"))
    _remove_boilerplate(tree)

    root = _content_root(tree)
    h1_node = root.css_first("h1") if root is not None else None
    h1 = clean_inline(_inline_text(h1_node)) if h1_node is not None else ""
    if h1:
        title_guess: str | None = h1
    elif page_title:
        title_guess = _strip_site_suffix(page_title)
    else:
        title_guess = None

    walker = _Walker(title=meta.get("title") or title_guess)
    if root is not None:
        walker.walk(root)
        walker.flush()
    return ParsedFile(blocks=walker.blocks, meta=meta, title_guess=title_guess)


# ---------------------------------------------------------------------------------------------------------------
# Metadata


def _read_meta(tree: LexborHTMLParser) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    names: dict[str, str] = {}
    for node in tree.css("meta"):
        attrs = node.attributes
        key = (attrs.get("name") or attrs.get("property") or attrs.get("itemprop") or "").strip().lower()
        content = (attrs.get("content") or "").strip()
        if key and content and key not in names:
            names[key] = content
    for key in ("date", "dc.date", "dcterms.date", "article:published_time", "datepublished", "og:published_time"):
        if key in names:
            meta["date"] = names[key]
            break
    else:
        time_node = tree.css_first("time[datetime]")
        if time_node is not None:
            meta["date"] = time_node.attributes.get("datetime")
    for key in ("author", "dc.creator", "article:author"):
        value = names.get(key)
        if value and not value.startswith(("http://", "https://")):
            meta["author"] = value
            break
    canonical = tree.css_first('link[rel="canonical"]')
    href = canonical.attributes.get("href") if canonical is not None else None
    if href:
        meta["url"] = href.strip()
    elif names.get("og:url"):
        meta["url"] = names["og:url"]
    for key in ("stadtretter:type", "type"):
        if names.get(key):
            meta["type"] = names[key]
            break
    if names.get("stadtretter:ekt"):
        meta["ekt"] = names["stadtretter:ekt"]
    return meta


def _strip_site_suffix(title: str) -> str:
    for sep in (" | ", " – ", " — "):
        if sep in title:
            head = title.rsplit(sep, 1)[0].strip()
            if head:
                return head
    return title


# ---------------------------------------------------------------------------------------------------------------
# Cleaning


def _remove_boilerplate(tree: LexborHTMLParser) -> None:
    for node in tree.css(", ".join(DROP_TAGS)):
        node.decompose()
    doomed: list[LexborNode] = []
    root = tree.root
    if root is None:
        return
    for node in root.traverse():
        if node.tag in NEVER_DROP or not node.tag or node.tag.startswith("-"):
            continue
        attrs = node.attributes
        marker = f"{attrs.get('id') or ''} {attrs.get('class') or ''}"
        if marker.strip() and BOILERPLATE_RE.search(marker):
            doomed.append(node)
        elif (attrs.get("role") or "").lower() in ("navigation", "banner", "contentinfo", "dialog", "alertdialog"):
            doomed.append(node)
        elif "hidden" in attrs or (attrs.get("aria-hidden") or "").lower() == "true":
            doomed.append(node)
    for node in doomed:
        try:
            node.decompose()
        except Exception:  # already removed together with an ancestor
            pass


def _content_root(tree: LexborHTMLParser) -> LexborNode | None:
    main = tree.css_first("main") or tree.css_first('[role="main"]')
    if main is not None and clean_inline(main.text(deep=True)):
        return main
    articles = [a for a in tree.css("article") if clean_inline(a.text(deep=True))]
    if articles:
        return max(articles, key=lambda a: len(a.text(deep=True)))
    return tree.body


# ---------------------------------------------------------------------------------------------------------------
# Text extraction


def _node_text(node: LexborNode | None) -> str:
    return clean_inline(node.text(deep=True)) if node is not None else ""


def _inline_text(node: LexborNode) -> str:
    """Text of a node with <br> as line break and block-level descendants separated by spaces.

    Iterative (selectolax traverse), so pathological nesting cannot exhaust the Python stack."""
    out: list[str] = []
    for desc in _descendants(node, include_text=True):
        tag = desc.tag
        if tag == "-text":
            out.append(desc.text(deep=False) or "")
        elif tag == "br":
            out.append("\n")
        elif tag in BLOCK_TAGS:
            out.append(" ")
    return "".join(out)


def _clean_block_text(text: str) -> str:
    return clean_lines("\n".join(clean_inline(line) for line in text.split("\n")))


class _Walker:
    def __init__(self, title: str | None) -> None:
        self.blocks: list[Block] = []
        self.title = clean_inline(title).casefold() if title else None
        self._title_h1_seen = False
        self._headings: list[tuple[int, str]] = []
        self._pending: list[str] = []

    @property
    def section(self) -> str | None:
        return SECTION_SEP.join(text for _, text in self._headings) or None

    def add(self, text: str, keep_indent: bool = False) -> None:
        text = clean_lines(text, keep_indent=True) if keep_indent else _clean_block_text(text)
        if text:
            self.blocks.append(Block(text=text, section=self.section))

    def flush(self) -> None:
        if self._pending:
            self.add("".join(self._pending))
            self._pending = []

    def heading(self, level: int, text: str) -> None:
        text = clean_inline(text).rstrip(":").strip()
        if not text:
            return
        if level == 1 and not self._title_h1_seen and (self.title is None or text.casefold() == self.title):
            self._title_h1_seen = True
            self._headings = []
            return
        while self._headings and self._headings[-1][0] >= level:
            self._headings.pop()
        self._headings.append((level, text))

    def walk(self, root: LexborNode) -> None:
        """Depth-first walk with an explicit stack (deeply nested markup must not hit the recursion limit)."""
        stack = [root.iter(include_text=True)]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                self.flush()  # leaving a block container ends its running text
                continue
            tag = child.tag
            if tag == "-text":
                self._pending.append(child.text(deep=False) or "")
            elif tag == "br":
                self._pending.append("\n")
            elif tag is None or tag in ("-comment", "img", "hr"):
                continue
            elif tag in HEADINGS:
                self.flush()
                self.heading(HEADINGS[tag], _inline_text(child))
            elif tag in ("p", "pre", "blockquote", "figcaption", "address", "dt", "dd", "summary", "caption"):
                self.flush()
                if tag == "pre":
                    self.add(child.text(deep=True))
                elif tag == "blockquote":
                    self.add(self._paragraphs_text(child))
                else:
                    self.add(_inline_text(child))
            elif tag in MINOR_HEADINGS:
                self.flush()
                self.add(_inline_text(child))
            elif tag in LIST_TAGS:
                self.flush()
                self.add("\n".join(_list_lines(child, 0)), keep_indent=True)
            elif tag == "table" and not _is_layout_table(child):
                self.flush()
                self.add("\n".join(_table_rows(child)))
            elif tag in BLOCK_TAGS or _has_block_descendant(child):
                self.flush()
                stack.append(child.iter(include_text=True))
            else:  # inline element (a, span, strong, em, ...)
                self._pending.append(_inline_text(child))

    @staticmethod
    def _paragraphs_text(node: LexborNode) -> str:
        paragraphs = node.css("p")
        if paragraphs:
            return "\n".join(clean_inline(_inline_text(p)) for p in paragraphs)
        return _inline_text(node)


_LAYOUT_MARKERS = {"table", "p", "div", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "section",
                   "article", "main"}  # fmt: skip


def _is_layout_table(node: LexborNode) -> bool:
    """Old sites lay out whole pages with tables: walk those like containers instead of flattening rows."""
    return any(desc.tag in _LAYOUT_MARKERS for desc in _descendants(node))


def _has_block_descendant(node: LexborNode) -> bool:
    return any(desc.tag in BLOCK_TAGS for desc in _descendants(node))


def _descendants(node: LexborNode, include_text: bool = False) -> Iterator[LexborNode]:
    """All descendants in document order (traverse() yields the node itself first; wrappers are new objects)."""
    walker = node.traverse(include_text=include_text)
    next(walker, None)
    yield from walker


MAX_LIST_DEPTH = 8


def _list_lines(node: LexborNode, depth: int) -> list[str]:
    lines: list[str] = []
    if depth > MAX_LIST_DEPTH:  # absurdly nested lists: flatten the rest
        text = clean_inline(_inline_text(node))
        return [f"{'  ' * depth}- {text}"] if text else []
    ordered = node.tag == "ol"
    number = 1
    indent = "  " * depth
    for child in node.iter(include_text=False):
        if child.tag not in ("li", "dt", "dd"):
            if child.tag in LIST_TAGS:
                lines.extend(_list_lines(child, depth + 1))
            continue
        own: list[str] = []
        nested: list[str] = []
        for part in child.iter(include_text=True):
            if part.tag in LIST_TAGS:
                nested.extend(_list_lines(part, depth + 1))
            elif part.tag == "-text":
                own.append(part.text(deep=False) or "")
            elif part.tag not in ("img", "-comment", None):
                own.append(" " + _inline_text(part) + " " if part.tag in BLOCK_TAGS else _inline_text(part))
        text = clean_inline("".join(own))
        if text:
            marker = f"{number}." if ordered else "-"
            lines.append(f"{indent}{marker} {text}")
            number += 1
        lines.extend(nested)
    return lines


def _table_rows(node: LexborNode) -> list[str]:
    rows: list[str] = []
    for tr in node.css("tr"):
        cells = [clean_inline(_inline_text(cell)) for cell in tr.iter(include_text=False) if cell.tag in ("td", "th")]
        cells = [c for c in cells if c]
        if cells:
            rows.append(" | ".join(cells))
    return rows
