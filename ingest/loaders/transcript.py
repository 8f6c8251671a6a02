"""Transcript loaders: WebVTT (webvtt-py) and SRT (pysrt). One block per cue with start/end and speaker."""

from __future__ import annotations

import html
import re
from typing import Any

from ingest.loaders.common import ParsedFile, clean_inline, normalize_key
from ingest.models import Block, LoaderError

# Speaker prefix "Anna Müller: text", "Dr. Anna Müller: text", "Publikum: text".
_NAME_WORD = r"(?:[A-ZÄÖÜ][\wÄÖÜäöüß'’.-]*)"
_SPEAKER_PREFIX_RE = re.compile(
    rf"^\s*(?:[-–—]\s*)?(?P<name>{_NAME_WORD}(?:\s+(?:von|van|de|zu|von der|van der)?\s*{_NAME_WORD}){{0,3}}|Publikum|Moderation)"
    r"\s*:\s+(?P<rest>\S.*)$",
    re.DOTALL,
)
# Capitalised German words that introduce a statement but are not speakers ("Fazit: ...").
_NOT_SPEAKERS = {
    "fazit", "beispiel", "zum beispiel", "wichtig", "achtung", "hinweis", "frage", "antwort", "tipp", "ziel",
    "problem", "lösung", "erstens", "zweitens", "drittens", "also", "aber", "und", "das", "die", "der", "merke",
    "kurz", "stichwort", "thema", "achtung", "definition", "zusammenfassung", "ergebnis", "aufgabe", "idee",
    "link", "quelle", "update", "info", "notiz", "note", "ps", "nb", "http", "https", "uhr",
}  # fmt: skip
# A speaker name never starts with an article, pronoun or similar function word ("Die Frage: ...").
_NOT_NAME_START = {
    "der", "die", "das", "den", "dem", "des", "ein", "eine", "einer", "eines", "mein", "meine", "unser", "unsere",
    "dein", "deine", "ihr", "ihre", "sein", "seine", "dies", "diese", "dieser", "dieses", "mehr", "weitere",
    "zum", "zur", "im", "am", "vom", "beim", "und", "aber", "oder", "also", "noch", "nur", "auch", "wir", "ich",
    "sie", "es", "er", "man", "was", "wie", "wer", "wo", "warum", "wichtig", "frage", "antwort", "fazit",
}  # fmt: skip
_VOICE_RE = re.compile(r"<v(?:\.[^\s>]*)?\s+([^>]+)>", re.IGNORECASE)
_TAG_RE = re.compile(r"</?[a-zA-Z][^>]*>|<\d{1,2}:\d{2}(?::\d{2})?[.,]\d{3}>")
_ASS_TAG_RE = re.compile(r"\{\\[^}]*\}")

_VTT_TIME = r"(?:\d{1,}:)?[0-5]?\d:[0-5]\d\.\d{3}"
_VTT_TIMING_RE = re.compile(rf"^\s*({_VTT_TIME})\s+-->\s+({_VTT_TIME})(?:\s+.*)?$")
_SRT_TIME = r"\d{1,3}:[0-5]?\d:[0-5]?\d[,.]\d{1,3}"
_SRT_TIMING_RE = re.compile(rf"^\s*({_SRT_TIME})\s*-->\s*({_SRT_TIME})(?:\s+.*)?$")


def _seconds(stamp: str) -> float:
    stamp = stamp.replace(",", ".")
    parts = stamp.split(":")
    seconds = float(parts[-1])
    minutes = int(parts[-2]) if len(parts) >= 2 else 0
    hours = int(parts[-3]) if len(parts) >= 3 else 0
    return hours * 3600 + minutes * 60 + seconds


def split_speaker(text: str, voice: str | None = None) -> tuple[str | None, str]:
    """Return (speaker, text without the speaker marker and without tags)."""
    speaker = clean_inline(voice) if voice else None
    m = _VOICE_RE.search(text)
    if m and not speaker:
        speaker = clean_inline(m.group(1))
    plain = _strip_tags(text)
    if speaker is None:
        p = _SPEAKER_PREFIX_RE.match(plain)
        name = p.group("name") if p else ""
        if p and name.casefold() not in _NOT_SPEAKERS and name.split()[0].casefold() not in _NOT_NAME_START:
            speaker = clean_inline(p.group("name"))
            plain = p.group("rest")
    elif plain:
        # A voice tag plus a redundant "Name:" prefix: drop the prefix.
        prefix = re.match(rf"^\s*{re.escape(speaker)}\s*:\s+", plain)
        if prefix:
            plain = plain[prefix.end():]
    return speaker or None, clean_inline(plain)


def _strip_tags(text: str) -> str:
    text = _ASS_TAG_RE.sub("", text)
    text = _TAG_RE.sub("", text)
    return html.unescape(text)


def _note_meta(comments: list[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for comment in comments:
        for line in comment.splitlines():
            m = re.match(r"^\s*(?:NOTE\s+)?([A-Za-zÄÖÜäöü_-]+)\s*:\s*(.+?)\s*$", line)
            if m:
                key = normalize_key(m.group(1))
                meta.setdefault(key, m.group(2))
    return meta


# --------------------------------------------------------------------------------------------------------------
# WebVTT


def parse_vtt(text: str) -> ParsedFile:
    import webvtt
    from webvtt.errors import MalformedFileError

    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    if not re.match(r"^WEBVTT(?:[ \t].*)?(?:\n|$)", text):
        raise LoaderError("Ungültige WebVTT-Datei: Kopfzeile „WEBVTT“ fehlt")
    _validate_timings(text, _VTT_TIMING_RE, "Ungültige WebVTT-Datei")
    try:
        vtt = webvtt.from_string(text)
        captions = list(vtt.captions)
    except MalformedFileError as exc:
        raise LoaderError(f"Ungültige WebVTT-Datei: {clean_inline(str(exc)) or 'Format nicht erkannt'}") from None
    except Exception as exc:
        raise LoaderError(f"Ungültige WebVTT-Datei: {clean_inline(str(exc)) or type(exc).__name__}") from None
    if not captions:
        raise LoaderError("Ungültige WebVTT-Datei: keine Untertitel (Cues) gefunden")

    comments: list[str] = list(getattr(vtt, "header_comments", []) or [])
    blocks: list[Block] = []
    for caption in captions:
        comments.extend(getattr(caption, "comments", []) or [])
        start, end = _seconds(caption.start), _seconds(caption.end)
        speaker, body = split_speaker(caption.raw_text.replace("\n", " "), getattr(caption, "voice", None))
        if body:
            blocks.append(Block(text=body, start=start, end=end, speaker=speaker))
    comments.extend(getattr(vtt, "footer_comments", []) or [])
    if not blocks:
        raise LoaderError("Ungültige WebVTT-Datei: alle Untertitel sind leer")
    return ParsedFile(blocks=blocks, meta=_note_meta(comments), default_type="webtalk")


def _validate_timings(text: str, pattern: re.Pattern[str], label: str) -> None:
    found = False
    for number, line in enumerate(text.split("\n"), start=1):
        if "-->" not in line:
            continue
        m = pattern.match(line)
        if not m:
            raise LoaderError(f"{label}: ungültiger Zeitstempel in Zeile {number} („{clean_inline(line)[:60]}“)")
        if _seconds(m.group(2)) < _seconds(m.group(1)):
            raise LoaderError(f"{label}: Endzeit liegt vor der Startzeit in Zeile {number}")
        found = True
    if not found:
        raise LoaderError(f"{label}: keine Untertitel (Cues) gefunden")


# --------------------------------------------------------------------------------------------------------------
# SRT


def parse_srt(text: str) -> ParsedFile:
    import pysrt

    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    _validate_timings(text, _SRT_TIMING_RE, "Ungültige SRT-Datei")
    try:
        items = list(pysrt.from_string(text, error_handling=pysrt.ERROR_RAISE))
    except Exception as exc:
        detail = clean_inline(str(exc))[:120] or type(exc).__name__
        raise LoaderError(f"Ungültige SRT-Datei: {detail}") from None
    if not items:
        raise LoaderError("Ungültige SRT-Datei: keine Untertitel gefunden")
    blocks: list[Block] = []
    for item in items:
        start = item.start.ordinal / 1000.0
        end = item.end.ordinal / 1000.0
        speaker, body = split_speaker(item.text.replace("\n", " "))
        if body:
            blocks.append(Block(text=body, start=start, end=end, speaker=speaker))
    if not blocks:
        raise LoaderError("Ungültige SRT-Datei: alle Untertitel sind leer")
    return ParsedFile(blocks=blocks, default_type="webtalk")
