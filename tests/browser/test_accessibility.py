"""Automated WCAG 2.1 A/AA audit (axe-core) of the chat, an answer with citations and feedback form, the source
view and the widget panel. axe-core comes with the `axe-playwright-python` package (dev extra)."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.browser.conftest import PHONE
from tests.browser.support import Q_PDF, Q_UNRELATED, Q_WEBTALK, ask, last_answer

pytestmark = pytest.mark.browser

WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


def audit(page, where: str) -> None:  # noqa: ANN001
    results = Axe().run(page, options=WCAG)
    problems = [
        f"{v['id']} ({v['impact']}): {v['help']} – " + "; ".join(str(n["target"]) for n in v["nodes"][:4])
        for v in results.response["violations"]
    ]
    assert not problems, f"{where}:\n" + "\n".join(problems)


def test_chat_meets_wcag_aa(live, page) -> None:  # noqa: ANN001
    page.goto(live.url + "/")
    audit(page, "Leerer Chat")
    ask(page, Q_PDF)
    ask(page, Q_UNRELATED)  # abstention with "Nächstliegende Quellen"
    last_answer(page).get_by_role("button", name="Nein, nicht hilfreich").click()
    page.locator("label.sr-chip", has_text="Konzeption").click()
    audit(page, "Chat mit Antworten, Quellen und Feedback-Formular")
    page.set_viewport_size(PHONE)
    audit(page, "Chat auf Telefonbreite")


def test_source_view_meets_wcag_aa(live, page) -> None:  # noqa: ANN001
    citation = page.request.post(f"{live.url}/v1/ask", data={"question": Q_WEBTALK}).json()["citations"][0]
    page.goto(f"{live.url}/quellen/{citation['source_id']}?t={int(citation['start'])}")
    audit(page, "Quellenansicht (Transkript)")


def test_widget_meets_wcag_aa(live, page) -> None:  # noqa: ANN001
    page.goto(live.allowed_page.url + "/")
    page.locator(".sr-launcher").click()
    panel = page.get_by_role("dialog", name="Fragen an die Akademie")
    expect(panel.get_by_label("Ihre Frage")).to_be_focused()
    ask(page, Q_PDF, scope=panel)
    # The host page's own (deliberately ugly) styles are not ours to judge: audit only the widget.
    results = Axe().run(page, context={"include": [["[data-stadtretter-widget]"]]}, options=WCAG)
    problems = [f"{v['id']}: {v['help']} – {[n['target'] for n in v['nodes'][:4]]}" for v in results.response["violations"]]
    assert not problems, "\n".join(problems)
