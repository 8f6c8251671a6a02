"""Plain text loader and the shared decoding rules (encoding, binary, empty, unknown extension)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.loaders import SUPPORTED_SUFFIXES, load_file
from ingest.models import LoaderError
from core.settings import Settings


@pytest.fixture
def settings() -> Settings:
    return Settings()


def test_paragraphs_and_title_line(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "notiz.txt"
    path.write_text(
        "Protokoll Innenstadtdialog\n\nErster Absatz über\nzwei Zeilen.\n\n- Punkt eins\n- Punkt zwei\n\n\nLetzter Absatz.\n",
        encoding="utf-8",
    )
    doc = load_file(path, settings)
    assert doc.title == "Protokoll Innenstadtdialog"
    assert [b.text for b in doc.blocks] == [
        "Erster Absatz über zwei Zeilen.", "- Punkt eins\n- Punkt zwei", "Letzter Absatz."
    ]  # fmt: skip
    assert doc.type == "article"


def test_long_first_line_is_no_title(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "lang.txt"
    path.write_text("A" * 130 + "\n\nZweiter Absatz.\n", encoding="utf-8")
    doc = load_file(path, settings)
    assert doc.title == "lang"
    assert len(doc.blocks) == 2


def test_utf8_bom_and_crlf(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffÜberschrift\r\n\r\nGrüße aus Köln.\r\n".encode())
    doc = load_file(path, settings)
    assert doc.title == "Überschrift"
    assert doc.blocks[0].text == "Grüße aus Köln."


@pytest.mark.parametrize("suffix", [".txt", ".md", ".html", ".vtt", ".srt"])
def test_latin1_is_rejected(tmp_path: Path, settings: Settings, suffix: str) -> None:
    path = tmp_path / f"alt{suffix}"
    path.write_bytes("Grüße aus der Innenstadt – schön".encode("cp1252"))
    with pytest.raises(LoaderError, match=r"^Datei ist nicht UTF-8-kodiert \(.+\)$"):
        load_file(path, settings)


@pytest.mark.parametrize("suffix", [".txt", ".md", ".html"])
def test_binary_junk_is_rejected(tmp_path: Path, settings: Settings, suffix: str) -> None:
    path = tmp_path / f"junk{suffix}"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)) * 8)
    with pytest.raises(LoaderError, match="^Binärdatei, kein Text$"):
        load_file(path, settings)


def test_control_characters_without_nul_are_binary(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "steuer.txt"
    path.write_bytes(bytes([1, 2, 3, 4, 5, 6, 7, 8, 11, 14, 15, 16]) * 50 + b"abc")
    with pytest.raises(LoaderError, match="^Binärdatei, kein Text$"):
        load_file(path, settings)


@pytest.mark.parametrize("content", [b"", b"   \n\n\t  \n", b"\xef\xbb\xbf"])
@pytest.mark.parametrize("suffix", [".txt", ".md", ".vtt"])
def test_empty_files(tmp_path: Path, settings: Settings, content: bytes, suffix: str) -> None:
    path = tmp_path / f"leer{suffix}"
    path.write_bytes(content)
    with pytest.raises(LoaderError, match="^Datei ist leer$"):
        load_file(path, settings)


def test_unknown_extension(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "tabelle.xyz"
    path.write_text("a;b", encoding="utf-8")
    with pytest.raises(LoaderError, match=r"^Nicht unterstütztes Dateiformat: \.xyz$"):
        load_file(path, settings)


def test_missing_file(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(LoaderError, match="^Datei nicht gefunden$"):
        load_file(tmp_path / "fehlt.md", settings)


def test_supported_suffixes() -> None:
    assert SUPPORTED_SUFFIXES == frozenset({".md", ".markdown", ".html", ".htm", ".txt", ".pdf", ".vtt", ".srt"})


def test_uppercase_suffix(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "GROSS.TXT"
    path.write_text("Inhalt.", encoding="utf-8")
    assert load_file(path, settings).blocks[0].text == "Inhalt."
