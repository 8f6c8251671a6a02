"""HTTP-level checks of the web endpoints and the security middleware (no browser needed, runs in milliseconds)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.security import RATE_LIMIT_MESSAGE, RateLimits
from core import vocabulary
from ingest.registry import SourceRecord
from tests.auth_support import key_headers

ALLOWED = "https://akademie.example"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from api.app import create_app
    from services.container import Services
    from core.settings import Settings
    from tests.helpers import HashEmbeddings

    base = tmp_path_factory.mktemp("webapi")
    (base / "corpus").mkdir()
    settings = Settings(_env_file=None, data_dir=base / "data", corpus_dir=base / "corpus", llm_backend="none",
                        allowed_origins=[ALLOWED], rate_limit_per_minute=2)  # fmt: skip
    with TestClient(create_app(settings, Services(settings, embeddings=HashEmbeddings()))) as test_client:
        yield test_client


def test_rate_limits_count_per_identity_and_say_when_to_retry(tmp_path) -> None:  # noqa: ANN001
    from core.settings import Settings

    limits = RateLimits(Settings(_env_file=None, data_dir=tmp_path, rate_limit_per_minute=2))
    assert limits.hit(limits.per_client, "a") is None and limits.hit(limits.per_client, "a") is None
    assert 55 < limits.hit(limits.per_client, "a") <= 60
    assert limits.hit(limits.per_client, "b") is None  # other client, own window
    assert limits.blocked(limits.per_client, "b") is None and limits.hit(limits.per_client, "b") is None
    assert limits.blocked(limits.per_client, "b") is not None
    limits.reset()
    assert limits.hit(limits.per_client, "a") is None


def test_pages_and_assets(client: TestClient) -> None:
    index = client.get("/")
    assert index.status_code == 200 and '<html lang="de">' in index.text
    assert "script-src 'self'" in index.headers["content-security-policy"]
    assert f"frame-ancestors 'self' {ALLOWED};" in index.headers["content-security-policy"]
    widget = client.get("/widget.js")
    assert widget.headers["content-type"].startswith("text/javascript")
    assert widget.headers["access-control-allow-origin"] == "*"  # public code; the API stays restricted
    for asset in ("app.js", "main.js", "sse.js", "format.js", "icons.js", "quelle.js", "styles.css"):
        assert client.get(f"/static/{asset}").status_code == 200, asset
    assert client.get("/static/index.html").status_code == 404  # only assets
    assert client.get("/static/../api/app.py").status_code == 404


def test_cors_only_for_allowed_origins(client: TestClient) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    ok = client.options("/v1/ask", headers={"Origin": ALLOWED, **preflight})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == ALLOWED
    refused = client.options("/v1/ask", headers={"Origin": "https://fremd.example", **preflight})
    assert "access-control-allow-origin" not in refused.headers
    sources = client.get("/v1/sources", headers={"Origin": "https://fremd.example"})
    assert "access-control-allow-origin" not in sources.headers


def test_cross_origin_post_refused(client: TestClient) -> None:
    response = client.post("/v1/feedback", headers={"Origin": "https://fremd.example"},
                           json={"question": "q", "answer": "a", "rating": "up"})  # fmt: skip
    assert response.status_code == 403 and "nicht freigegeben" in response.json()["detail"]
    own = client.post("/v1/feedback", headers={"Origin": "http://testserver"},
                      json={"question": "q", "answer": "a", "rating": "up"})  # fmt: skip
    assert own.status_code == 201


def test_feedback_validation_and_listing(client: TestClient) -> None:
    assert client.post("/v1/feedback", json={"question": "q", "answer": "a", "rating": "meh"}).status_code == 422
    saved = client.post("/v1/feedback", json={
        "question": "Wie finanziere ich WLAN?", "answer": "So. [1]", "rating": "down", "comment": "   ",
        "citations": [{"n": 1, "source_id": "x", "title": "T", "unknown": "dropped"}], "conversation_id": "c1",
    })  # fmt: skip
    assert saved.status_code == 201 and saved.json()["message"] == "Danke für Ihr Feedback!"
    trainer = key_headers(client, "trainer")
    listing = client.get("/v1/feedback", params={"limit": 1}, headers=trainer).json()
    assert listing["feedback"][0]["comment"] is None
    assert listing["feedback"][0]["citations"] == [{"n": 1, "source_id": "x", "title": "T", "type": None,
        "locator": None, "chunk_id": None, "url": None, "snippet": None}]  # fmt: skip
    assert len(listing["feedback"]) == 1 and listing["total"] >= 2
    up = client.get("/v1/feedback", params={"rating": "up"}, headers=trainer).json()
    assert up["feedback"][0]["rating"] == "up"
    # Participants and embedding sites may send feedback but not read it: reading needs the trainer role.
    assert client.get("/v1/feedback", headers={"Origin": ALLOWED}).status_code == 401
    assert client.get("/v1/feedback", headers=key_headers(client, "ask")).status_code == 403


def test_rate_limit(client: TestClient) -> None:
    client.app.state.rate_limiter.reset()
    statuses = []
    for _ in range(3):
        response = client.post("/v1/ask", json={"question": "Wie finanziere ich ein WLAN?"})
        statuses.append(response.status_code)
    assert 429 not in statuses[:2] and statuses[2] == 429
    assert response.json() == {"detail": RATE_LIMIT_MESSAGE}
    assert int(response.headers["retry-after"]) >= 1
    # Per client: another Origin (an allowed widget site) has its own window; CORS headers on the 429 too.
    other = client.post("/v1/ask", json={"question": "Wie finanziere ich ein WLAN?"}, headers={"Origin": ALLOWED})
    assert other.status_code != 429
    client.post("/v1/ask", json={"question": "x"}, headers={"Origin": ALLOWED})
    limited = client.post("/v1/ask", json={"question": "x"}, headers={"Origin": ALLOWED})
    assert limited.status_code == 429 and limited.headers["access-control-allow-origin"] == ALLOWED
    assert "retry-after" in limited.headers["access-control-expose-headers"].lower()
    # A Bearer key has its own, larger budget (the Akademie site asks for all its visitors from one address).
    keyed = client.post("/v1/ask", json={"question": "x"}, headers=key_headers(client, "ask"))
    assert keyed.status_code == 200
    # Search is limited like questions; reading endpoints are not limited.
    client.app.state.rate_limiter.reset()
    searches = [client.post("/v1/search", json={"query": "WLAN"}).status_code for _ in range(3)]
    assert searches == [200, 200, 429]
    assert client.get("/v1/sources").status_code == 200
    client.app.state.rate_limiter.reset()


def test_unknown_source(client: TestClient) -> None:
    page = client.get("/quellen/gibt-es-nicht")
    assert page.status_code == 404 and "Quelle nicht gefunden" in page.text and 'lang="de"' in page.text
    assert client.get("/quellen/gibt-es-nicht/datei").status_code == 404


def embedded_json(text: str, start: str, end: str) -> dict:
    return json.loads(text.split(start, 1)[1].split(end, 1)[0])


def test_vocabulary_is_embedded(client: TestClient) -> None:
    page = client.get("/").text
    embedded = embedded_json(page, '<script type="application/json" id="sr-vocabulary">', "</script>")
    assert embedded == vocabulary.as_dict()
    widget = client.get("/widget.js").text
    assert embedded_json(widget, "var vocabulary = ", ";\n") == vocabulary.as_dict()
    # The chat's modules have no copies of the labels.
    labels = [item["label"] for group in ("types", "phases") for item in vocabulary.as_dict()[group]]
    for asset in ("app.js", "views.js", "message-views.js", "format.js", "vocabulary.js"):
        code = client.get(f"/static/{asset}").text
        assert not [label for label in labels if f'"{label}"' in code or f"'{label}'" in code], asset


def test_assets_are_public_code(client: TestClient) -> None:
    for asset in ("app.js", "state.js", "api.js", "views.js", "feedback.js", "vocabulary.js", "styles.css"):
        response = client.get(f"/static/{asset}")
        assert response.status_code == 200, asset
        assert response.headers["access-control-allow-origin"] == "*"  # the widget imports them cross-origin
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-cache"
        expected = "text/css" if asset.endswith(".css") else "text/javascript"
        assert response.headers["content-type"].startswith(expected), asset
    assert client.get("/static/gibt-es-nicht.js").json() == {"detail": "Datei nicht gefunden"}


def test_source_template_escapes_and_labels() -> None:
    from api.routers.web import templates
    from services.source_view import Passage, TranscriptLine

    record = SourceRecord(source_id="q-1", path="x.md", file_hash="h", title='<script>alert("x")</script>',
                          author="A & B", phase=vocabulary.CROSS_PHASE,
                          url='https://example.org/?a=1&b="2"')  # fmt: skip
    passage = Passage(chunk_id="c1", target=True, section="<b>Teil</b>", start=5, time_range="00:05–00:09",
                      lines=[TranscriptLine("<i>Hallo</i>", speaker="Ina", time="00:05", target=True)])  # fmt: skip
    html = templates.get_template("source.html").render(
        title=record.title, record=record, date="01.02.2024", source_type="webtalk", is_pdf=False,
        is_transcript=True, has_target=True, passages=[passage],
    )  # fmt: skip
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "A &amp; B" in html and "&lt;b&gt;Teil&lt;/b&gt;" in html and "&lt;i&gt;Hallo&lt;/i&gt;" in html
    assert 'href="https://example.org/?a=1&amp;b=&#34;2&#34;"' in html
    # The cross-phase badge: no letter, the vocabulary's label.
    assert '<span class="sr-phase sr-phase-X"><span>EKT-Phase: Phasenübergreifend</span></span>' in html
    assert '<span class="sr-line-time">00:05</span> <strong class="sr-speaker">Ina:</strong>' in html
