"""The web chat's labels and phase colours come from the server's vocabulary (core/vocabulary.py): embedded in the
page and in the widget script, applied as the stylesheet's custom properties (--sr-E, --sr-E-bg, --sr-E-text …)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, expect

from core import vocabulary
from tests.browser.support import Q_PDF, Q_WLAN, ask, last_answer

pytestmark = pytest.mark.browser

FILTER_PHASES = [p for p in vocabulary.as_dict()["phases"] if p["key"] != vocabulary.CROSS_PHASE]


def rgb(hex_colour: str) -> str:
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


def css(locator: Locator, prop: str) -> str:
    return locator.evaluate("(el, prop) => getComputedStyle(el).getPropertyValue(prop).trim()", prop)


def assert_phase_colours(app: Locator) -> None:
    """Every phase's three custom properties on the .sr-app element equal the vocabulary's colours."""
    for phase in vocabulary.as_dict()["phases"]:
        key = "X" if phase["key"] == vocabulary.CROSS_PHASE else phase["key"]
        colours = phase["colours"]
        actual = [css(app, f"--sr-{key}"), css(app, f"--sr-{key}-bg"), css(app, f"--sr-{key}-text")]
        assert actual == [colours["accent"], colours["background"], colours["text"]], key


def test_chat_page_labels_and_colours(live, page) -> None:  # noqa: ANN001
    page.goto(live.url + "/")
    assert_phase_colours(page.locator(".sr-app"))
    phase_chips = page.locator('fieldset[data-group="phase"] .sr-chip')
    expect(phase_chips).to_have_text(["Alle", *(f"{p['key']}{p['label']}" for p in FILTER_PHASES)])
    expect(page.locator('fieldset[data-group="type"] .sr-chip')).to_have_text(
        ["Alle", *(vocabulary.TYPE_LABELS[t] for t in vocabulary.SOURCE_TYPES)]
    )
    # The colours reach the rendered page: the letter of each phase chip, the badge of a cited passage.
    for phase in FILTER_PHASES:
        letter = page.locator(f".sr-chip-{phase['key']} .sr-phase-letter")
        assert css(letter, "background-color") == rgb(phase["colours"]["accent"])
    ask(page, Q_PDF)
    badge = last_answer(page).locator(".sr-card .sr-phase-E").first
    expect(badge).to_contain_text(vocabulary.PHASE_LABELS["E"])
    assert css(badge, "background-color") == rgb(vocabulary.PHASE_COLOURS["E"]["background"])
    assert css(badge, "color") == rgb(vocabulary.PHASE_COLOURS["E"]["text"])


def test_source_view_colours(live, page) -> None:  # noqa: ANN001
    citation = page.request.post(f"{live.url}/v1/ask", data={"question": Q_WLAN}).json()["citations"][0]
    page.goto(f"{live.url}/quellen/{citation['source_id']}")
    assert_phase_colours(page.locator(".sr-app"))
    badge = page.locator(".sr-source-meta .sr-phase-K")
    expect(badge).to_have_text("K EKT-Phase: Konzeption")
    assert css(badge, "background-color") == rgb(vocabulary.PHASE_COLOURS["K"]["background"])


def test_widget_labels_and_colours(live, page) -> None:  # noqa: ANN001
    page.goto(live.allowed_page.url + "/")
    page.locator(".sr-launcher").click()
    panel = page.get_by_role("dialog", name="Fragen an die Akademie")
    expect(panel.get_by_label("Ihre Frage")).to_be_visible()
    assert_phase_colours(panel.locator(".sr-app"))
    expect(panel.locator('fieldset[data-group="phase"] .sr-chip')).to_have_text(
        ["Alle", *(f"{p['key']}{p['label']}" for p in FILTER_PHASES)]
    )
