"""HTML loader: boilerplate removal, main content, meta data, sections."""

from __future__ import annotations

from pathlib import Path

from ingest.loaders import load_file
from core.settings import Settings

PAGE = """<!doctype html>
<html lang="de">
<head>
  <title>Wochenmarkt neu gedacht | Stadtretter</title>
  <meta name="author" content="Jonas Keller">
  <meta property="article:published_time" content="2023-09-14T08:00:00+02:00">
  <link rel="canonical" href="https://stadtretter.example/artikel/wochenmarkt">
  <style>.x { color: red }</style>
  <script>var trackingSecret = "SCRIPTTEXT";</script>
</head>
<body class="page cookie-consent-open">
  <header><a href="/">Stadtretter</a> HEADERTEXT</header>
  <nav><ul><li>NAVTEXT Start</li><li>Artikel</li></ul></nav>
  <div id="cookie-banner">COOKIETEXT Wir verwenden Cookies.</div>
  <div class="breadcrumb">BREADCRUMBTEXT</div>
  <main>
    <article>
      <h1>Wochenmarkt neu gedacht</h1>
      <p>Der Markt in <a href="/marktheide">Marktheide</a> zieht <strong>jeden Samstag</strong> Besucher an.<br>Neue Zeile.</p>
      <h2>Ergebnisse</h2>
      <ul><li>mehr Sitzplätze</li><li>längere Öffnungszeiten</li></ul>
      <h3>Zahlen</h3>
      <table><tr><th>Jahr</th><th>Besucher</th></tr><tr><td>2023</td><td>4.100</td></tr></table>
      <blockquote><p>Ein Zitat einer Händlerin.</p></blockquote>
      <div class="share-buttons">SHARETEXT teilen</div>
      <aside>ASIDETEXT Verwandte Artikel</aside>
      <form>FORMTEXT <input name="q"></form>
      <noscript>NOSCRIPTTEXT</noscript>
      <div>Loser Text direkt im div.</div>
    </article>
  </main>
  <div class="newsletter-signup">NEWSLETTERTEXT</div>
  <footer>FOOTERTEXT Impressum</footer>
  <script>document.write("SCRIPTTEXT2")</script>
</body>
</html>
"""


def test_boilerplate_removed_and_structure_kept(tmp_path: Path) -> None:
    path = tmp_path / "wochenmarkt.html"
    path.write_text(PAGE, encoding="utf-8")
    doc = load_file(path, Settings())
    assert doc.title == "Wochenmarkt neu gedacht"
    assert doc.author == "Jonas Keller"
    assert doc.date == "2023-09-14"
    assert doc.url == "https://stadtretter.example/artikel/wochenmarkt"
    blocks = [(b.section, b.text) for b in doc.blocks]
    assert blocks == [
        (None, "Der Markt in Marktheide zieht jeden Samstag Besucher an.\nNeue Zeile."),
        ("Ergebnisse", "- mehr Sitzplätze\n- längere Öffnungszeiten"),
        ("Ergebnisse › Zahlen", "Jahr | Besucher\n2023 | 4.100"),
        ("Ergebnisse › Zahlen", "Ein Zitat einer Händlerin."),
        ("Ergebnisse › Zahlen", "Loser Text direkt im div."),
    ]
    everything = "\n".join(b.text for b in doc.blocks)
    for junk in ("SCRIPTTEXT", "HEADERTEXT", "NAVTEXT", "COOKIETEXT", "BREADCRUMBTEXT", "SHARETEXT", "ASIDETEXT",
                 "FORMTEXT", "NOSCRIPTTEXT", "NEWSLETTERTEXT", "FOOTERTEXT", "color"):  # fmt: skip
        assert junk not in everything


def test_title_without_h1_strips_site_suffix_and_meta_date(tmp_path: Path) -> None:
    path = tmp_path / "seite.htm"
    path.write_text(
        '<html><head><title>Parkraum in Lindenfeld | Stadtretter</title><meta name="date" content="18.03.2024">'
        '<meta property="og:url" content="https://example.org/parkraum"></head>'
        "<body><p>Erster Absatz.</p><p>Zweiter Absatz.</p></body></html>",
        encoding="utf-8",
    )
    doc = load_file(path, Settings())
    assert doc.title == "Parkraum in Lindenfeld"
    assert doc.date == "2024-03-18"
    assert doc.url == "https://example.org/parkraum"
    assert [b.text for b in doc.blocks] == ["Erster Absatz.", "Zweiter Absatz."]


def test_time_element_date_and_body_without_main(tmp_path: Path) -> None:
    path = tmp_path / "zeit.html"
    path.write_text(
        '<html><body><h1>Titel</h1><p>Am <time datetime="2022-11-05">5. November</time> war Markt.</p></body></html>',
        encoding="utf-8",
    )
    doc = load_file(path, Settings())
    assert doc.title == "Titel"
    assert doc.date == "2022-11-05"
    assert doc.blocks[0].text == "Am 5. November war Markt."


def test_layout_tables_are_walked_and_data_tables_flattened(tmp_path: Path) -> None:
    path = tmp_path / "alt.html"
    path.write_text(
        "<table><tr><td><h2>Öffnungszeiten</h2><p>Der Markt ist samstags geöffnet.</p>"
        "<table><tr><td>Sa</td><td>8–13 Uhr</td></tr></table></td></tr></table>",
        encoding="utf-8",
    )
    doc = load_file(path, Settings())
    assert [(b.section, b.text) for b in doc.blocks] == [
        ("Öffnungszeiten", "Der Markt ist samstags geöffnet."), ("Öffnungszeiten", "Sa | 8–13 Uhr")
    ]  # fmt: skip


def test_pathological_nesting_does_not_crash(tmp_path: Path) -> None:
    path = tmp_path / "tief.html"
    path.write_text("<div>" * 3000 + "<font>" * 2000 + "Tief unten." + "</div>" * 3000, encoding="utf-8")
    doc = load_file(path, Settings())
    assert [b.text for b in doc.blocks] == ["Tief unten."]
