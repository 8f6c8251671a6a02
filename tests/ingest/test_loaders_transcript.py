"""Transcript loaders: WebVTT voice tags, speaker prefixes, NOTE metadata, SRT timing, malformed files."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.loaders import load_file
from ingest.loaders.transcript import split_speaker
from ingest.models import LoaderError
from core.settings import Settings

VTT = """WEBVTT

NOTE
title: WebTalk Frequenzmessung
date: 20.02.2024
url: https://stadtretter.example/webtalks/frequenz
author: Stadtretter-Akademie

00:00:01.000 --> 00:00:05.500
<v Maria Brandt>Herzlich willkommen zum <i>WebTalk</i>.</v>

00:00:06.000 --> 00:00:11.250 align:start
Tobias Lang: Wir zählen seit 2022
mit vier Sensoren.

cue-3
00:01:15.000 --> 00:01:20.000
Publikum: Was kostet das?

00:01:21.000 --> 00:01:25.000
Fazit: ohne Zählung keine Fakten.

01:02:03.040 --> 01:02:04.000
<v.loud Dr. Anna von Berg>Danke &amp; tschüss!
"""


@pytest.fixture
def settings() -> Settings:
    return Settings()


def test_vtt_cues_speakers_and_note_metadata(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "frequenz.vtt"
    path.write_text(VTT, encoding="utf-8")
    doc = load_file(path, settings)
    assert doc.title == "WebTalk Frequenzmessung"
    assert doc.date == "2024-02-20"
    assert doc.url == "https://stadtretter.example/webtalks/frequenz"
    assert doc.author == "Stadtretter-Akademie"
    assert doc.type == "webtalk"
    cues = [(b.start, b.end, b.speaker, b.text) for b in doc.blocks]
    assert cues == [
        (1.0, 5.5, "Maria Brandt", "Herzlich willkommen zum WebTalk."),
        (6.0, 11.25, "Tobias Lang", "Wir zählen seit 2022 mit vier Sensoren."),
        (75.0, 80.0, "Publikum", "Was kostet das?"),
        (81.0, 85.0, None, "Fazit: ohne Zählung keine Fakten."),
        (3723.04, 3724.0, "Dr. Anna von Berg", "Danke & tschüss!"),
    ]


def test_split_speaker_variants() -> None:
    assert split_speaker("Moderation: Willkommen!") == ("Moderation", "Willkommen!")
    assert split_speaker("Anna Maria Meier Schulz: Hallo") == ("Anna Maria Meier Schulz", "Hallo")
    assert split_speaker("Eins Zwei Drei Vier Fünf: zu viele Wörter") == (None, "Eins Zwei Drei Vier Fünf: zu viele Wörter")
    assert split_speaker("Um 10 Uhr: Beginn") == (None, "Um 10 Uhr: Beginn")
    assert split_speaker("Die Frage: wer zahlt?") == (None, "Die Frage: wer zahlt?")
    assert split_speaker("Wichtig: Termine") == (None, "Wichtig: Termine")
    assert split_speaker("<v Ben>Ben: doppelt") == ("Ben", "doppelt")
    assert split_speaker("<b>fett</b> und <c.gelb>farbig</c>") == (None, "fett und farbig")


def test_transcript_type_from_folder_and_sidecar(tmp_path: Path, settings: Settings) -> None:
    course = tmp_path / "courses"
    course.mkdir()
    path = course / "modul1.vtt"
    path.write_text("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nHallo.\n", encoding="utf-8")
    doc = load_file(path, settings, corpus_root=tmp_path)
    assert doc.type == "course"
    assert doc.title == "modul1"


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        ("WEBVTT\n\n00:00:xx.000 --> 00:00:04.000\nHallo\n", "ungültiger Zeitstempel in Zeile 3"),
        ("WEBVTT\n\n00:00:05.000 --> 00:00:01.000\nHallo\n", "Endzeit liegt vor der Startzeit"),
        ("WEBVTT\n\nNOTE nur ein Kommentar\n", "keine Untertitel"),
        ("Hallo Welt\n\n00:00:01.000 --> 00:00:02.000\nText\n", "Kopfzeile „WEBVTT“ fehlt"),
        ("1\n00:00:01,000 --> 00:00:02,000\nSRT statt VTT\n", "Kopfzeile „WEBVTT“ fehlt"),
    ],
)
def test_malformed_vtt(tmp_path: Path, settings: Settings, content: str, detail: str) -> None:
    path = tmp_path / "kaputt.vtt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(LoaderError, match="^Ungültige WebVTT-Datei: ") as info:
        load_file(path, settings)
    assert detail in str(info.value)


SRT = """1
00:00:01,500 --> 00:00:04,000
Maria Brandt: Willkommen zum WebTalk.

2
00:00:04,200 --> 00:00:09,750
<i>Wir sprechen heute</i>
über Leerstand.

3
01:00:00,000 --> 01:00:01,001
{\\an8}Publikum: Danke!
"""


def test_srt_timing_and_speakers(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "leerstand.srt"
    path.write_text(SRT, encoding="utf-8")
    doc = load_file(path, settings)
    assert doc.type == "webtalk"
    assert doc.title == "leerstand"
    assert [(b.start, b.end, b.speaker, b.text) for b in doc.blocks] == [
        (1.5, 4.0, "Maria Brandt", "Willkommen zum WebTalk."),
        (4.2, 9.75, None, "Wir sprechen heute über Leerstand."),
        (3600.0, 3601.001, "Publikum", "Danke!"),
    ]


@pytest.mark.parametrize(
    "content",
    [
        "1\n00:00:0x,000 --> 00:00:02,000\nHallo\n",
        "Das ist einfach Text\nohne Zeitangaben.\n",
        "1\n00:00:01,000 -> 00:00:02,000\nfalscher Pfeil\n",
        "1\n00:00:03,000 --> 00:00:02,000\nrückwärts\n",
    ],
)
def test_malformed_srt(tmp_path: Path, settings: Settings, content: str) -> None:
    path = tmp_path / "kaputt.srt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(LoaderError, match="^Ungültige SRT-Datei: "):
        load_file(path, settings)
