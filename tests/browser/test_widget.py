"""The embeddable widget on pages of other origins: works where the origin is allowed, refused elsewhere."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE
from tests.browser.support import Q_WLAN, ask, card_hrefs, last_answer, save_screenshot

pytestmark = pytest.mark.browser

TEXT_COLOUR = "rgb(27, 36, 48)"  # --sr-text; the host page forces red on everything


def test_widget_works_on_allowed_origin(live, page, artifacts) -> None:  # noqa: ANN001
    page.goto(live.allowed_page.url + "/")
    launcher = page.locator(".sr-launcher")  # inside the open shadow root
    expect(launcher).to_be_visible()
    expect(launcher).to_have_attribute("aria-expanded", "false")
    # Host-page CSS does not leak into the widget.
    assert launcher.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(13, 92, 143)"
    assert page.evaluate("getComputedStyle(document.querySelector('h1')).color") == "rgb(192, 0, 0)"

    launcher.click()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    panel = page.get_by_role("dialog", name="Fragen an die Akademie")
    expect(panel).to_be_visible()
    box = panel.get_by_label("Ihre Frage")
    expect(box).to_be_focused()
    expect(box).to_be_visible()  # the host page hides every textarea, but cannot reach this one
    assert box.evaluate("el => getComputedStyle(el).fontSize") == "16px"  # host sets html { font-size: 10px }
    expect(panel.locator(".sr-example")).to_have_count(4)

    body = ask(page, Q_WLAN, scope=panel)
    assert body["stream"] is True
    answer = last_answer(panel)
    expect(answer).to_have_attribute("data-state", "done")
    assert answer.locator(".sr-answer-text").evaluate("el => getComputedStyle(el).color") == TEXT_COLOUR
    card = answer.locator(".sr-card").first
    expect(card).to_contain_text("Innenstadt-WLAN finanzieren")
    hrefs = card_hrefs(card)
    assert any(h.startswith(f"{live.url}/quellen/") for h in hrefs), hrefs  # links go to the chat server
    save_screenshot(page, artifacts, "widget-desktop")

    # The conversation lives in the host page's storage, under the widget's own key.
    keys = page.evaluate("Object.keys(localStorage)")
    assert keys == [f"stadtretter-widget:v1:{live.url}"]

    # Escape closes the panel and returns focus to the button.
    box.press("Escape")
    expect(panel).to_be_hidden()
    expect(launcher).to_be_focused()


def test_widget_is_refused_on_other_origin(live, page) -> None:  # noqa: ANN001
    page.goto(live.refused_page.url + "/")
    page.locator(".sr-launcher").click()
    panel = page.get_by_role("dialog", name="Fragen an die Akademie")
    panel.get_by_label("Ihre Frage").fill(Q_WLAN)
    panel.get_by_label("Ihre Frage").press("Enter")
    answer = last_answer(panel)
    expect(answer).to_have_attribute("data-state", "error")
    expect(answer.get_by_role("alert")).to_contain_text("nicht freigeschaltet")
    expect(answer.locator(".sr-card")).to_have_count(0)

    # The browser refuses because the server sends no CORS headers for this origin ...
    refused = page.evaluate(
        """async (url) => {
            try { await fetch(url + '/v1/sources'); return 'gelesen'; } catch (e) { return 'verweigert'; }
        }""",
        live.url,
    )
    assert refused == "verweigert"
    preflight = page.request.fetch(f"{live.url}/v1/ask", method="OPTIONS", headers={
        "Origin": live.refused_page.url, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})  # fmt: skip
    assert "access-control-allow-origin" not in preflight.headers
    # ... and the server itself rejects a cross-origin POST from it (e.g. a form post without preflight).
    response = page.request.post(f"{live.url}/v1/ask", data={"question": Q_WLAN},
                                 headers={"Origin": live.refused_page.url})  # fmt: skip
    assert response.status == 403
    assert "nicht freigegeben" in response.json()["detail"]
    # The allowed origin gets its CORS headers, the app's own origin needs none.
    allowed = page.request.post(f"{live.url}/v1/ask", data={"question": Q_WLAN},
                                headers={"Origin": live.allowed_page.url})  # fmt: skip
    assert allowed.ok and allowed.headers["access-control-allow-origin"] == live.allowed_page.url
    own = page.request.post(f"{live.url}/v1/ask", data={"question": Q_WLAN}, headers={"Origin": live.url})
    assert own.ok


def test_widget_on_phone(live, browser, artifacts) -> None:  # noqa: ANN001
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="de-DE")
    page = context.new_page()
    try:
        page.goto(live.allowed_page.url + "/")
        page.locator(".sr-launcher").click()
        panel = page.get_by_role("dialog", name="Fragen an die Akademie")
        expect(panel).to_be_visible()
        box = panel.bounding_box()
        assert box and box["width"] == PHONE["width"] and box["height"] == PHONE["height"]  # full screen
        ask(page, Q_WLAN, scope=panel)
        save_screenshot(page, artifacts, "widget-phone")
        panel.get_by_role("button", name="Chat schließen").click()
        expect(panel).to_be_hidden()
        expect(page.locator(".sr-launcher")).to_be_visible()
    finally:
        context.close()
