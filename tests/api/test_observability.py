"""What an operator sees: /metrics (content and protection), the JSON log line (fields, redaction), the request id
round trip (also in error bodies) and /readyz with its German details."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.observability import access_log
from core.settings import Settings
from services.container import Services
from tests.auth_support import auth_client, key_headers, login
from tests.helpers import HashEmbeddings

TOKEN = "metrik-token-123"
QUESTION = "Wer trägt die Kosten für das WLAN in Lindenfeld?"


def _client(settings: Settings, corpus: Path) -> TestClient:
    services = Services(settings, embeddings=HashEmbeddings(), phase_tagger=None)
    services.pipeline().run([corpus])
    return TestClient(create_app(settings, services))


@pytest.fixture
def settings(tmp_path: Path, tiny_corpus: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", corpus_dir=tiny_corpus, metrics_token=TOKEN)


@pytest.fixture
def client(settings: Settings, tiny_corpus: Path):
    with _client(settings, tiny_corpus) as test_client:
        yield test_client


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(record.getMessage()))


@pytest.fixture
def log_lines():
    handler = _Lines()
    access_log.addHandler(handler)
    yield handler.lines
    access_log.removeHandler(handler)


def _metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{{{wanted}}} nicht in den Metriken")


def test_metrics_refuse_without_or_with_a_wrong_token(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer falsch"}, {"Authorization": f"Basic {TOKEN}"}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["detail"] and response.headers["www-authenticate"] == "Bearer"
    assert "Metrik-Token" in client.get("/metrics").json()["detail"]


def test_metrics_for_admins_only_when_no_token_is_configured(tmp_path: Path) -> None:
    with auth_client(tmp_path) as client:
        assert "STADTRETTER_METRICS_TOKEN" in client.get("/metrics").json()["detail"]
        assert client.get("/metrics", headers=key_headers(client, "ask,search")).status_code == 403
        response = client.get("/metrics", headers=key_headers(client, "admin"))
        assert response.status_code == 200 and "stadtretter_index_chunks" in response.text
        login(client, "admin")
        assert client.get("/metrics").status_code == 200


def test_metrics_count_requests_stages_answers_and_index_size(client: TestClient) -> None:
    before = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    asked = lambda text: _metric(text, "stadtretter_http_requests_total", method="POST", route="/v1/ask",  # noqa: E731
                                 status="200") if 'route="/v1/ask",status="200"' in text else 0.0
    assert client.post("/v1/ask", json={"question": QUESTION}).status_code == 200
    assert client.post("/v1/ask", json={"question": "Wie viele Einhörner leben auf dem Mond?"}).status_code == 200
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert asked(text) - asked(before) == 2
    for stage_name in ("lexical_search", "dense_search", "fusion", "evidence_rerank", "sentence_selection"):
        assert _metric(text, "stadtretter_stage_seconds_count", stage=stage_name) >= 2
    assert 'stadtretter_http_request_duration_seconds_bucket{le="0.005",method="POST",route="/v1/ask"}' in text
    assert _metric(text, "stadtretter_index_chunks") == _metric(text, "stadtretter_lexical_index_chunks") > 0
    assert _metric(text, "stadtretter_index_sources") == 3
    assert _metric(text, "stadtretter_ingest_files_total", outcome="added") >= 3
    answers = [line for line in text.splitlines() if line.startswith('stadtretter_answers_total{mode="extractive"')]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in answers) >= 2


def test_metrics_show_queued_and_running_jobs_at_scrape_time(settings: Settings, tiny_corpus: Path) -> None:
    client = _client(settings, tiny_corpus)  # no lifespan: no worker takes the jobs away while this looks
    jobs = client.app.state.services.jobs
    scrape = lambda: client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text  # noqa: E731
    assert _metric(scrape(), "stadtretter_jobs", status="queued") == 0
    for _ in range(3):
        jobs.create("reindex", {})
    running = jobs.claim_next()
    text = scrape()
    assert _metric(text, "stadtretter_jobs", status="queued") == 2
    assert _metric(text, "stadtretter_jobs", status="running") == 1
    jobs.finish(running.id, {})
    assert jobs.claim_next() is not None
    text = scrape()
    assert _metric(text, "stadtretter_jobs", status="queued") == 1
    assert _metric(text, "stadtretter_jobs", status="running") == 1


def test_unknown_paths_share_one_route_label(client: TestClient) -> None:
    for path in ("/gibt-es-nicht-1", "/gibt-es-nicht-2", "/static/gibt-es-nicht-3.js"):
        assert client.get(path).status_code == 404
    assert client.get("/openapi.json").status_code == 200
    text = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert "gibt-es-nicht" not in text and 'route="/openapi.json",status="200"' in text
    assert _metric(text, "stadtretter_http_requests_total", method="GET", route="(unmatched)", status="404") >= 3


def test_log_line_has_the_fields_and_no_secrets_or_question(client: TestClient, log_lines: list[dict]) -> None:
    key = client.app.state.services.api_keys.create("protokoll-test", "ask").key
    secret_headers = {"Authorization": f"Bearer {key}", "Cookie": "session=keks-geheim",
                      "X-API-Key": "sk-geheim", "X-Request-ID": "bericht-42"}
    response = client.post("/v1/ask", json={"question": QUESTION}, headers=secret_headers)
    assert response.status_code == 200
    line = log_lines[-1]
    assert line["request_id"] == "bericht-42" and line["route"] == "/v1/ask" and line["status"] == 200
    assert line["method"] == "POST" and line["duration_ms"] > 0 and line["time"].endswith("+00:00")
    assert {"dense_search", "lexical_search", "fusion", "sentence_selection"} <= set(line["stages_ms"])
    raw = json.dumps(line, ensure_ascii=False)
    for secret in (key, "geheim", "keks", "Lindenfeld", "WLAN"):
        assert secret not in raw


def test_question_is_logged_only_when_enabled(settings: Settings, tiny_corpus: Path, log_lines: list[dict]) -> None:
    with _client(settings.model_copy(update={"log_questions": True}), tiny_corpus) as client:
        client.post("/v1/ask", json={"question": QUESTION})
        client.post("/v1/search", json={"query": "Lasersensoren"})
        client.get("/v1/phases")
    assert [line.get("question") for line in log_lines[-3:]] == [QUESTION, "Lasersensoren", None]


def test_streamed_answer_is_logged_once_with_its_stages(client: TestClient, log_lines: list[dict]) -> None:
    with client.stream("POST", "/v1/ask/stream", json={"question": QUESTION}) as response:
        events = "".join(response.iter_text())
    assert "event: done" in events and response.headers["x-request-id"]
    line = log_lines[-1]
    assert line["route"] == "/v1/ask/stream" and line["request_id"] == response.headers["x-request-id"]
    assert "sentence_selection" in line["stages_ms"]


@pytest.mark.parametrize("given", ["a" * 65, "zeile\numbruch", "<script>", ""])
def test_invalid_request_ids_are_replaced(client: TestClient, given: str) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": given} if "\n" not in given else {})
    returned = response.headers["x-request-id"]
    assert returned != given and len(returned) == 32


def test_request_id_is_in_error_bodies(client: TestClient) -> None:
    response = client.post("/v1/ask", json={"question": ""}, headers={"X-Request-ID": "fehler-7"})
    assert response.status_code == 422
    assert response.json()["request_id"] == "fehler-7" == response.headers["x-request-id"]
    response = client.get("/gibt-es-nicht", headers={"X-Request-ID": "fehler-8"})
    assert response.json() == {"detail": "Nicht gefunden", "request_id": "fehler-8"}


def test_unexpected_error_is_a_german_500_with_the_request_id(settings: Settings, tiny_corpus: Path,
                                                              log_lines: list[dict]) -> None:
    services = Services(settings, embeddings=HashEmbeddings(), phase_tagger=None)
    app = create_app(settings, services)

    @app.get("/kaputt")
    def broken() -> None:
        raise ZeroDivisionError("geheimes Innenleben")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/kaputt", headers={"X-Request-ID": "absturz-1"})
    assert response.status_code == 500 and response.headers["x-request-id"] == "absturz-1"
    body = response.json()
    assert body["request_id"] == "absturz-1" and "absturz-1" in body["detail"] and "Interner Fehler" in body["detail"]
    assert "Traceback" not in response.text and "geheimes" not in response.text
    assert log_lines[-1]["status"] == 500 and log_lines[-1]["request_id"] == "absturz-1"


def test_readyz_is_ready_with_german_details(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert [c["name"] for c in body["checks"]] == ["store", "model", "data_dir", "lexical_index", "database"]
    assert all(c["ok"] for c in body["checks"]) and "beschreibbar" in body["checks"][2]["detail"]


def test_a_new_instance_with_nothing_ingested_is_ready(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", corpus_dir=tmp_path / "leer", metrics_token=TOKEN)
    services = Services(settings, embeddings=HashEmbeddings(), phase_tagger=None)
    with TestClient(create_app(settings, services)) as client:
        response = client.get("/readyz")
    assert response.status_code == 200, response.text  # an admin imports the first sources into a running server
    assert "leer" in _check(response, "lexical_index")["detail"]


def _check(response, name: str) -> dict:  # noqa: ANN001
    return next(c for c in response.json()["checks"] if c["name"] == name)


def test_readyz_reports_a_lexical_index_out_of_step(client: TestClient, settings: Settings) -> None:
    services: Services = client.app.state.services
    stale_id = next(iter(services.store.ids_for_source(services.registry.all()[0].source_id)))
    services.store.delete([stale_id])  # the store changed, the lexical index was not synced
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["status"] == "not_ready"
    lexical = _check(response, "lexical_index")
    assert not lexical["ok"] and "weicht vom Store" in lexical["detail"]


def test_readyz_reports_a_data_dir_that_cannot_be_written(client: TestClient, tmp_path: Path) -> None:
    services: Services = client.app.state.services
    blocked = tmp_path / "kein-ordner"
    blocked.write_text("eine Datei, wo der Datenordner sein sollte")  # works as root too, unlike chmod
    services.settings = services.settings.model_copy(update={"data_dir": blocked})
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "nicht beschreibbar" in _check(response, "data_dir")["detail"]


def test_readyz_reports_an_unreachable_store(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", chroma_url="http://127.0.0.1:9", collection="weg")
    checks = {c.name: c for c in Services(settings, embeddings=HashEmbeddings(), phase_tagger=None).readiness()}
    assert not checks["store"].ok and "nicht erreichbar" in checks["store"].detail
    assert not checks["lexical_index"].ok and checks["model"].ok
