"""Page helpers shared by the browser tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import quote

from playwright.sync_api import Locator, Page, expect

ROOT = Path(__file__).resolve().parents[2]

Q_WLAN = "Wie wird das Innenstadt-WLAN finanziert?"
Q_PDF = "Welche Kennzahlen misst die Frequenzmessung?"
Q_WEBTALK = "Wie gelingt der Generationenwechsel im Handel?"
Q_UNRELATED = "Wie backe ich einen Käsekuchen mit Streuseln?"


def ask(page: Page, question: str, scope: Page | Locator | None = None) -> dict:
    """Type a question, press Enter, wait for the finished answer; return the request body that was sent."""
    scope = scope or page
    box = scope.get_by_label("Ihre Frage")
    box.fill(question)
    with page.expect_request(lambda r: r.url.endswith("/v1/ask") and r.method == "POST") as request:
        box.press("Enter")
    body = json.loads(request.value.post_data or "{}")
    wait_answer(scope)
    return body


def answers(scope: Page | Locator) -> Locator:
    return scope.locator("article.sr-msg-assistant")


def last_answer(scope: Page | Locator) -> Locator:
    return answers(scope).last


def wait_answer(scope: Page | Locator) -> Locator:
    answer = last_answer(scope)
    expect(answer).not_to_have_attribute("data-state", "streaming", timeout=20000)
    return answer


def expected_links(citation: dict) -> list[str]:
    """The hrefs a citation card must offer (the contract of the task)."""
    sid = quote(citation["source_id"])
    view = f"/quellen/{sid}?chunk={citation['chunk_id']}"
    if citation.get("page") is not None:
        return [f"/quellen/{sid}/datei#page={citation['page']}", view]
    if citation.get("start") is not None:
        return [f"/quellen/{sid}?t={int(citation['start'])}"]
    if citation.get("url"):
        return [citation["url"], view]
    return [view]


def card_hrefs(card: Locator, base: str = "") -> list[str]:
    hrefs = card.locator("a.sr-card-link").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    return [h[len(base):] if base and h.startswith(base) else h for h in hrefs]


def save_screenshot(page: Page, artifacts: Path, name: str, readme: bool = False) -> Path:
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path))
    if readme:
        docs = ROOT / "docs"
        docs.mkdir(exist_ok=True)
        shutil.copyfile(path, docs / "screenshot-chat.png")
    return path
