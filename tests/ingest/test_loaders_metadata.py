"""Metadata precedence (sidecar > in-file > defaults), type from folder, date/ekt normalisation, source ids."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ingest.loaders import load_file, source_id_for
from ingest.loaders.common import normalize_date, normalize_ekt
from ingest.models import LoaderError
from core.settings import Settings

MD = """---
title: Titel aus dem Kopf
date: 2023-01-01
author: Kopf-Autorin
type: article
ekt: E
---

# Überschrift

Text.
"""


@pytest.fixture
def settings() -> Settings:
    return Settings()


def test_sidecar_overrides_front_matter(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "artikel.md"
    path.write_text(MD, encoding="utf-8")
    (tmp_path / "artikel.yml").write_text(
        "title: Titel aus der Begleitdatei\ndate: 2024-03-18\ntype: course\nekt: K,T\nurl: https://example.org/a\n",
        encoding="utf-8",
    )
    doc = load_file(path, settings)
    assert doc.title == "Titel aus der Begleitdatei"
    assert doc.date == "2024-03-18"
    assert doc.type == "course"
    assert doc.ekt == ["K", "T"]
    assert doc.url == "https://example.org/a"
    assert doc.author == "Kopf-Autorin"  # not in the sidecar: front matter still applies


def test_yaml_sidecar_for_pdf_like_formats(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "talk.srt"
    path.write_text("1\n00:00:01,000 --> 00:00:02,000\nHallo.\n", encoding="utf-8")
    (tmp_path / "talk.yaml").write_text("titel: Der große WebTalk\ndatum: 18.03.2024\n", encoding="utf-8")
    doc = load_file(path, settings)
    assert (doc.title, doc.date) == ("Der große WebTalk", "2024-03-18")


def test_broken_sidecar(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "a.txt"
    path.write_text("Text.", encoding="utf-8")
    (tmp_path / "a.yml").write_text("title: [offen\n", encoding="utf-8")
    with pytest.raises(LoaderError, match="^Ungültige YAML-Begleitdatei a.yml: "):
        load_file(path, settings)


def test_invalid_type_in_sidecar(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "a.txt"
    path.write_text("Text.", encoding="utf-8")
    (tmp_path / "a.yml").write_text("type: video\n", encoding="utf-8")
    with pytest.raises(LoaderError, match="Ungültiger Typ „video“ \\(erlaubt: article, webtalk, course\\)"):
        load_file(path, settings)


@pytest.mark.parametrize(("folder", "expected"), [("articles", "article"), ("webtalks", "webtalk"), ("courses", "course")])
def test_type_from_folder(tmp_path: Path, settings: Settings, folder: str, expected: str) -> None:
    path = tmp_path / folder / "2024" / "datei.md"
    path.parent.mkdir(parents=True)
    path.write_text("Text.", encoding="utf-8")
    assert load_file(path, settings, corpus_root=tmp_path).type == expected


def test_metadata_type_beats_folder(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "webtalks" / "artikel.md"
    path.parent.mkdir()
    path.write_text("---\ntype: Artikel\n---\nText.", encoding="utf-8")
    assert load_file(path, settings, corpus_root=tmp_path).type == "article"


def test_unparseable_date_is_a_warning(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "d.md"
    path.write_text("---\ndate: irgendwann im Frühling\n---\nText.", encoding="utf-8")
    doc = load_file(path, settings)
    assert doc.date is None
    assert doc.warnings == ["Datum „irgendwann im Frühling“ nicht erkannt – wird ignoriert"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.date(2024, 3, 18), "2024-03-18"),
        (dt.datetime(2024, 3, 18, 10, 30), "2024-03-18"),
        ("2024-03-18", "2024-03-18"),
        ("18.03.2024", "2024-03-18"),
        ("8.3.2024", "2024-03-08"),
        ("2024-03-18T08:00:00+02:00", "2024-03-18"),
        ("18. März 2024", "2024-03-18"),
        ("D:20200813173559+02'00'", "2020-08-13"),
        ("31.02.2024", None),
        ("morgen", None),
        (None, None),
    ],
)
def test_normalize_date(value: object, expected: str | None) -> None:
    assert normalize_date(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(["K", "T"], ["K", "T"]), ("K,T", ["K", "T"]), ("t, e", ["E", "T"]), ("KT", ["K", "T"]), ([], []), (None, [])],
)
def test_normalize_ekt(value: object, expected: list[str]) -> None:
    assert normalize_ekt(value, []) == expected


def test_normalize_ekt_warns_on_unknown() -> None:
    warnings: list[str] = []
    assert normalize_ekt(["K", "X"], warnings) == ["K"]
    assert warnings and "X" in warnings[0]


def test_source_id_is_stable_and_relative(tmp_path: Path) -> None:
    root_a = tmp_path / "a"
    root_b = tmp_path / "b"
    for root in (root_a, root_b):
        (root / "articles").mkdir(parents=True)
        (root / "articles" / "Größe & Maß.md").write_text("x", encoding="utf-8")
    id_a = source_id_for(root_a / "articles" / "Größe & Maß.md", root_a)
    id_b = source_id_for(root_b / "articles" / "Größe & Maß.md", root_b)
    assert id_a == id_b  # relative to the corpus root: moving the corpus keeps ids
    assert id_a.startswith("groesse-mass-") and len(id_a.rsplit("-", 1)[1]) == 8
    outside = source_id_for(root_a / "articles" / "Größe & Maß.md", tmp_path / "anderswo")
    assert outside != id_a
    assert source_id_for(root_a / "articles" / "Größe & Maß.md", None) == outside
