"""Shared helpers for the loaders: decoding, metadata merging, normalisation, ids.

Every loader returns a `ParsedFile` (blocks plus the metadata found inside the file); `build_document` merges it with
the sidecar YAML and the defaults and produces the `SourceDocument`. All user-facing messages are German.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.vocabulary import PHASES, SOURCE_TYPES
from ingest.models import Block, LoaderError, SourceDocument

META_KEYS = ("title", "date", "author", "url", "type", "ekt")

# German spellings accepted in sidecar YAML, front matter and VTT NOTE blocks.
KEY_ALIASES = {
    "titel": "title",
    "datum": "date",
    "autor": "author",
    "autorin": "author",
    "link": "url",
    "typ": "type",
    "art": "type",
}

TYPE_ALIASES = {
    "article": "article",
    "artikel": "article",
    "webtalk": "webtalk",
    "web-talk": "webtalk",
    "webinar": "webtalk",
    "course": "course",
    "kurs": "course",
    "kursmaterial": "course",
}

FOLDER_TYPES = {"articles": "article", "webtalks": "webtalk", "courses": "course"}


_MONTHS_DE = {
    "januar": 1, "jan": 1, "jänner": 1, "februar": 2, "feb": 2, "märz": 3, "maerz": 3, "mär": 3, "mrz": 3,
    "april": 4, "apr": 4, "mai": 5, "juni": 6, "jun": 6, "juli": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sep": 9, "sept": 9, "oktober": 10, "okt": 10, "november": 11, "nov": 11,
    "dezember": 12, "dez": 12,
}  # fmt: skip


@dataclass
class ParsedFile:
    """What a format-specific parser found: blocks, in-file metadata, a title guess and warnings."""

    blocks: list[Block]
    meta: dict[str, Any] = field(default_factory=dict)  # in-file metadata (front matter, meta tags, ...)
    title_guess: str | None = None  # first heading or similar, used when no metadata gives a title
    warnings: list[str] = field(default_factory=list)
    default_type: str | None = None  # format default (webtalk for transcripts), below folder and metadata


# --------------------------------------------------------------------------------------------------------------
# Text decoding


def decode_text(data: bytes) -> str:
    """Decode file bytes as UTF-8 (BOM allowed) or raise a German LoaderError."""
    if not data.strip():
        raise LoaderError("Datei ist leer")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LoaderError("Datei ist nicht UTF-8-kodiert (UTF-16 erkannt; bitte als UTF-8 speichern)")
    if b"\x00" in data:
        raise LoaderError("Binärdatei, kein Text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if _mostly_binary(data):
            raise LoaderError("Binärdatei, kein Text") from None
        raise LoaderError(
            f"Datei ist nicht UTF-8-kodiert (ungültiges Byte an Position {exc.start}; "
            "vermutlich Latin-1/Windows-1252 – bitte als UTF-8 speichern)"
        ) from None
    if _mostly_binary_text(text):
        raise LoaderError("Binärdatei, kein Text")
    if not text.strip():
        raise LoaderError("Datei ist leer")
    return text


def _mostly_binary(data: bytes) -> bool:
    sample = data[:4096]
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    return controls > len(sample) * 0.05


def _mostly_binary_text(text: str) -> bool:
    sample = text[:4096]
    bad = sum(1 for ch in sample if (ord(ch) < 32 and ch not in "\t\n\r\f") or ch == "\ufffd")
    return bad > len(sample) * 0.1


def read_text_file(path: Path) -> str:
    return decode_text(read_bytes(path))


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise LoaderError("Datei nicht gefunden") from None
    except IsADirectoryError:
        raise LoaderError("Pfad ist ein Verzeichnis, keine Datei") from None
    except OSError as exc:
        raise LoaderError(f"Datei kann nicht gelesen werden: {exc.strerror or exc}") from None


# --------------------------------------------------------------------------------------------------------------
# Text cleaning

_WS_RE = re.compile(r"[ \t\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_ZERO_WIDTH_RE = re.compile(r"[\u200b\u200c\u200d\u2060\ufeff\u00ad]")


def clean_inline(text: str) -> str:
    """Collapse runs of whitespace (newlines too) into single spaces and drop zero-width characters."""
    text = _ZERO_WIDTH_RE.sub("", text)
    return " ".join(text.split())


def clean_lines(text: str, keep_indent: bool = False) -> str:
    """Collapse whitespace within lines, drop empty lines at both ends, keep inner line breaks.

    keep_indent keeps leading spaces (nested list items "  - b")."""
    text = _ZERO_WIDTH_RE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = []
    for line in text.split("\n"):
        body = _WS_RE.sub(" ", line).strip()
        indent = len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip()) if keep_indent and body else 0
        lines.append(" " * indent + body)
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------
# Ids

_TRANSLIT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "ae", "Ö": "oe", "Ü": "ue"})


def slugify(text: str, max_len: int = 60) -> str:
    text = text.translate(_TRANSLIT)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    text = text[:max_len].rstrip("-")
    return text or "dokument"


def relative_key(path: Path, corpus_root: Path | None) -> str:
    """Posix path relative to corpus_root, or the resolved absolute path when outside it."""
    resolved = path.resolve()
    if corpus_root is not None:
        try:
            return resolved.relative_to(corpus_root.resolve()).as_posix()
        except ValueError:
            pass
    return resolved.as_posix()


def source_id_for(path: Path, corpus_root: Path | None) -> str:
    """Stable id: slug of the file stem plus 8 hex digits of the sha1 of the (relative) path."""
    digest = hashlib.sha1(relative_key(path, corpus_root).encode("utf-8")).hexdigest()[:8]
    return f"{slugify(path.stem)}-{digest}"


# --------------------------------------------------------------------------------------------------------------
# Metadata normalisation


def normalize_key(key: Any) -> str:
    k = str(key).strip().lower()
    return KEY_ALIASES.get(k, k)


def pick_meta(raw: dict[Any, Any] | None) -> dict[str, Any]:
    """Keep the known metadata keys (German aliases mapped), dropping empty values."""
    out: dict[str, Any] = {}
    for key, value in (raw or {}).items():
        k = normalize_key(key)
        if k not in META_KEYS or value is None:
            continue
        if isinstance(value, str) and not value.strip():
            continue
        out.setdefault(k, value)
    return out


def normalize_date(value: Any) -> str | None:
    """Return YYYY-MM-DD or None when the value cannot be read as a date."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(int(value))
    if not isinstance(value, str):
        return None
    s = value.strip()
    if not s:
        return None
    # PDF date: D:20200813173559+02'00'
    m = re.fullmatch(r"D:(\d{4})(\d{2})?(\d{2})?.*", s)
    if m:
        return _make_date(int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1))
    m = re.match(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:$|[T ]\d)", s)
    if m:
        return _make_date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    m = re.fullmatch(r"(\d{4})(\d{2})(\d{2})", s)
    if m:
        return _make_date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    m = re.fullmatch(r"(\d{1,2})\.\s?(\d{1,2})\.\s?(\d{4})", s)
    if m:
        return _make_date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
    m = re.fullmatch(r"(\d{1,2})\.\s*([A-Za-zÄÖÜäöü]+)\.?\s+(\d{4})", s)
    if m and m.group(2).lower() in _MONTHS_DE:
        return _make_date(int(m.group(3)), _MONTHS_DE[m.group(2).lower()], int(m.group(1)))
    m = re.fullmatch(r"(\d{4})/(\d{1,2})/(\d{1,2})", s)
    if m:
        return _make_date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    return None


def _make_date(year: int, month: int, day: int) -> str | None:
    try:
        return dt.date(year, month, day).isoformat()
    except ValueError:
        return None


def normalize_type(value: Any) -> str:
    """Map a type value to article/webtalk/course or raise a German LoaderError."""
    key = str(value).strip().lower()
    if key in TYPE_ALIASES:
        return TYPE_ALIASES[key]
    allowed = ", ".join(SOURCE_TYPES)
    raise LoaderError(f"Ungültiger Typ „{value}“ (erlaubt: {allowed})")


def normalize_ekt(value: Any, warnings: list[str]) -> list[str]:
    """[K, T], "K,T", "K T" or "KT" -> ["K", "T"] in canonical E/K/T order."""
    if value is None:
        return []
    items: list[str] = []
    if isinstance(value, (list, tuple, set)):
        for item in value:
            items.extend(re.split(r"[\s,;/]+", str(item)))
    else:
        raw = str(value).strip()
        parts = [p for p in re.split(r"[\s,;/]+", raw) if p]
        if len(parts) == 1 and len(parts[0]) > 1 and set(parts[0].upper()) <= set(PHASES):
            parts = list(parts[0])
        items = parts
    found: set[str] = set()
    for item in items:
        tag = item.strip().upper()
        if not tag:
            continue
        if tag in PHASES:
            found.add(tag)
        else:
            warnings.append(f"Unbekannte EKT-Phase „{item.strip()}“ ignoriert (erlaubt: E, K, T)")
    return [tag for tag in PHASES if tag in found]


def type_from_folder(path: Path, corpus_root: Path | None) -> str | None:
    parts: tuple[str, ...]
    if corpus_root is not None:
        try:
            parts = path.resolve().relative_to(corpus_root.resolve()).parts[:-1]
        except ValueError:
            parts = path.resolve().parts[:-1]
    else:
        parts = path.resolve().parts[:-1]
    for part in reversed(parts):
        folder_type = FOLDER_TYPES.get(part.lower())
        if folder_type:
            return folder_type
    return None


def read_sidecar(path: Path) -> dict[str, Any]:
    """Metadata from <stem>.yml / <stem>.yaml next to the file (empty dict when there is none)."""
    for suffix in (".yml", ".yaml"):
        sidecar = path.with_suffix(suffix)
        if sidecar == path or not sidecar.is_file():
            continue
        try:
            raw = yaml.safe_load(sidecar.read_text(encoding="utf-8-sig"))
        except UnicodeDecodeError:
            raise LoaderError(f"Begleitdatei {sidecar.name} ist nicht UTF-8-kodiert") from None
        except yaml.YAMLError as exc:
            raise LoaderError(f"Ungültige YAML-Begleitdatei {sidecar.name}: {_yaml_problem(exc)}") from None
        except OSError as exc:
            raise LoaderError(f"Begleitdatei {sidecar.name} kann nicht gelesen werden: {exc.strerror or exc}") from None
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise LoaderError(f"Ungültige YAML-Begleitdatei {sidecar.name}: erwartet werden Schlüssel: Wert-Paare")
        return pick_meta(raw)
    return {}


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is not None:
        return f"{problem} (Zeile {mark.line + 1}, Spalte {mark.column + 1})"
    return str(problem)


def yaml_problem(exc: yaml.YAMLError) -> str:
    return _yaml_problem(exc)


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(v) for v in value if v is not None)
    text = clean_inline(str(value))
    return text or None


def humanize_stem(stem: str) -> str:
    return clean_inline(stem.replace("_", " ")) or stem


def build_document(path: Path, corpus_root: Path | None, parsed: ParsedFile) -> SourceDocument:
    """Merge sidecar > in-file metadata > defaults, validate and build the SourceDocument."""
    blocks = [b for b in parsed.blocks if b.text and b.text.strip()]
    if not blocks:
        raise LoaderError("Kein verwertbarer Text gefunden")
    warnings = list(parsed.warnings)
    sidecar = read_sidecar(path)
    infile = pick_meta(parsed.meta)
    merged: dict[str, Any] = {**infile, **sidecar}

    title = _as_text(merged.get("title")) or _as_text(parsed.title_guess) or humanize_stem(path.stem)

    if "type" in merged:
        doc_type = normalize_type(merged["type"])
    else:
        doc_type = type_from_folder(path, corpus_root) or parsed.default_type or "article"

    date = None
    if merged.get("date") is not None:
        date = normalize_date(merged["date"])
        if date is None:
            warnings.append(f"Datum „{_as_text(merged['date'])}“ nicht erkannt – wird ignoriert")

    url = _as_text(merged.get("url"))
    if url is not None and " " in url:
        warnings.append(f"URL „{url}“ ist ungültig – wird ignoriert")
        url = None

    return SourceDocument(
        path=path,
        source_id=source_id_for(path, corpus_root),
        title=title,
        type=doc_type,  # type: ignore[arg-type]
        blocks=blocks,
        url=url,
        date=date,
        author=_as_text(merged.get("author")),
        ekt=normalize_ekt(merged.get("ekt"), warnings),
        warnings=warnings,
    )
