"""The trainer page in Chromium: login redirect, a dossier for a topic of the corpus with DOCX and PDF downloads, a
heatmap cell, and an unanswered question the test asked twice before, shown as one group. Screenshots go to docs/."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from docx import Document
from playwright.sync_api import expect
from pypdf import PdfReader

from retriever.models import Answer, PhaseTag
from tests.auth_support import PASSWORD

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[2] / "docs"
TABLET = {"width": 820, "height": 1180}
UNANSWERED = ["Gibt es Zuschüsse für Lastenräder der Händler?"] * 2
WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


def log_in(page, live, name: str) -> None:  # noqa: ANN001
    if live.services.accounts.get(name) is None:
        live.services.accounts.add(name, "trainer", PASSWORD)
    page.goto(f"{live.url}/werkstatt")
    expect(page).to_have_url(re.compile(r"/anmelden\?next=/werkstatt"))
    page.get_by_label("Benutzername").fill(name)
    page.get_by_label("Passwort").fill(PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    expect(page).to_have_url(f"{live.url}/werkstatt")


def test_trainer_builds_a_dossier_downloads_it_and_reads_the_question_log(live, page, tmp_path) -> None:  # noqa: ANN001
    for question in UNANSWERED:
        answer = page.request.post(f"{live.url}/v1/ask", data={"question": question}).json()
        assert answer["abstained"], answer
    log_in(page, live, "trainerin")

    page.get_by_role("textbox", name="Thema").fill("Passantenbefragung")
    page.get_by_role("button", name="Mappe erstellen").click()
    result = page.locator("#mappe-ergebnis")
    expect(result.get_by_role("link", name=re.compile("Passantenbefragung in Brückenheim"))).to_be_visible()
    expect(result).to_contain_text("„Für die Passantenbefragung werden Fragebogen")
    expect(result).to_contain_text("Zur Transformation gibt es zu diesem Thema")

    texts = {}
    for label, fmt in (("Word (DOCX)", "docx"), ("PDF", "pdf")):
        with page.expect_download() as info:
            page.get_by_role("button", name=label).click()
        download = info.value
        assert download.suggested_filename == f"materialmappe-passantenbefragung.{fmt}"
        data = Path(download.path()).read_bytes()
        texts[fmt] = ("\n".join(p.text for p in Document(io.BytesIO(data)).paragraphs) if fmt == "docx"
                      else " ".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages))
    for text in texts.values():
        assert "Passantenbefragung in Brückenheim" in text and "Quellenverzeichnis" in text
        assert "https://stadtretter.example/artikel/passantenbefragung" in text

    heat = page.locator(".sr-ws-heat:not(.sr-ws-heat-empty)").first
    heat.click()
    cell = page.locator("#karte-zelle")
    expect(cell).to_be_visible()
    expect(cell.get_by_role("link").first).to_be_visible()
    expect(cell.get_by_role("button", name=re.compile("^Mappe „"))).to_be_visible()
    page.get_by_label("Quellentyp", exact=True).select_option("course")  # the course PDF is tagged E
    expect(page.locator(".sr-ws-heat-E:not(.sr-ws-heat-empty)")).not_to_have_count(0)
    expect(page.locator(".sr-ws-heat-K:not(.sr-ws-heat-empty), .sr-ws-heat-T:not(.sr-ws-heat-empty)")).to_have_count(0)
    page.get_by_label("Quellentyp", exact=True).select_option("")

    group = page.locator("#fragen-gruppen li", has_text="Lastenräder")
    expect(group).to_contain_text("2× gefragt")
    expect(page.locator("#fragen-tabelle tbody tr", has_text="Lastenräder")).to_have_count(2)

    DOCS.mkdir(exist_ok=True)
    page.locator("#mappe").screenshot(path=str(DOCS / "werkstatt-mappe.png"))
    page.locator("#karte").screenshot(path=str(DOCS / "werkstatt-karte.png"))
    page.locator("#fragen").screenshot(path=str(DOCS / "werkstatt-fragen.png"))


def test_the_question_log_shows_and_filters_answers_given_with_reservation(live, page) -> None:  # noqa: ANN001
    question = "Wer wartet das WLAN am Marktplatz nachts?"
    live.services.question_log.record(question, Answer(question, "…", [], abstained=False, uncertain=True,
                                                       phase=PhaseTag("K", "Konzeption", "")))
    live.services.question_log.record("Fährt nachts ein Bus zum Marktplatz?", Answer("…", "…", [], abstained=True))
    log_in(page, live, "trainer-vorbehalt")
    rows = page.locator("#fragen-tabelle tbody tr")
    expect(rows.filter(has_text=question)).to_contain_text("mit Vorbehalt")
    expect(rows.filter(has_text="Fährt nachts ein Bus")).to_contain_text("nein")
    # Grouped apart: the cautioned need under "mit Vorbehalt", the refused one under the unanswered.
    expect(page.locator("#fragen-vorbehalt li", has_text=question)).to_have_count(1)
    expect(page.locator("#fragen-gruppen li", has_text=question)).to_have_count(0)
    expect(page.locator("#fragen-gruppen li", has_text="Fährt nachts ein Bus")).to_have_count(1)
    answer = page.get_by_label("Antwort", exact=True)
    answer.select_option(label="mit Vorbehalt beantwortet")
    page.get_by_role("button", name="Anzeigen").click()
    # Only answers given with reservation (other tests of the session may have logged some too).
    expect(rows.filter(has_text="Fährt nachts ein Bus")).to_have_count(0)
    expect(rows.filter(has_text=question)).to_have_count(1)
    expect(rows.filter(has_not_text="mit Vorbehalt")).to_have_count(0)
    expect(page.locator("#fragen-csv")).to_have_attribute("href", re.compile(r"[?&]uncertain=true"))
    answer.select_option(label="unbeantwortet")
    page.get_by_role("button", name="Anzeigen").click()
    expect(rows.filter(has_text=question)).to_have_count(0)
    expect(rows.filter(has_text="Fährt nachts ein Bus")).to_have_count(1)
    answer.select_option(label="ohne Vorbehalt beantwortet")  # answered, and without the notice
    page.get_by_role("button", name="Anzeigen").click()
    expect(rows.filter(has_text=question)).to_have_count(0)
    expect(rows.filter(has_text="Fährt nachts ein Bus")).to_have_count(0)
    expect(rows.filter(has_text="mit Vorbehalt")).to_have_count(0)
    expect(page.locator("#fragen-csv")).to_have_attribute("href", re.compile(r"abstained=false&uncertain=false"))


def test_werkstatt_on_a_tablet_meets_wcag_aa(live, page) -> None:  # noqa: ANN001
    page.set_viewport_size(TABLET)
    log_in(page, live, "trainer-tablet")
    expect(page.locator(".sr-ws-heat").first).to_be_visible()
    page.get_by_role("textbox", name="Thema").fill("Frequenzmessung")
    page.get_by_role("button", name="Mappe erstellen").click()
    expect(page.locator("#mappe-ergebnis .sr-ws-source").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scrolling
    results = Axe().run(page, options=WCAG)
    problems = [f"{v['id']}: {v['help']} – {[n['target'] for n in v['nodes'][:4]]}"
                for v in results.response["violations"]]
    assert not problems, "\n".join(problems)
    page.screenshot(path=str(DOCS / "werkstatt-tablet.png"), full_page=False)


def test_public_visitors_are_sent_to_the_login(live, page) -> None:  # noqa: ANN001
    response = page.request.get(f"{live.url}/werkstatt", max_redirects=0)
    assert response.status == 303 and response.headers["location"].startswith("/anmelden?next=/werkstatt")
