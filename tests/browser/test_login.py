"""Login in a real Chromium: the form, a wrong password, the redirect back, the session cookie, logout; and the
page passes the WCAG 2.1 AA audit (axe-core)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_accessibility import audit

pytestmark = pytest.mark.browser

PASSWORD = "Browser-Test-Passwort"


def test_login_wrong_password_then_success_then_logout(live, page) -> None:  # noqa: ANN001
    if live.services.accounts.get("browser-admin") is None:
        live.services.accounts.add("browser-admin", "admin", PASSWORD)
    page.goto(f"{live.url}/anmelden?next=/v1/me")
    expect(page.get_by_role("heading", name="Anmelden")).to_be_visible()
    audit(page, "Anmeldeseite")

    page.get_by_label("Benutzername").fill("browser-admin")
    page.get_by_label("Passwort").fill("falsch-falsch-falsch")
    page.get_by_role("button", name="Anmelden").click()
    expect(page.get_by_role("alert")).to_have_text("Benutzername oder Passwort ist falsch.")
    expect(page.get_by_label("Benutzername")).to_have_value("browser-admin")
    audit(page, "Anmeldeseite mit Fehler")

    page.get_by_label("Passwort").fill(PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url(f"{live.url}/v1/me")
    me = page.request.get(f"{live.url}/v1/me").json()
    assert me["name"] == "browser-admin" and me["role"] == "admin" and me["csrf_token"]
    cookie = next(c for c in page.context.cookies() if c["name"] == "stadtretter_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    page.goto(f"{live.url}/anmelden")
    expect(page.get_by_text("Sie sind angemeldet als")).to_be_visible()
    page.get_by_role("button", name="Abmelden").click()
    expect(page.get_by_role("status")).to_have_text("Sie sind abgemeldet.")
    assert page.request.get(f"{live.url}/v1/me").json()["authenticated"] is False


def test_auth_js_sends_the_csrf_token(live, page) -> None:  # noqa: ANN001
    if live.services.accounts.get("browser-admin") is None:
        live.services.accounts.add("browser-admin", "admin", PASSWORD)
    page.goto(f"{live.url}/anmelden")
    page.get_by_label("Benutzername").fill("browser-admin")
    page.get_by_label("Passwort").fill(PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url(f"{live.url}/")
    statuses = page.evaluate("""async () => {
        const { authFetch } = await import("/static/auth.js");
        const created = await authFetch("/v1/admin/keys", { method: "POST", json: { name: "aus-dem-Browser",
            scopes: ["search"] } });
        const key = await created.json();
        const revoked = await authFetch(`/v1/admin/keys/${key.id}`, { method: "DELETE" });
        const bare = await fetch("/v1/admin/keys", { method: "POST", headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ name: "ohne-Token", scopes: ["search"] }) });
        return [created.status, revoked.status, bare.status];
    }""")
    assert statuses == [201, 200, 403]
