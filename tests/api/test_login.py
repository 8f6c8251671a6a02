"""Browser login, session cookie, logout, CSRF, login throttling, GET /v1/me and the key administration API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.auth_support import PASSWORD, add_user, auth_client, auth_settings, key_headers, login


def form_token(client: TestClient, next_path: str = "/") -> str:
    page = client.get("/anmelden", params={"next": next_path})
    assert page.status_code == 200
    return re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)


def form_login(client: TestClient, name: str, password: str, next_path: str = "/"):  # noqa: ANN201
    data = {"name": name, "password": password, "form_token": form_token(client, next_path), "next": next_path}
    return client.post("/anmelden", data=data, follow_redirects=False)


@pytest.fixture
def client(tmp_path: Path):
    with auth_client(tmp_path, login_attempts_per_account=3, login_attempts_per_client=5) as test_client:
        yield test_client


def test_login_page_is_german_accessible_and_safe(client: TestClient) -> None:
    page = client.get("/anmelden")
    assert page.status_code == 200 and '<html lang="de">' in page.text
    assert '<label for="name">Benutzername</label>' in page.text and 'autocomplete="current-password"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/auth.js").status_code == 200 and client.get("/static/auth.css").status_code == 200


def test_login_sets_a_hardened_session_cookie_and_redirects_to_next(client: TestClient) -> None:
    name = add_user(client, "trainer")
    response = form_login(client, name, PASSWORD, next_path="/v1/feedback")
    assert response.status_code == 303 and response.headers["location"] == "/v1/feedback"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("stadtretter_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=43200" in cookie
    assert "Secure" not in cookie  # development; production: see test_production_cookie_is_secure
    me = client.get("/v1/me").json()
    assert me["authenticated"] and me["name"] == name and me["role"] == "trainer" and me["csrf_token"]
    assert me["role_label"] == "Trainer*in"
    assert client.get("/v1/feedback").status_code == 200
    assert client.get("/v1/admin/keys").status_code == 403
    assert "angemeldet als" in client.get("/anmelden").text


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"])
def test_next_never_leaves_the_site(client: TestClient, target: str) -> None:
    name = add_user(client, "admin")
    assert form_login(client, name, PASSWORD, next_path=target).headers["location"] == "/"


def test_wrong_password_or_unknown_name_is_one_german_message(client: TestClient) -> None:
    name = add_user(client, "admin")
    for attempt in (form_login(client, name, "falsch-falsch-falsch"), form_login(client, "niemand", PASSWORD)):
        assert attempt.status_code == 401 and "Benutzername oder Passwort ist falsch." in attempt.text
        assert 'aria-invalid="true"' in attempt.text
        assert "stadtretter_session" not in attempt.headers.get("set-cookie", "")
    assert client.get("/v1/me").json()["authenticated"] is False


def test_login_without_the_form_token_is_refused(client: TestClient) -> None:
    name = add_user(client, "admin")
    forged = client.post("/anmelden", data={"name": name, "password": PASSWORD, "form_token": "geraten"},
                         follow_redirects=False)
    assert forged.status_code == 403 and "abgelaufen" in forged.text
    assert client.get("/v1/me").json()["authenticated"] is False


def test_failed_logins_are_throttled_per_account(client: TestClient) -> None:
    name = add_user(client, "admin")
    for _ in range(3):
        assert form_login(client, name, "falsch-falsch-falsch").status_code == 401
    blocked = form_login(client, name, PASSWORD)  # even the right password waits now
    assert blocked.status_code == 429 and "Zu viele fehlgeschlagene Anmeldeversuche" in blocked.text
    assert 60 <= int(blocked.headers["retry-after"]) <= 15 * 60
    other = add_user(client, "trainer")
    assert form_login(client, other, PASSWORD).status_code == 303  # another account is not affected


def test_failed_logins_are_throttled_per_client(client: TestClient) -> None:
    for number in range(5):
        assert form_login(client, f"raten{number}", "falsch-falsch-falsch").status_code == 401
    name = add_user(client, "admin")
    assert form_login(client, name, PASSWORD).status_code == 429


def test_a_success_clears_the_account_counter(client: TestClient) -> None:
    name = add_user(client, "admin")
    for _ in range(2):
        form_login(client, name, "falsch-falsch-falsch")
    assert form_login(client, name, PASSWORD).status_code == 303
    client.cookies.clear()
    for _ in range(2):
        assert form_login(client, name, "falsch-falsch-falsch").status_code == 401
    assert form_login(client, name, PASSWORD).status_code == 303


def test_logout_needs_the_csrf_token_and_ends_the_session(client: TestClient) -> None:
    name = add_user(client, "admin")
    form_login(client, name, PASSWORD)
    cookie = client.cookies.get("stadtretter_session")
    csrf = client.get("/v1/me").json()["csrf_token"]
    assert client.post("/abmelden", follow_redirects=False).status_code == 403
    out = client.post("/abmelden", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/anmelden?abgemeldet=1"
    assert "Sie sind abgemeldet." in client.get("/anmelden?abgemeldet=1").text
    client.cookies.set("stadtretter_session", cookie)  # the old cookie is dead on the server too
    assert client.get("/v1/me").json()["authenticated"] is False


def test_forged_or_tampered_cookies_count_as_anonymous(client: TestClient) -> None:
    login(client, "admin")
    cookie = client.cookies.get("stadtretter_session")
    client.cookies.set("stadtretter_session", cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB"))
    assert client.get("/v1/me").json()["authenticated"] is False
    assert client.get("/v1/admin/keys").status_code == 401


def test_production_cookie_is_secure(tmp_path: Path) -> None:
    settings = {"environment": "production", "session_secret": "s" * 40, "allowed_origins": ["https://a.example"]}
    with pytest.raises(Exception, match="Administrator-Konto"):
        auth_client(tmp_path, **settings)
    from core.database import Database
    from services.accounts import AccountService
    from datetime import timedelta

    database = Database(auth_settings(tmp_path).state_database_url)  # the test's state database
    database.upgrade()
    AccountService(database, timedelta(hours=1)).add("chefin", "admin", PASSWORD)
    database.dispose()
    with auth_client(tmp_path, **settings) as client:
        client.base_url = "https://testserver"  # Secure cookies travel over https only
        response = form_login(client, "chefin", PASSWORD)
        cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("stadtretter_session="))
        assert "Secure" in cookie


def test_me_for_anonymous_and_keys(client: TestClient) -> None:
    anonymous = client.get("/v1/me").json()
    assert anonymous == {"authenticated": False, "kind": "anonymous", "name": "Öffentlichkeit", "role": None,
                         "role_label": None, "scopes": [], "csrf_token": None, "public_access": True}
    keyed = client.get("/v1/me", headers=key_headers(client, "ask")).json()
    assert keyed["kind"] == "key" and keyed["scopes"] == ["ask"] and keyed["csrf_token"] is None


def test_admin_manages_keys_over_the_api_with_csrf(client: TestClient) -> None:
    csrf = login(client, "admin")
    assert client.post("/v1/admin/keys", json={"name": "site", "scopes": ["ask"]}).status_code == 403  # no token
    headers = {"X-CSRF-Token": csrf}
    created = client.post("/v1/admin/keys", json={"name": "Akademie-Website", "scopes": ["ask", "search"]},
                          headers=headers)
    assert created.status_code == 201
    key = created.json()
    assert key["key"].startswith("sr_") and key["prefix"] == key["key"][:10]
    listing = client.get("/v1/admin/keys").json()
    assert [k["name"] for k in listing["keys"]] == ["Akademie-Website"] and "key" not in listing["keys"][0]
    assert set(listing["scopes"]) == {"ask", "search", "trainer", "admin"}
    used = client.post("/v1/search", json={"query": "WLAN"}, headers={"Authorization": f"Bearer {key['key']}"})
    assert used.status_code == 200
    assert client.get("/v1/admin/keys").json()["keys"][0]["last_used_at"] is not None
    duplicate = client.post("/v1/admin/keys", json={"name": "Akademie-Website", "scopes": ["ask"]}, headers=headers)
    assert duplicate.status_code == 409 and "gibt es schon" in duplicate.json()["detail"]
    bad = client.post("/v1/admin/keys", json={"name": "x", "scopes": ["root"]}, headers=headers)
    assert bad.status_code == 422 and "unbekannt root" in bad.json()["detail"][0]["msg"]  # shaped like any 422
    assert client.delete(f"/v1/admin/keys/{key['id']}", headers=headers).status_code == 200
    assert client.delete(f"/v1/admin/keys/{key['id']}", headers=headers).status_code == 404
    revoked = client.post("/v1/search", json={"query": "x"}, headers={"Authorization": f"Bearer {key['key']}"})
    assert revoked.status_code == 401
    assert revoked.json()["detail"] == "Der API-Schlüssel ist ungültig oder wurde widerrufen."


def test_an_admin_key_needs_no_csrf_token(client: TestClient) -> None:
    admin = key_headers(client, "admin")
    created = client.post("/v1/admin/keys", json={"name": "cms", "scopes": ["search"]}, headers=admin)
    assert created.status_code == 201


def test_the_chat_page_carries_the_csrf_token_of_a_login_in_a_closed_group(tmp_path: Path) -> None:
    with auth_client(tmp_path, public_access=False) as client:
        assert 'name="csrf-token"' not in client.get("/").text
        assert client.post("/v1/ask", json={"question": "Was kostet WLAN?"}).status_code == 401
        csrf = login(client, "trainer")
        assert f'<meta name="csrf-token" content="{csrf}">' in client.get("/").text
        asked = client.post("/v1/ask", json={"question": "Was kostet WLAN?"}, headers={"X-CSRF-Token": csrf})
        assert asked.status_code == 200
