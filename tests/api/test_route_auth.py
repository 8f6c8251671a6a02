"""Every route refuses the unauthenticated unless it is in an explicit public set. The routes are enumerated from
the app (the OpenAPI schema plus the pages outside it), so a route added later without a guard fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.routing import Mount

from api.auth import AdminPageDep, TrainerPageDep
from tests.auth_support import auth_client, key_headers, login

# Answer without credentials whatever STADTRETTER_PUBLIC_ACCESS says.
ALWAYS_PUBLIC = {
    ("GET", "/"), ("GET", "/widget.js"), ("GET", "/healthz"), ("GET", "/v1/vocabulary"),
    ("GET", "/docs"), ("GET", "/docs/oauth2-redirect"), ("GET", "/redoc"), ("GET", "/openapi.json"),
    ("GET", "/anmelden"), ("POST", "/anmelden"), ("POST", "/abmelden"), ("GET", "/v1/me"),
}
# Public while STADTRETTER_PUBLIC_ACCESS=true; with false they need a key with the scope.
PUBLIC_WITH_SCOPE = {
    ("POST", "/v1/ask"): "ask", ("POST", "/v1/ask/stream"): "ask", ("POST", "/v1/feedback"): "ask",
    ("POST", "/v1/search"): "search", ("GET", "/v1/sources"): "search", ("GET", "/v1/phases"): "search",
    ("GET", "/quellen/{source_id}"): "search", ("GET", "/quellen/{source_id}/datei"): "search",
}
PUBLIC_MOUNTS = {"/static"}
PAGE_STATUSES = {401, 403}


def _leaf_routes(routes: list) -> list:
    """Routes with their full path. FastAPI ≥ 0.165 keeps included routers as nodes whose
    effective_route_contexts() give the routes under their prefix."""
    leaves = []
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        leaves += list(contexts()) if contexts else [route]
    return leaves


def all_routes(client: TestClient) -> list[tuple[str, str, bool]]:
    """(method, path, in the OpenAPI schema) for every route of the app; mounts must be known public ones."""
    routes = []
    schema_paths = client.get("/openapi.json").json()["paths"]
    for path, operations in schema_paths.items():
        routes += [(method.upper(), path, True) for method in operations]
    for route in _leaf_routes(client.app.routes):
        mount = getattr(route, "starlette_route", route)
        if isinstance(mount, Mount):
            assert mount.path in PUBLIC_MOUNTS, f"unbekannter Mount {mount.path}"
            continue
        if not route.include_in_schema:
            routes += [(method, route.path, False) for method in sorted(route.methods or ()) if method != "HEAD"]
    return sorted(set(routes))


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    with auth_client(tmp_path_factory.mktemp("routes")) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def closed_client(tmp_path_factory: pytest.TempPathFactory):
    with auth_client(tmp_path_factory.mktemp("closed"), public_access=False) as test_client:
        yield test_client


def protected(client: TestClient) -> list[tuple[str, str, bool]]:
    public = ALWAYS_PUBLIC | set(PUBLIC_WITH_SCOPE)
    return [route for route in all_routes(client) if (route[0], route[1]) not in public]


def test_the_enumeration_sees_the_known_routes(client: TestClient) -> None:
    seen = {(method, path) for method, path, _ in all_routes(client)}
    assert {("POST", "/v1/ask"), ("GET", "/v1/feedback"), ("GET", "/quellen/{source_id}")} <= seen
    assert ("GET", "/v1/feedback") in {(m, p) for m, p, _ in protected(client)}


def test_no_route_outside_the_public_set_answers_without_credentials(client: TestClient) -> None:
    failures = []
    for method, path, in_schema in protected(client):
        response = client.request(method, concrete(path), follow_redirects=False)
        to_login = response.status_code == 303 and response.headers["location"].startswith("/anmelden")
        if response.status_code not in PAGE_STATUSES and not (to_login and not in_schema):
            failures.append(f"{method} {path}: {response.status_code}")
        if response.status_code == 401:
            assert response.json()["detail"].startswith("Anmeldung erforderlich")
    assert not failures, failures


def test_a_key_with_scope_ask_is_refused_on_trainer_and_admin_routes(client: TestClient) -> None:
    headers = key_headers(client, "ask,search")
    for method, path, _ in protected(client):
        response = client.request(method, concrete(path), headers=headers, follow_redirects=False)
        assert response.status_code == 403, f"{method} {path}: {response.status_code}"
        assert "Berechtigung" in response.json()["detail"]


def test_an_unknown_or_malformed_key_is_401_even_on_public_routes(client: TestClient) -> None:
    for authorization in ("Bearer sr_falsch", "Basic YW5uYTpwdw==", "Bearer "):
        response = client.get("/v1/sources", headers={"Authorization": authorization})
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        assert "Schlüssel" in response.json()["detail"] or "Bearer" in response.json()["detail"]


def test_trainer_key_reads_feedback_and_admin_routes_stay_closed_to_it(client: TestClient) -> None:
    trainer = key_headers(client, "trainer")
    assert client.get("/v1/feedback", headers=trainer).status_code == 200
    admin_only = [r for r in protected(client) if r[1].startswith("/v1/admin")]
    for method, path, _ in admin_only:
        assert client.request(method, concrete(path), headers=trainer).status_code == 403, path


def test_cookie_session_reads_feedback_but_writes_need_the_csrf_token(tmp_path: Path) -> None:
    with auth_client(tmp_path, public_access=False) as client:
        csrf = login(client, "trainer")
        assert client.get("/v1/feedback").status_code == 200
        body = {"question": "Wie?", "answer": "So.", "rating": "up"}
        refused = client.post("/v1/feedback", json=body)
        assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]
        assert client.post("/v1/feedback", json=body, headers={"X-CSRF-Token": csrf}).status_code == 201


class TestClosedCourseGroup:
    """STADTRETTER_PUBLIC_ACCESS=false: the public routes need a key with the right scope."""

    def test_public_routes_need_credentials(self, closed_client: TestClient) -> None:
        for (method, path), _scope in PUBLIC_WITH_SCOPE.items():
            response = closed_client.request(method, concrete(path), json={}, follow_redirects=False)
            if path.startswith("/quellen"):  # pages send the browser to the login
                assert response.status_code == 303 and response.headers["location"].startswith("/anmelden?next=")
            else:
                assert response.status_code == 401, f"{method} {path}: {response.status_code}"
        for method, path in (("GET", "/v1/vocabulary"), ("GET", "/healthz"), ("GET", "/")):
            assert closed_client.request(method, path).status_code == 200

    def test_each_scope_opens_only_its_routes(self, closed_client: TestClient) -> None:
        ask_only = key_headers(closed_client, "ask")
        search_only = key_headers(closed_client, "search")
        for (method, path), scope in PUBLIC_WITH_SCOPE.items():
            allowed, refused = (ask_only, search_only) if scope == "ask" else (search_only, ask_only)
            denied = closed_client.request(method, concrete(path), json={}, headers=refused)
            assert denied.status_code == 403 and scope in denied.json()["detail"], f"{method} {path}"
            passed = closed_client.request(method, concrete(path), json={}, headers=allowed)
            assert passed.status_code not in (401, 403), f"{method} {path}: {passed.status_code}"

    def test_a_search_key_finds_and_an_ask_key_asks(self, closed_client: TestClient) -> None:
        search = closed_client.post("/v1/search", json={"query": "WLAN"}, headers=key_headers(closed_client, "search"))
        assert search.status_code == 200 and search.json()["results"] == []
        ask = closed_client.post("/v1/ask", json={"question": "Was kostet WLAN?"},
                                 headers=key_headers(closed_client, "ask"))
        assert ask.status_code == 200 and ask.json()["abstained"] is True


def test_page_dependencies_send_browsers_to_the_login(tmp_path: Path) -> None:
    """How H15b's /verwaltung and H17's /werkstatt are guarded: AdminPageDep / TrainerPageDep."""
    with auth_client(tmp_path) as client:
        @client.app.get("/test-verwaltung", include_in_schema=False)
        def admin_page(principal: AdminPageDep) -> dict:
            return {"name": principal.name}

        @client.app.get("/test-werkstatt", include_in_schema=False)
        def trainer_page(principal: TrainerPageDep) -> dict:
            return {"name": principal.name}

        anonymous = client.get("/test-verwaltung?tab=schluessel", follow_redirects=False)
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == "/anmelden?next=/test-verwaltung%3Ftab%3Dschluessel"
        login(client, "trainer")
        assert client.get("/test-werkstatt").status_code == 200
        refused = client.get("/test-verwaltung")
        assert refused.status_code == 403 and "Administrator*in" in refused.json()["detail"]
