"""The source view (/quellen/...): whole document from the store, the cited passage highlighted and in view,
transcripts with time stamps, PDFs with pages and a link to the original file (served only from the corpus)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from ingest.registry import SourceRecord
from tests.browser.conftest import PHONE
from tests.browser.support import Q_PDF, Q_WEBTALK, Q_WLAN, save_screenshot

pytestmark = pytest.mark.browser


def first_citation(page, live, question: str) -> dict:  # noqa: ANN001
    return page.request.post(f"{live.url}/v1/ask", data={"question": question}).json()["citations"][0]


def test_article_view_highlights_cited_chunk(live, page, artifacts) -> None:  # noqa: ANN001
    citation = first_citation(page, live, Q_WLAN)
    page.set_viewport_size({"width": 1280, "height": 500})
    page.goto(f"{live.url}/quellen/{citation['source_id']}?chunk={citation['chunk_id']}")
    expect(page).to_have_title(f"{citation['title']} – Stadtretter Wissens-Chat")
    expect(page.get_by_role("heading", level=1)).to_have_text(citation["title"])
    expect(page.locator(".sr-source-meta")).to_contain_text("Artikel")
    expect(page.locator(".sr-source-meta")).to_contain_text("18.04.2023")
    expect(page.get_by_role("link", name="Original auf der Website öffnen")).to_have_attribute("href", citation["url"])
    # The whole document in order, with its section headings.
    expect(page.locator(".sr-section-heading")).to_have_text(["Finanzierungsmix", "Laufende Kosten"])
    chunks = page.locator(".sr-chunk")
    expect(chunks).to_have_count(3)
    expect(chunks.first).to_contain_text("Lindenau betreibt seit 2022")
    # The cited chunk is highlighted, focused and scrolled into view.
    target = page.locator(".sr-chunk.is-target")
    expect(target).to_have_count(1)
    expect(target).to_have_attribute("data-chunk", citation["chunk_id"])
    expect(target).to_contain_text(citation["snippet"])
    expect(target).to_be_focused()
    expect(target).to_be_in_viewport()
    page.set_viewport_size({"width": 1280, "height": 800})
    save_screenshot(page, artifacts, "desktop-quelle")
    # Back to the chat.
    expect(page.get_by_role("link", name="← Zurück zum Wissens-Chat")).to_have_attribute("href", "/")


def test_transcript_view_jumps_to_time(live, page, artifacts) -> None:  # noqa: ANN001
    citation = first_citation(page, live, Q_WEBTALK)
    page.set_viewport_size(PHONE)
    page.goto(f"{live.url}/quellen/{citation['source_id']}?t=95")
    expect(page.locator(".sr-source-meta")).to_contain_text("WebTalk")
    expect(page.locator(".sr-cue-time")).to_have_count(3)
    expect(page.locator(".sr-cue-time").nth(1)).to_contain_text("01:30")
    target = page.locator(".sr-chunk.is-target")
    expect(target).to_contain_text("Nachfolgebörse")
    expect(target.locator(".sr-speaker")).to_have_text("Petra Lang:")
    expect(target).to_be_in_viewport()
    save_screenshot(page, artifacts, "phone-quelle-transkript")
    # The link of the card (?t=<start of the cited cue>) highlights the cited passage.
    page.goto(f"{live.url}/quellen/{citation['source_id']}?t={int(citation['start'])}")
    expect(page.locator(".sr-chunk.is-target")).to_contain_text("fünf Jahre vorher")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_pdf_view_and_original_file(live, page) -> None:  # noqa: ANN001
    # The answer leads with its best sentence, so the page-2 citation is not necessarily [1] (as in test_chat).
    citations = page.request.post(f"{live.url}/v1/ask", data={"question": Q_PDF}).json()["citations"]
    citation = next(c for c in citations if c["page"] == 2)
    page.goto(f"{live.url}/quellen/{citation['source_id']}?chunk={citation['chunk_id']}")
    file_url = f"/quellen/{citation['source_id']}/datei"
    expect(page.get_by_role("link", name="Original-PDF öffnen")).to_have_attribute("href", file_url)
    expect(page.locator(".sr-page-heading")).to_have_count(2)
    page_two = page.locator("#seite-2")
    expect(page_two).to_contain_text("Seite 2")
    expect(page_two.get_by_role("link")).to_have_attribute("href", f"{file_url}#page=2")
    expect(page.locator(".sr-chunk.is-target")).to_contain_text("Wiederkehrrate")

    original = page.request.get(live.url + file_url)
    assert original.status == 200 and original.headers["content-type"] == "application/pdf"
    assert original.body() == live.corpus["pdf"].read_bytes()


def test_only_corpus_files_are_served(live, page) -> None:  # noqa: ANN001
    registry = live.services.registry
    registry.save(SourceRecord(source_id="aussen-00000000", path="/etc/hostname", file_hash="x", title="Außerhalb"))
    try:
        assert page.request.get(f"{live.url}/quellen/aussen-00000000/datei").status == 404
    finally:
        registry.remove("aussen-00000000")
    assert page.request.get(f"{live.url}/quellen/gibt-es-nicht/datei").status == 404
    assert page.request.get(f"{live.url}/quellen/..%2F..%2Fetc%2Fhostname/datei").status == 404
    assert page.request.get(f"{live.url}/static/..%2F..%2Fpyproject.toml").status == 404
    missing = page.request.get(f"{live.url}/quellen/gibt-es-nicht")
    assert missing.status == 404 and "Quelle nicht gefunden" in missing.text()
