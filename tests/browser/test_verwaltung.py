"""The Verwaltung page in Chromium: log in, drop a PDF and a VTT, see the job finish, ask a question that cites
the new WebTalk, delete it (with confirmation), the citation is gone. Also the page's WCAG audit."""

from __future__ import annotations

import base64
import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import ask, last_answer
from tests.browser.test_accessibility import audit

pytestmark = pytest.mark.browser

PASSWORD = "ein-langes-Verwaltungspasswort"
VTT_TITLE = "WebTalk Lastenräder im Lieferverkehr"
VTT = f"""WEBVTT

NOTE
Titel: {VTT_TITLE}
Datum: 2024-06-11

00:00:01.000 --> 00:00:20.000
<v Nora Field>Der Lastenrad-Verleih am Marktplatz ersetzt im Lieferverkehr der Innenstadt rund 40 Lieferwagenfahrten.

00:00:21.000 --> 00:00:40.000
<v Nora Field>Die Lastenräder werden über die App der Stadtwerke gebucht und stehen am Rathaus.
"""
PDF_TEXT = "Der Schaufensterwettbewerb belebt leere Ladenlokale mit Kunst aus der Region."
QUESTION = "Was ersetzt der Lastenrad-Verleih im Lieferverkehr?"


def _pdf() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title("Lerneinheit Schaufensterwettbewerb")
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(0, 8, PDF_TEXT)
    return bytes(pdf.output())


def _login(page: Page, url: str, name: str) -> None:
    page.goto(url + "/verwaltung")
    expect(page).to_have_url(re.compile(r"/anmelden\?next=/verwaltung$"))
    page.get_by_label("Benutzername").fill(name)
    page.get_by_label("Passwort").fill(PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    expect(page.get_by_role("heading", name="Verwaltung", level=1)).to_be_visible()


def _drop(page: Page, files: dict[str, tuple[bytes, str]]) -> None:
    """Drag and drop: a `drop` event carrying the files, as a file manager would send it."""
    payload = [[name, base64.b64encode(data).decode(), mime] for name, (data, mime) in files.items()]
    transfer = page.evaluate_handle(
        """(files) => {
            const transfer = new DataTransfer();
            for (const [name, data, type] of files) {
                const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], name, { type }));
            }
            return transfer;
        }""",
        payload,
    )
    page.dispatch_event('[data-role="dropzone"]', "dragover", {"dataTransfer": transfer})
    page.dispatch_event('[data-role="dropzone"]', "drop", {"dataTransfer": transfer})


def test_upload_cite_and_delete_in_the_browser(live, page: Page) -> None:  # noqa: ANN001
    live.services.accounts.add("verwalterin", "admin", PASSWORD)
    _login(page, live.url, "verwalterin")
    audit(page, "Verwaltung")

    _drop(page, {"lastenrad.vtt": (VTT.encode(), "text/vtt"), "schaufenster.pdf": (_pdf(), "application/pdf")})
    expect(page.locator('[data-role="file-list"] li')).to_have_count(2)
    page.locator("#upload-phase").select_option("T")
    page.get_by_role("button", name="Hochladen").click()
    expect(page.locator('[data-role="upload-status"]')).to_contain_text("Hochgeladen: lastenrad.vtt, schaufenster.pdf")
    job = page.locator('[data-role="jobs"] tr').first
    expect(job).to_have_attribute("data-status", "done", timeout=30000)
    expect(job).to_contain_text("2 neu")
    sources = page.locator('[data-role="sources"]')
    expect(sources).to_contain_text(VTT_TITLE)
    expect(sources).to_contain_text("Lerneinheit Schaufensterwettbewerb")
    audit(page, "Verwaltung mit Auftrag und Quellen")

    chat = page.context.new_page()
    chat.goto(live.url + "/")
    ask(chat, QUESTION)
    expect(last_answer(chat).locator(".sr-card").first.locator(".sr-card-title")).to_contain_text(VTT_TITLE)

    page.locator("#filter-type").select_option("webtalk")
    row = sources.locator("tr", has_text=VTT_TITLE)
    expect(sources.locator("tr")).not_to_contain_text(["Lerneinheit Schaufensterwettbewerb"])
    row.get_by_role("button", name=f"„{VTT_TITLE}“ löschen").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(VTT_TITLE)
    dialog.get_by_role("button", name="Löschen").click()
    expect(page.locator('[data-role="sources-status"]')).to_contain_text("wurde gelöscht")
    expect(sources).not_to_contain_text(VTT_TITLE)

    ask(chat, QUESTION)
    expect(last_answer(chat).locator(".sr-card-title", has_text=VTT_TITLE)).to_have_count(0)

    # Leave the shared corpus as it was for the other browser tests.
    page.locator("#filter-type").select_option("")
    pdf_row = sources.locator("tr", has_text="Lerneinheit Schaufensterwettbewerb")
    pdf_row.get_by_role("button", name="„Lerneinheit Schaufensterwettbewerb“ löschen").click()
    page.get_by_role("dialog").get_by_role("button", name="Löschen").click()
    expect(sources).not_to_contain_text("Schaufensterwettbewerb")


def test_verwaltung_sends_visitors_to_the_login(live, page: Page) -> None:  # noqa: ANN001
    response = page.request.get(live.url + "/verwaltung", max_redirects=0)
    assert response.status == 303 and response.headers["location"].startswith("/anmelden")
    refused = page.request.post(live.url + "/v1/admin/documents", multipart={"type": "article"})
    assert refused.status == 401


def test_keys_and_import_errors_in_the_browser(live, page: Page) -> None:  # noqa: ANN001
    live.services.accounts.add("schluesselwart", "admin", PASSWORD)
    _login(page, live.url, "schluesselwart")

    page.get_by_label("Name", exact=True).fill("Akademie-Website")
    page.get_by_role("button", name="Schlüssel erzeugen").click()
    expect(page.locator('[data-role="new-key"]')).to_be_visible()
    key = page.locator('[data-role="new-key-value"]').inner_text()
    assert key.startswith("sr_")
    row = page.locator('[data-role="keys"] tr', has_text="Akademie-Website")
    expect(row).to_contain_text("ask, search")
    allowed = page.request.post(f"{live.url}/v1/search", data={"query": "WLAN"},
                                headers={"Authorization": f"Bearer {key}"})
    assert allowed.ok
    row.get_by_role("button", name="Schlüssel „Akademie-Website“ widerrufen").click()
    expect(page.locator('[data-role="keys-status"]')).to_contain_text("widerrufen")
    refused = page.request.post(f"{live.url}/v1/search", data={"query": "WLAN"},
                                headers={"Authorization": f"Bearer {key}"})
    assert refused.status == 401

    # The live server refuses private addresses (as in production): the page shows the German reason.
    page.get_by_label("Adresse einer Seite, Sitemap oder eines RSS/Atom-Feeds").fill("http://127.0.0.1:9/feed.xml")
    page.get_by_role("button", name="Importieren").click()
    expect(page.locator('[data-role="import-status"]')).to_contain_text("private oder lokale Adresse")
