"""Upload checks (name, size, type by content) and the content-hashed store."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.uploads import ContentError, UploadMetadata, UploadStore, check_content, check_name

LIMIT = 1000
VTT = b"WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nHallo Innenstadt.\n"


@pytest.mark.parametrize("raw", ["../../x.md", "..\\x.md", "a/b.md", "..", ".env.md", "x\x00.md", ""])
def test_names_with_paths_or_control_characters_are_refused(raw: str) -> None:
    with pytest.raises(ContentError) as refused:
        check_name(raw)
    assert "Datei" in str(refused.value)
    if raw and raw.isprintable():
        assert f"„{raw}“" in str(refused.value)


def test_names_are_made_safe_and_keep_their_extension() -> None:
    assert check_name("Förder mittel*2024?.PDF") == "Förder mittel_2024_.pdf"
    assert len(check_name("x" * 300 + ".md")) <= 120


@pytest.mark.parametrize(
    ("name", "data", "status", "words"),
    [
        ("a.docx", b"PK\x03\x04", 415, "nicht unterstützt"),
        ("gross.md", b"x" * (LIMIT + 1), 413, "größer"),
        ("leer.md", b"  \n", 422, "leer"),
        ("bild.pdf", b"\x89PNG\r\n\x1a\n" + bytes(200), 415, "keine PDF-Datei"),
        ("tarnung.md", b"%PDF-1.7\n...", 415, "ist eine PDF-Datei"),
        ("zufall.vtt", bytes(range(256)) * 3, 415, "Binärdatei"),
        ("ohne-kopf.vtt", b"00:00:01.000 --> 00:00:02.000\nHallo\n", 415, "WEBVTT"),
        ("latin.md", "Straße".encode("latin-1"), 415, "UTF-8"),
    ],
)
def test_content_must_fit_the_extension(name: str, data: bytes, status: int, words: str) -> None:
    with pytest.raises(ContentError) as refused:
        check_content(name, data, LIMIT)
    assert refused.value.status_code == status
    assert f"„{name}“" in str(refused.value) and words in str(refused.value)


def test_fitting_content_passes() -> None:
    check_content("talk.vtt", VTT, LIMIT)
    check_content("kurs.pdf", b"%PDF-1.4\n%...", LIMIT)
    check_content("artikel.md", "# Überschrift\n\nText".encode(), LIMIT)


def test_metadata_names_the_field() -> None:
    for field, value in (("type", "video"), ("phase", "X"), ("date", "gestern"), ("url", "ftp://x")):
        with pytest.raises(ContentError, match=f"Feld „{field}“"):
            UploadMetadata(**{field: value}).validated()
    ok = UploadMetadata(type="course", phase="k", date="2. Mai 2024", url="https://a.example/x").validated()
    assert (ok.phase, ok.date) == ("K", "2024-05-02")
    assert ok.sidecar() == {"type": "course", "ekt": ["K"], "date": "2024-05-02", "url": "https://a.example/x"}


def test_store_by_content_hash_never_overwrites(tmp_path: Path) -> None:
    store = UploadStore(tmp_path / "uploads", LIMIT)
    first = store.store("talk.vtt", VTT, UploadMetadata(title="WebTalk"))
    other = store.store("talk.vtt", VTT + b"\n00:00:04.000 --> 00:00:05.000\nNoch was.\n", UploadMetadata())
    again = store.store("kopie.vtt", VTT, UploadMetadata())
    assert first.path != other.path and first.path.read_bytes() == VTT
    assert again.path == first.path  # equal content is one stored file, one source
    assert "title: WebTalk" in first.path.with_suffix(".yml").read_text(encoding="utf-8")
    store.remove(first.path)
    assert not first.path.exists() and other.path.exists()
    store.remove(tmp_path / "elsewhere.md")  # outside the store: ignored
