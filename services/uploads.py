"""Uploaded files: checked before anything is stored, then kept under the data directory by content hash.

The checks are cheap and run in the request: the name (no path parts), the size, an ingestible extension and a
content that fits it (PDF magic, UTF-8 text, the WebVTT header). Parsing the file is the loaders' job and runs in
the background job (services/jobs.py); a file the loaders refuse is removed again, so nothing of it stays.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import yaml

from core.vocabulary import PHASES, SOURCE_TYPES
from ingest.loaders import SUPPORTED_SUFFIXES
from ingest.loaders.common import decode_text, normalize_date
from ingest.models import LoaderError

PDF_MAGIC = b"%PDF-"
MAX_NAME_CHARS = 120
_UNSAFE_CHARS = re.compile(r"[^\w .()+,-]", re.UNICODE)


class ContentError(ValueError):
    """Input refused (German message naming the file or field). `status_code` is the HTTP answer for it."""

    def __init__(self, message: str, status_code: int = 422) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class UploadMetadata:
    """Optional metadata given with an upload; written as the sidecar YAML the loaders read."""

    type: str | None = None
    title: str | None = None
    date: str | None = None
    url: str | None = None
    phase: str | None = None

    def validated(self) -> "UploadMetadata":
        """Checked and normalised copy, or ContentError naming the field."""
        type_ = _blank_to_none(self.type)
        if type_ is not None and type_ not in SOURCE_TYPES:
            allowed = ", ".join(SOURCE_TYPES)
            raise ContentError(f"Feld „type“: unbekannter Quellentyp „{type_}“ (erlaubt: {allowed})")
        phase = _blank_to_none(self.phase)
        if phase is not None and phase.upper() not in PHASES:
            raise ContentError(f"Feld „phase“: unbekannte Phase „{phase}“ (erlaubt: {', '.join(PHASES)})")
        date = _blank_to_none(self.date)
        if date is not None:
            normalised = normalize_date(date)
            if normalised is None:
                raise ContentError(f"Feld „date“: „{date}“ ist kein Datum (erwartet: JJJJ-MM-TT)")
            date = normalised
        url = _blank_to_none(self.url)
        if url is not None and not re.fullmatch(r"https?://[^\s]+", url):
            raise ContentError(f"Feld „url“: „{url}“ ist keine http(s)-Adresse")
        title = _blank_to_none(self.title)
        if title is not None and len(title) > 300:
            raise ContentError("Feld „title“: höchstens 300 Zeichen")
        return UploadMetadata(type_, title, date, url, phase.upper() if phase else None)

    def sidecar(self) -> dict[str, object]:
        data: dict[str, object] = {key: getattr(self, key) for key in ("title", "date", "url", "type")}
        if self.phase:
            data["ekt"] = [self.phase]
        return {key: value for key, value in data.items() if value is not None}


@dataclass(frozen=True)
class StoredUpload:
    name: str  # the file name as the user gave it (after the checks)
    path: Path
    sha256: str
    size: int


def _blank_to_none(value: str | None) -> str | None:
    return value.strip() if value is not None and value.strip() else None


def check_name(raw_name: str | None) -> str:
    """The file name to store: refused when it carries a path or control characters, otherwise made safe."""
    name = unicodedata.normalize("NFC", raw_name or "").strip()
    shown = name or "(ohne Namen)"
    if not name:
        raise ContentError("Datei ohne Namen: jede Datei braucht einen Dateinamen mit Endung")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise ContentError(f"Datei „{shown}“: der Name enthält Pfadangaben – bitte nur den Dateinamen senden")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise ContentError(f"Datei „{shown!r}“: der Name enthält Steuerzeichen")
    if name.startswith("."):
        raise ContentError(f"Datei „{shown}“: versteckte Dateien (Name beginnt mit Punkt) werden nicht angenommen")
    safe = _UNSAFE_CHARS.sub("_", name)
    stem, suffix = os.path.splitext(safe)
    return stem[: MAX_NAME_CHARS - len(suffix)].rstrip(" .") + suffix.lower()


def check_content(name: str, data: bytes, max_bytes: int) -> None:
    """Size, extension and content must fit; ContentError names the file otherwise."""
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        allowed = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise ContentError(f"Datei „{name}“: Dateityp „{suffix or '(ohne Endung)'}“ wird nicht unterstützt "
                           f"(erlaubt: {allowed})", 415)
    if len(data) > max_bytes:
        raise ContentError(f"Datei „{name}“ ist größer als die erlaubten {_megabytes(max_bytes)}", 413)
    if not data.strip():
        raise ContentError(f"Datei „{name}“ ist leer")
    if suffix == ".pdf":
        if not data[:1024].lstrip().startswith(PDF_MAGIC):
            raise ContentError(f"Datei „{name}“ ist keine PDF-Datei: der Inhalt passt nicht zur Endung .pdf", 415)
        return
    if data.lstrip()[:5] == PDF_MAGIC:
        raise ContentError(f"Datei „{name}“ ist eine PDF-Datei, trägt aber die Endung {suffix}", 415)
    try:
        text = decode_text(data)
    except LoaderError as exc:
        raise ContentError(f"Datei „{name}“: {exc}", 415) from None
    if suffix == ".vtt" and not text.lstrip("\ufeff").startswith("WEBVTT"):
        raise ContentError(f"Datei „{name}“ ist keine WebVTT-Datei: die Kopfzeile „WEBVTT“ fehlt", 415)
    if suffix == ".srt" and "-->" not in text:
        raise ContentError(f"Datei „{name}“ ist keine SRT-Datei: keine Zeitangaben („-->“) gefunden", 415)


def _megabytes(count: int) -> str:
    value = count / 1024 / 1024
    return f"{value:.0f} MB" if value >= 1 else f"{count / 1024:.0f} KB"


class UploadStore:
    """Uploaded files under `<data_dir>/uploads/<sha256 prefix>/<name>`: equal content is stored once, a file never
    overwrites another one, and only files below this folder can be removed through it."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def check(self, raw_name: str | None, data: bytes) -> str:
        name = check_name(raw_name)
        check_content(name, data, self.max_bytes)
        return name

    def store(self, name: str, data: bytes, metadata: UploadMetadata) -> StoredUpload:
        """Store checked content (see `check`). Equal content uploaded again reuses the stored file."""
        digest = hashlib.sha256(data).hexdigest()
        folder = self.root / digest[:16]
        folder.mkdir(parents=True, exist_ok=True)
        existing = [p for p in folder.iterdir() if p.suffix.lower() in SUPPORTED_SUFFIXES]
        path = existing[0] if existing else folder / name
        if not existing:
            _write_atomically(path, data)
        sidecar = metadata.sidecar()
        if sidecar:
            text = yaml.safe_dump(sidecar, allow_unicode=True, sort_keys=True)
            _write_atomically(path.with_suffix(".yml"), text.encode("utf-8"))
        return StoredUpload(name=name, path=path, sha256=digest, size=len(data))

    def owns(self, path: Path) -> bool:
        try:
            path.resolve().relative_to(self.root.resolve())
        except ValueError:
            return False
        return True

    def remove(self, path: Path) -> None:
        """Remove a stored upload (its folder: the file and its sidecar). Paths outside the store are left alone."""
        if not self.owns(path) or path.resolve().parent == self.root.resolve():
            return
        shutil.rmtree(path.resolve().parent, ignore_errors=True)


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.part")
    temporary.write_bytes(data)
    os.replace(temporary, path)
