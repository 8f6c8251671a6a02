"""Markdown loader: front matter, heading paths, lists, inline markup."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.loaders import load_file
from ingest.models import LoaderError
from core.settings import Settings

ARTICLE = """---
title: Leerstand als Chance
date: 2024-03-18
author: Petra Sommer
url: https://stadtretter.example/artikel/leerstand
type: article
ekt: [K, T]
---

# Leerstand als Chance

Einleitung mit einem [Link zur Studie](https://example.org/studie) und einem Bild ![Foto](bild.png) sowie **fettem** und _kursivem_ Text.

## Finanzierung

Das Programm zahlt bis zu 70 Prozent der Miete.

- erster Punkt
- zweiter Punkt mit [Link](https://example.org)
  - eingerückter Unterpunkt

### Fördermittel

1. Antrag stellen
2. Bescheid abwarten

## Betrieb

```
code bleibt als Text
```

| Jahr | Läden |
|------|-------|
| 2023 | 12    |
"""


@pytest.fixture
def settings() -> Settings:
    return Settings()


def test_front_matter_and_sections(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "leerstand.md"
    path.write_text(ARTICLE, encoding="utf-8")
    doc = load_file(path, settings)
    assert doc.title == "Leerstand als Chance"
    assert (doc.date, doc.author, doc.url, doc.type) == (
        "2024-03-18", "Petra Sommer", "https://stadtretter.example/artikel/leerstand", "article",
    )  # fmt: skip
    assert doc.ekt == ["K", "T"]
    sections = [(b.section, b.text) for b in doc.blocks]
    assert sections[0] == (
        None, "Einleitung mit einem Link zur Studie und einem Bild sowie fettem und kursivem Text."
    )  # fmt: skip
    assert sections[1] == ("Finanzierung", "Das Programm zahlt bis zu 70 Prozent der Miete.")
    assert sections[2] == (
        "Finanzierung", "- erster Punkt\n- zweiter Punkt mit Link\n  - eingerückter Unterpunkt"
    )  # fmt: skip
    assert sections[3] == ("Finanzierung › Fördermittel", "1. Antrag stellen\n2. Bescheid abwarten")
    assert sections[4] == ("Betrieb", "code bleibt als Text")
    assert sections[5] == ("Betrieb", "Jahr | Läden\n2023 | 12")
    assert len(sections) == 6
    all_text = "\n".join(b.text for b in doc.blocks)
    for marker in ("](", "![", "**", "_kursiv", "```", "#"):
        assert marker not in all_text


def test_title_from_first_heading_and_further_h1_enter_the_path(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "kapitel.md"
    path.write_text("# Ausgangslage\n# Intro\n## Warum?\nText A.\n\n# Anhang\nText B.\n", encoding="utf-8")
    doc = load_file(path, settings)
    assert doc.title == "Ausgangslage"
    assert [(b.section, b.text) for b in doc.blocks] == [("Intro › Warum?", "Text A."), ("Anhang", "Text B.")]


def test_title_falls_back_to_stem(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "notizen_zum_markt.md"
    path.write_text("Nur ein Absatz ohne Überschrift.\n", encoding="utf-8")
    doc = load_file(path, settings)
    assert doc.title == "notizen zum markt"
    assert doc.blocks[0].section is None


def test_footnotes_become_a_block(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "fussnoten.md"
    path.write_text("# T\n\nText mit Beleg[^1].\n\n[^1]: Stadt Ulm, 2020, S. 23\n", encoding="utf-8")
    doc = load_file(path, settings)
    assert [(b.section, b.text) for b in doc.blocks] == [
        (None, "Text mit Beleg[1]."), ("Fußnoten", "[1] Stadt Ulm, 2020, S. 23")
    ]  # fmt: skip


@pytest.mark.parametrize(
    "head",
    ["---\ntitle: [kaputt\n---\nText\n", "---\ntitle: a\n  b: c\n---\nText\n", "---\n- nur\n- eine Liste\n---\nText\n"],
)
def test_bad_front_matter(tmp_path: Path, settings: Settings, head: str) -> None:
    path = tmp_path / "kaputt.md"
    path.write_text(head, encoding="utf-8")
    with pytest.raises(LoaderError, match="^Ungültiger YAML-Kopf: "):
        load_file(path, settings)


def test_invalid_type_in_front_matter(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "typ.md"
    path.write_text("---\ntype: podcast\n---\nText\n", encoding="utf-8")
    with pytest.raises(LoaderError, match="Ungültiger Typ „podcast“"):
        load_file(path, settings)


def test_front_matter_only_is_no_text(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "nurkopf.md"
    path.write_text("---\ntitle: Nur Kopf\n---\n\n![Bild](x.png)\n", encoding="utf-8")
    with pytest.raises(LoaderError, match="Kein verwertbarer Text"):
        load_file(path, settings)


def test_gender_star_is_text_not_emphasis(tmp_path) -> None:  # noqa: ANN001
    from ingest.loaders import load_file
    from core.settings import Settings

    path = tmp_path / "gender.md"
    path.write_text("# T\n\nDie Besucher*innen und die Händler*innen wurden befragt, *wirklich* alle.\n", encoding="utf-8")
    doc = load_file(path, Settings())
    assert doc.blocks[0].text == "Die Besucher*innen und die Händler*innen wurden befragt, wirklich alle."
