"""PDF loader (pypdf).

Extraction runs in a child process that is killed after `file_timeout_seconds`, so a hostile PDF cannot hang
ingestion. The child returns per-page lines with font size and position; the parent turns them into blocks:
running headers/footers are dropped, wrapped lines are joined into paragraphs, line-end hyphenation is undone and
larger-font lines become the section.
"""

from __future__ import annotations

import math
import multiprocessing
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.loaders.common import ParsedFile, clean_inline, normalize_date
from ingest.models import Block, LoaderError

# --------------------------------------------------------------------------------------------------------------
# Child process: raw extraction


@dataclass
class Line:
    text: str
    size: float | None = None  # effective font size in pt
    y: float | None = None  # baseline in pt from the bottom of the page
    x: float | None = None


def extract_raw(path: str, max_pages: int) -> dict[str, Any]:
    """Read the PDF with pypdf. Returns a plain dict (picklable); raises LoaderError for encrypted/corrupt files."""
    import logging

    from pypdf import PasswordType, PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(path, strict=False)
        encrypted = reader.is_encrypted
    except Exception as exc:
        raise LoaderError(f"PDF ist beschädigt oder unlesbar: {_short(exc)}") from None
    if encrypted:
        try:
            result = reader.decrypt("")
        except Exception:
            raise LoaderError("PDF ist verschlüsselt") from None
        if result == PasswordType.NOT_DECRYPTED:
            raise LoaderError("PDF ist verschlüsselt")
    try:
        total = len(reader.pages)
    except Exception as exc:
        raise LoaderError(f"PDF ist beschädigt oder unlesbar: {_short(exc)}") from None
    if total == 0:
        raise LoaderError("PDF ist beschädigt oder unlesbar: keine Seiten gefunden")

    meta: dict[str, str] = {}
    try:
        info = reader.metadata or {}
        for key in ("/Title", "/Author", "/Subject", "/CreationDate"):
            value = info.get(key)
            if value is not None:
                meta[key[1:].lower()] = str(value)
    except Exception:
        pass

    pages: list[list[Line] | None] = []
    page_errors: list[int] = []
    for index in range(min(total, max_pages)):
        try:
            pages.append(_page_lines(reader.pages[index]))
        except Exception:
            pages.append(None)
            page_errors.append(index + 1)
    return {"total": total, "meta": meta, "pages": pages, "page_errors": page_errors}


def _short(exc: BaseException) -> str:
    text = clean_inline(str(exc)) or type(exc).__name__
    return text[:200]


def _page_lines(page: Any) -> list[Line]:
    fragments: list[tuple[str, float | None, float | None, float | None]] = []

    def visitor(text: str, cm: Any, tm: Any, font_dict: Any, font_size: Any) -> None:
        size = y = x = None
        if text.strip():
            try:
                m2 = tm[2] * cm[0] + tm[3] * cm[2]
                m3 = tm[2] * cm[1] + tm[3] * cm[3]
                x = float(tm[4] * cm[0] + tm[5] * cm[2] + cm[4])
                y = float(tm[4] * cm[1] + tm[5] * cm[3] + cm[5])
                size = float(font_size) * math.hypot(m2, m3)
                if not (0.5 < size < 500):
                    size = None
            except Exception:
                size = y = x = None
        fragments.append((text, size, y, x))

    raw = page.extract_text(visitor_text=visitor) or ""
    joined = "".join(f[0] for f in fragments)
    if clean_inline(joined) != clean_inline(raw):
        return [Line(text=t) for t in raw.split("\n")]  # geometry not trustworthy: plain lines

    lines: list[Line] = []
    parts: list[str] = []
    weights: list[tuple[float, int]] = []
    first_y: float | None = None
    first_x: float | None = None

    def finish() -> None:
        nonlocal parts, weights, first_y, first_x
        text = "".join(parts)
        total = sum(n for _, n in weights)
        size = sum(s * n for s, n in weights) / total if total else None
        lines.append(Line(text=text, size=size, y=first_y, x=first_x))
        parts, weights, first_y, first_x = [], [], None, None

    for text, size, y, x in fragments:
        pieces = text.split("\n")
        for i, piece in enumerate(pieces):
            if i > 0:
                finish()
            if not piece:
                continue
            parts.append(piece)
            if piece.strip() and size is not None:
                weights.append((size, len(piece.strip())))
                if first_y is None:
                    first_y, first_x = y, x
    finish()
    return _merge_same_baseline(lines)


def _merge_same_baseline(lines: list[Line]) -> list[Line]:
    """pypdf sometimes breaks one visual line in two (e.g. a footer drawn in two text objects)."""
    out: list[Line] = []
    for line in lines:
        prev = out[-1] if out else None
        if (
            prev is not None
            and prev.text.strip()
            and line.text.strip()
            and None not in (prev.y, line.y, prev.x, line.x, prev.size, line.size)
            and abs(prev.y - line.y) < 0.3 * min(prev.size, line.size)  # type: ignore[operator,type-var]
            and line.x > prev.x  # type: ignore[operator]
        ):
            prev.text = f"{prev.text.rstrip()} {line.text.lstrip()}"
            continue
        out.append(line)
    return out


def _child_main(path: str, max_pages: int, conn: Any) -> None:
    try:
        conn.send(("ok", extract_raw(path, max_pages)))
    except LoaderError as exc:
        conn.send(("error", str(exc)))
    except BaseException as exc:  # noqa: BLE001 - everything must reach the parent as a message
        conn.send(("error", f"PDF ist beschädigt oder unlesbar: {_short(exc)}"))
    finally:
        conn.close()


_CONTEXT: Any = None


def _mp_context() -> Any:
    """forkserver (fork-safe with threads, cheap per child once pypdf is preloaded), else spawn."""
    global _CONTEXT
    if _CONTEXT is None:
        if "forkserver" in multiprocessing.get_all_start_methods():
            _CONTEXT = multiprocessing.get_context("forkserver")
            # Only takes effect if the fork server is not running yet; harmless for other users of it.
            _CONTEXT.set_forkserver_preload(["ingest.loaders.pdf", "pypdf"])
        else:
            _CONTEXT = multiprocessing.get_context("spawn")
    return _CONTEXT


def extract_with_timeout(path: Path, max_pages: int, timeout: float) -> dict[str, Any]:
    """Run `extract_raw` in a child process; kill it after `timeout` seconds."""
    if multiprocessing.current_process().daemon:  # daemonic workers may not have children
        return extract_raw(str(path), max_pages)
    ctx = _mp_context()
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_main, args=(str(path), max_pages, sender), daemon=True)
    proc.start()
    sender.close()
    try:
        if not receiver.poll(timeout):
            raise LoaderError(f"Zeitlimit von {_fmt_seconds(timeout)} s beim Lesen überschritten")
        try:
            status, payload = receiver.recv()
        except (EOFError, OSError):
            raise LoaderError("PDF ist beschädigt oder unlesbar: Leseprozess abgebrochen") from None
    finally:
        receiver.close()
        if proc.is_alive():
            proc.kill()
        proc.join(5)
    if status == "error":
        raise LoaderError(payload)
    return payload


def _fmt_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


# --------------------------------------------------------------------------------------------------------------
# Parent: structure


def parse_pdf(path: Path, max_pages: int, timeout: float) -> ParsedFile:
    raw = extract_with_timeout(path, max_pages, timeout)
    return build_parsed(raw, max_pages)


def build_parsed(raw: dict[str, Any], max_pages: int) -> ParsedFile:
    warnings: list[str] = []
    total: int = raw["total"]
    pages: list[list[Line] | None] = raw["pages"]
    if total > max_pages:
        warnings.append(f"PDF hat {total} Seiten; nur die ersten {max_pages} wurden gelesen")

    page_lines = [[ln for ln in (p or []) if ln.text.strip()] for p in pages]
    if not any(page_lines):
        raise LoaderError("PDF enthält keinen extrahierbaren Text (vermutlich gescannt)")
    cleaned = remove_headers_footers(page_lines)

    meta_raw: dict[str, str] = raw.get("meta", {})
    title_guess = _title_from_first_page(cleaned)
    meta: dict[str, Any] = {}
    meta_title = clean_inline(meta_raw.get("title", ""))
    if meta_title and not _is_junk_title(meta_title):
        meta["title"] = _strip_office_prefix(meta_title)
    if meta_raw.get("author", "").strip():
        meta["author"] = clean_inline(meta_raw["author"])
    if meta_raw.get("creationdate") and normalize_date(meta_raw["creationdate"]):
        meta["date"] = normalize_date(meta_raw["creationdate"])
    subject = meta_raw.get("subject", "").strip()
    if re.fullmatch(r"https?://\S+", subject):
        meta["url"] = subject

    title = meta.get("title") or title_guess
    blocks = _blocks(cleaned, title)
    error_pages = set(raw.get("page_errors", []))
    pages_with_blocks = {b.page for b in blocks}
    for number in range(1, len(pages) + 1):
        if number in error_pages:
            warnings.append(f"Seite {number} konnte nicht gelesen werden")
        elif number not in pages_with_blocks:
            warnings.append(f"Seite {number} enthält keinen Text (vermutlich gescannt)")
    if not blocks:
        raise LoaderError("PDF enthält keinen extrahierbaren Text (vermutlich gescannt)")
    return ParsedFile(blocks=blocks, meta=meta, title_guess=title_guess, warnings=warnings)


_JUNK_TITLE_RE = re.compile(
    r"^(?:powerpoint[- ]?pr(?:ä|ae|a)sentation|pr(?:ä|ae)sentation\s*\d*|presentation\s*\d*|untitled.*|unbenannt.*|"
    r"folie\s*\d*|slide\s*\d*|dokument\s*\d*|document\s*\d*|titel|title|ohne titel|.*\.(?:docx?|pptx?|odt|pdf|indd|tex))$",
    re.IGNORECASE,
)


def _is_junk_title(title: str) -> bool:
    return bool(_JUNK_TITLE_RE.match(_strip_office_prefix(title))) or len(title) < 3


def _strip_office_prefix(title: str) -> str:
    return re.sub(r"^Microsoft (?:Word|PowerPoint|Excel) - ", "", title).strip()


# ---- headers and footers

_PAGE_NUMBER_RE = re.compile(
    r"^(?:[-–—]?\s*\d{1,4}\s*[-–—]?|(?:seite|page|s\.)\s*\d{1,4}(?:\s*(?:von|of|/)\s*\d{1,4})?|\d{1,4}\s*/\s*\d{1,4})$",
    re.IGNORECASE,
)
ZONE = 3  # lines at the top and bottom of a page that may be running headers/footers


def _header_key(text: str) -> str:
    return " ".join(re.sub(r"\d+", "#", text.casefold()).split())


def remove_headers_footers(pages: list[list[Line]]) -> list[list[Line]]:
    """Drop page-number lines and lines that repeat (digits ignored) at the top/bottom of most pages."""
    def zone(lines: list[Line]) -> list[int]:
        n = len(lines)
        return sorted(set(range(min(ZONE, n))) | set(range(max(0, n - ZONE), n)))

    counts: Counter[str] = Counter()
    for lines in pages:
        if len(lines) < 2:
            continue
        counts.update({_header_key(lines[i].text) for i in zone(lines)})
    with_text = sum(1 for lines in pages if lines)
    threshold = max(3, math.ceil(0.5 * with_text))
    frequent = {key for key, count in counts.items() if count >= threshold and key.strip("# ")}

    result: list[list[Line]] = []
    for lines in pages:
        if len(lines) < 2:
            result.append(list(lines))
            continue
        drop = {
            i for i in zone(lines)
            if _header_key(lines[i].text) in frequent or _PAGE_NUMBER_RE.match(lines[i].text.strip())
        }  # fmt: skip
        kept = [line for i, line in enumerate(lines) if i not in drop]
        result.append(kept)
    if not any(result):  # everything looked like a header: better keep it than lose the document
        return pages
    return result


# ---- title


def _title_from_first_page(pages: list[list[Line]]) -> str | None:
    for lines in pages:
        if not lines:
            continue
        sizes = [ln.size for ln in lines if ln.size]
        if sizes and len(sizes) == len(lines):
            biggest = max(sizes)
            picked: list[str] = []
            for ln in lines:
                if ln.size and ln.size >= biggest * 0.95:
                    picked.append(ln.text.strip())
                elif picked:
                    break
            title = _join_lines(picked)
        else:
            title = clean_inline(lines[0].text)
        if title and len(title) <= 200:
            return title
        return clean_inline(lines[0].text)[:200] or None
    return None


# ---- paragraphs, lists, headings

_BULLET_RE = re.compile(r"^\s*(?:[•▪◦●■□➢➤►‣⁃·\uf0b7\uf0a7\uf076\uf0d8*]|[-–—](?=\s))\s*")
_NUMBERED_RE = re.compile(r"^\s*\d{1,2}[.)]\s+\S")
_CONJUNCTIONS = {"und", "oder", "bzw", "bzw.", "sowie", "als", "wie", "bis", "noch", "beziehungsweise", "u.", "&"}


def join_hyphenated(left: str, right: str) -> str:
    """Join two wrapped lines, undoing line-end hyphenation.

    "Innen-" + "stadt" -> "Innenstadt"; "Stadt-" + "Marketing" -> "Stadt-Marketing"; "Wengen-" + "und Dichter"
    -> "Wengen- und Dichter"; soft hyphens always join.
    """
    left = left.rstrip()
    right = right.lstrip()
    if not left:
        return right
    if not right:
        return left
    if left.endswith("\u00ad"):
        return left[:-1] + right
    if left.endswith("-") and len(left) >= 2 and left[-2].isalpha():
        first_word = right.split(" ", 1)[0]
        if first_word.lower() in _CONJUNCTIONS:
            return f"{left} {right}"
        if right[0].islower():
            return left[:-1] + right
        if right[0].isalnum():
            return left + right
    return f"{left} {right}"


def _join_lines(lines: list[str]) -> str:
    text = ""
    for line in lines:
        text = join_hyphenated(text, line) if text else line.strip()
    return clean_inline(text)


def _median_weighted(values: list[tuple[float, int]]) -> float | None:
    if not values:
        return None
    values = sorted(values)
    half = sum(w for _, w in values) / 2
    acc = 0
    for value, weight in values:
        acc += weight
        if acc >= half:
            return value
    return values[-1][0]


@dataclass
class _Para:
    lines: list[str]
    bullet: bool = False


def _page_structure(lines: list[Line]) -> list[tuple[str, Any]]:
    """Classify a page's lines into ("heading", text) and ("para", _Para) items in reading order."""
    body = _median_weighted([(ln.size, len(ln.text.strip())) for ln in lines if ln.size])
    gaps = [
        a.y - b.y
        for a, b in zip(lines, lines[1:])
        if a.y is not None and b.y is not None and a.size and b.size and abs(a.size - b.size) < 0.15 * a.size
        and a.y - b.y > 0
    ]  # fmt: skip
    typical_gap = sorted(gaps)[len(gaps) // 2] if len(gaps) >= 3 else None

    def is_heading_line(ln: Line) -> bool:
        text = ln.text.strip()
        return bool(
            body
            and ln.size
            and ln.size >= body * 1.1
            and len(text) <= 150
            and not text.endswith((",", ";"))
            and not _BULLET_RE.match(text)
            and not text[0].islower()
        )

    items: list[tuple[str, Any]] = []
    prev: Line | None = None
    for ln in lines:
        text = ln.text.strip()
        if not text:
            prev = None
            continue
        if is_heading_line(ln):
            last = items[-1] if items else None
            if (
                last is not None and last[0] == "heading" and prev is not None and prev.size and ln.size
                and abs(prev.size - ln.size) < 0.05 * ln.size and not _big_gap(prev, ln, None)
            ):  # fmt: skip
                last[1].append(text)
            else:
                items.append(("heading", [text]))
            prev = ln
            continue
        bullet = bool(_BULLET_RE.match(text))
        if bullet:
            text = _BULLET_RE.sub("", text, count=1)
        new_para = (
            prev is None
            or not items
            or items[-1][0] != "para"
            or bullet
            or _NUMBERED_RE.match(text) is not None
            or _big_gap(prev, ln, typical_gap)
            or _size_change(prev, ln)
        )
        if new_para:
            items.append(("para", _Para(lines=[text], bullet=bullet)))
        else:
            items[-1][1].lines.append(text)
        prev = ln

    # A "heading" of many lines is a block of large text (a diagram, a quote), not a heading.
    result: list[tuple[str, Any]] = []
    for kind, value in items:
        if kind == "heading":
            joined = _join_lines(value)
            if len(value) > 3 or len(joined) > 120:
                result.append(("para", _Para(lines=value)))
            else:
                result.append(("heading", joined))
        else:
            result.append((kind, value))
    return result


def _big_gap(prev: Line, cur: Line, typical: float | None) -> bool:
    if prev.y is None or cur.y is None or not prev.size or not cur.size:
        return False
    gap = prev.y - cur.y
    size = max(prev.size, cur.size)
    if gap < -0.5 * size:  # jumped up: new column or text box
        return True
    if typical is not None and typical > 0:
        return gap > typical * 1.4 and gap > size * 1.1
    return gap > size * 1.6


def _size_change(prev: Line, cur: Line) -> bool:
    if not prev.size or not cur.size:
        return False
    return abs(prev.size - cur.size) > 0.15 * max(prev.size, cur.size)


def _blocks(pages: list[list[Line]], title: str | None) -> list[Block]:
    structures = [_page_structure(lines) for lines in pages]
    # A heading only counts when body text follows it (on the same or a later page).
    last_para_at: tuple[int, int] | None = None
    for p in range(len(structures) - 1, -1, -1):
        for i in range(len(structures[p]) - 1, -1, -1):
            if structures[p][i][0] == "para":
                last_para_at = (p, i)
                break
        if last_para_at is not None:
            break

    title_key = clean_inline(title).casefold() if title else None
    blocks: list[Block] = []
    section: str | None = None
    for page_index, items in enumerate(structures):
        page = page_index + 1
        only_headings = all(kind == "heading" for kind, _ in items)
        pending_list: list[str] = []

        def flush_list() -> None:
            if pending_list:
                blocks.append(Block(text="\n".join(pending_list), section=section, page=page))
                pending_list.clear()

        for item_index, (kind, value) in enumerate(items):
            if kind == "heading":
                after_last = last_para_at is None or (page_index, item_index) > last_para_at
                if only_headings or after_last:
                    flush_list()
                    blocks.append(Block(text=value, section=section, page=page))
                    continue
                flush_list()
                if title_key is None or value.casefold() != title_key:
                    section = value
                continue
            para: _Para = value
            text = _join_lines(para.lines)
            if not text:
                continue
            if para.bullet:
                pending_list.append(f"- {text}")
                continue
            flush_list()
            blocks.append(Block(text=text, section=section, page=page))
        flush_list()
    return blocks
