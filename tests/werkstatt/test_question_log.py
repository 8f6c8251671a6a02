"""The question log: what public questions leave behind (and what not), retention, ratings, the switch, grouping,
the trainer routes and their protection."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect

from api.app import create_app
from retriever.models import Answer, PhaseTag
from services.question_groups import group_labels, pairwise_scores, split_dev_test, LabelledQuestion
from services.question_log import question_log
from tests.auth_support import key_headers, login

TRAINER_ROUTES = [
    ("POST", "/v1/dossiers"), ("GET", "/v1/questions"), ("GET", "/v1/questions/export.csv"),
    ("GET", "/v1/questions/unanswered"), ("GET", "/v1/questions/uncertain"), ("GET", "/v1/questions/topics"),
    ("GET", "/v1/questions/downvoted"),
]


@pytest.fixture
def client(trainer, fresh_state_database_url):  # noqa: ANN001, ANN201
    """The session's index with a fresh state database per test (so the log starts empty)."""
    services = trainer.services_with(database_url=fresh_state_database_url)
    with TestClient(create_app(services.settings, services)) as test_client:
        yield test_client


def _services(client: TestClient):  # noqa: ANN202
    return client.app.state.services


def test_a_public_question_is_logged_without_ip_cookie_key_or_conversation(client: TestClient) -> None:
    client.cookies.set("tracking", "abc")
    response = client.post("/v1/ask", json={"question": "Wie wird die Passantenbefragung vorbereitet?",
                                            "filters": {"type": ["article"]}})
    assert response.status_code == 200
    columns = {c["name"] for c in inspect(_services(client).database.engine).get_columns("question_log")}
    assert columns == {"id", "asked_at", "question", "phase", "abstained", "uncertain", "filters", "rating",
                       "comment", "embedding_model", "vector", "retrieved"}
    with _services(client).database.engine.connect() as db:
        row = db.execute(question_log.select()).mappings().one()
    assert row["question"] == "Wie wird die Passantenbefragung vorbereitet?"
    assert row["phase"] == "E" and row["abstained"] is False and '"types": ["article"]' in row["filters"]
    assert len(json.loads(row["retrieved"])) == 10  # what the question finds, for grouping
    stored = " ".join(str(value) for key, value in row.items() if key != "vector")
    assert "testclient" not in stored and "abc" not in stored and response.json()["conversation_id"] not in stored


def test_streamed_questions_are_logged_and_ratings_attach(client: TestClient) -> None:
    question = "Wer entscheidet über den Verfügungsfonds?"
    with client.stream("POST", "/v1/ask/stream", json={"question": question}) as response:
        assert "event: done" in response.read().decode()
    feedback = {"question": question, "answer": "…", "rating": "down", "comment": "Zu allgemein"}
    assert client.post("/v1/feedback", json=feedback).status_code == 201
    entry = _services(client).question_log.entries()[0]
    assert (entry.question, entry.phase, entry.rating, entry.comment) == (question, "T", "down", "Zu allgemein")


def test_answers_with_a_caution_are_logged_as_uncertain_asked_or_streamed(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = _services(client)
    monkeypatch.setattr(services.answerer, "caution_threshold", 1.0)  # every answer given is given with a caution
    asked = client.post("/v1/ask", json={"question": "Wie wird die Passantenbefragung vorbereitet?"}).json()
    assert asked["abstained"] is False and asked["uncertain"] is True
    with client.stream("POST", "/v1/ask/stream", json={"question": "Wer entscheidet über den Verfügungsfonds?"}) as s:
        assert '"uncertain": true' in s.read().decode()
    assert client.post("/v1/ask", json={"question": "Was kostet ein Flug zum Mond?"}).json()["abstained"] is True
    assert [(e.question, e.abstained, e.uncertain) for e in services.question_log.entries()] == [
        ("Was kostet ein Flug zum Mond?", True, False),
        ("Wer entscheidet über den Verfügungsfonds?", False, True),
        ("Wie wird die Passantenbefragung vorbereitet?", False, True)]


def test_switched_off_nothing_is_logged(trainer, fresh_state_database_url) -> None:  # noqa: ANN001
    services = trainer.services_with(database_url=fresh_state_database_url, question_log=False)
    with TestClient(create_app(services.settings, services)) as test_client:
        assert test_client.post("/v1/ask", json={"question": "Was kostet das WLAN?"}).status_code == 200
    assert services.question_log.count() == 0


def test_retention_deletes_old_rows(client: TestClient) -> None:
    log = _services(client).question_log
    now = datetime.now(timezone.utc)
    answer = Answer("q", "a", [], abstained=True)
    log.record("Uralte Frage", answer, asked_at=now - timedelta(days=181))
    log.record("Fast abgelaufen", answer, asked_at=now - timedelta(days=179))
    assert log.count() == 1  # the write deleted the expired row
    assert [e.question for e in log.entries()] == ["Fast abgelaufen"]
    log.retention_days = 30
    assert log.expire() == 1 and log.count() == 0


def test_grouping_puts_paraphrases_together() -> None:
    vectors = np.array([[1, 0, 0], [0.98, 0.2, 0], [0, 1, 0], [0.05, 0.99, 0.05], [0, 0, 1]], dtype=np.float32)
    labels = group_labels(vectors, threshold=0.1)
    assert labels[0] == labels[1] and labels[2] == labels[3] and len(set(labels)) == 3
    assert pairwise_scores(["a", "a", "b", "b", "c"], labels) == (1.0, 1.0, 1.0)
    assert pairwise_scores(["a", "a", "b", "b", "c"], [0, 0, 0, 0, 0]) == (0.2, 1.0, pytest.approx(1 / 3))


def test_dev_and_test_splits_share_no_group() -> None:
    items = [LabelledQuestion(group, f"{group}{i}") for group in "abcdef" for i in range(3)]
    dev, test = split_dev_test(items)
    assert {i.group for i in dev} == {"a", "c", "e"} and {i.group for i in test} == {"b", "d", "f"}


def test_trainer_views_group_unanswered_questions_and_export_csv(client: TestClient) -> None:
    log = _services(client).question_log
    abstained = Answer("q", "a", [], abstained=True)
    answered = Answer("q", "a", [], abstained=False, phase=PhaseTag("K", "Konzeption", ""))
    for question in ("Gibt es Zuschüsse für Lastenräder?", "Gibt es Zuschüsse für Lastenräder?",
                     "Wie hoch ist die Grundsteuer in Lindenau?"):
        log.record(question, abstained, vector=log.embeddings.embed_queries([question])[0])
    log.record("Wie wird das WLAN finanziert?", answered)
    headers = key_headers(client, "trainer")
    groups = client.get("/v1/questions/unanswered", headers=headers).json()["groups"]
    assert [(g["count"], g["example"]) for g in groups] == [(2, "Gibt es Zuschüsse für Lastenräder?"),
                                                           (1, "Wie hoch ist die Grundsteuer in Lindenau?")]
    months = client.get("/v1/questions/topics", headers=headers).json()["months"]
    assert {(m["phase"], m["questions"]) for m in months} == {("K", 1), ("ohne", 3)}
    listed = client.get("/v1/questions", params={"abstained": "false"}, headers=headers).json()["questions"]
    assert [q["question"] for q in listed] == ["Wie wird das WLAN finanziert?"]
    response = client.get("/v1/questions/export.csv", params={"phase": "K"}, headers=headers)
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:4] == ["Zeit (UTC)", "Frage", "Phase", "Unbeantwortet"]
    assert rows[1][1:4] == ["Wie wird das WLAN finanziert?", "K", "nein"] and len(rows) == 2


def test_answers_given_with_reservation_are_logged_listed_and_exported_as_such(client: TestClient) -> None:
    log = _services(client).question_log
    phase = PhaseTag("K", "Konzeption", "")
    log.record("Wie viel kostet ein Access Point?", Answer("q", "a", [], abstained=False, phase=phase))
    log.record("Wer wartet das WLAN nachts?", Answer("q", "a", [], abstained=False, phase=phase, uncertain=True))
    log.record("Gibt es Zuschüsse für Lastenräder?", Answer("q", "a", [], abstained=True, uncertain=True))
    assert [(e.question, e.uncertain) for e in log.entries()] == [
        ("Gibt es Zuschüsse für Lastenräder?", False),  # an abstention is never "with reservation"
        ("Wer wartet das WLAN nachts?", True), ("Wie viel kostet ein Access Point?", False)]
    assert [e.question for e in log.entries(uncertain=True)] == ["Wer wartet das WLAN nachts?"]
    assert [e.question for e in log.vectors(uncertain=False)[0]] == ["Wie viel kostet ein Access Point?",
                                                                      "Gibt es Zuschüsse für Lastenräder?"]

    assert client.get("/v1/questions", params={"uncertain": "true"}).status_code == 401
    assert client.get("/v1/questions/export.csv", params={"uncertain": "true"}).status_code == 401
    headers = key_headers(client, "trainer")
    listed = client.get("/v1/questions", params={"uncertain": "true"}, headers=headers).json()["questions"]
    assert [(q["question"], q["abstained"], q["uncertain"]) for q in listed] == [
        ("Wer wartet das WLAN nachts?", False, True)]
    response = client.get("/v1/questions/export.csv", headers=headers)
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][3:5] == ["Unbeantwortet", "Mit Vorbehalt"]
    assert [(row[1], row[3], row[4]) for row in rows[1:]] == [("Gibt es Zuschüsse für Lastenräder?", "ja", "nein"),
                                                              ("Wer wartet das WLAN nachts?", "nein", "ja"),
                                                              ("Wie viel kostet ein Access Point?", "nein", "nein")]
    only = client.get("/v1/questions/export.csv", params={"uncertain": "true"}, headers=headers)
    assert [row[1] for row in csv.reader(io.StringIO(only.content.decode("utf-8-sig")), delimiter=";")][1:] == [
        "Wer wartet das WLAN nachts?"]


def test_public_and_ask_keys_are_refused_on_every_trainer_route(client: TestClient) -> None:
    for method, path in TRAINER_ROUTES:
        body = {"json": {"topic": "WLAN"}} if method == "POST" else {}
        assert client.request(method, path, **body).status_code == 401, path
        assert client.request(method, path, headers=key_headers(client, "ask,search"), **body).status_code == 403
        assert client.request(method, path, headers=key_headers(client, "trainer"), **body).status_code == 200


def test_a_logged_in_trainer_needs_the_csrf_token_for_dossiers(client: TestClient) -> None:
    csrf = login(client, "trainer")
    assert client.post("/v1/dossiers", json={"topic": "WLAN"}).status_code == 403
    assert client.post("/v1/dossiers", json={"topic": "WLAN"}, headers={"X-CSRF-Token": csrf}).status_code == 200
    assert client.get("/v1/questions").status_code == 200


def test_werkstatt_page_needs_a_trainer_login_and_carries_the_csrf_token(client: TestClient) -> None:
    response = client.get("/werkstatt", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/anmelden?next=/werkstatt"
    csrf = login(client, "trainer")
    page = client.get("/werkstatt")
    assert page.status_code == 200 and f'<meta name="csrf-token" content="{csrf}">' in page.text
    assert "nach 180 Tagen gelöscht" in page.text and '<script type="module" src="/static/werkstatt.js">' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_labelled_set_and_its_evaluation(trainer) -> None:  # noqa: ANN001
    from pathlib import Path

    from services.question_groups import evaluate_grouping, load_labelled

    items = load_labelled(Path(__file__).resolve().parents[2] / "eval" / "question_groups")
    groups = {item.group for item in items}
    assert len(items) >= 80 and len(groups) >= 20 and len(set(i.question for i in items)) == len(items)
    dev, test = evaluate_grouping(items, trainer.services.embeddings, trainer.services.search)
    assert (dev.questions, dev.groups, test.questions, test.groups) == (48, 12, 48, 12)
    assert test.threshold == dev.threshold and 0 <= test.f1 <= 1
    assert all(len(item.retrieved) == 10 for item in items)


def test_an_unusable_state_database_costs_the_log_not_the_answer(client: TestClient, monkeypatch) -> None:  # noqa: ANN001
    from services.container import Services

    def unusable(self) -> None:  # noqa: ANN001
        raise RuntimeError("Die Zustandsdatenbank ist nicht erreichbar")

    monkeypatch.setattr(Services, "question_log", property(unusable))
    response = client.post("/v1/ask", json={"question": "Was kostet das WLAN?"})
    assert response.status_code == 200 and response.json()["answer"]


def test_questions_answered_with_a_caution_are_grouped_apart_from_the_unanswered(client: TestClient) -> None:
    log = _services(client).question_log
    phase = PhaseTag("K", "Konzeption", "")
    cautioned = Answer("q", "a", [], abstained=False, phase=phase, uncertain=True)
    for question in ("Wer wartet das WLAN nachts?", "Wer wartet das WLAN nachts?", "Was kostet ein Parkhaus-Sensor?"):
        log.record(question, cautioned, vector=log.embeddings.embed_queries([question])[0])
    log.record("Gibt es Zuschüsse für Lastenräder?", Answer("q", "a", [], abstained=True))
    log.record("Wie wird das WLAN finanziert?", Answer("q", "a", [], abstained=False, phase=phase))
    assert client.get("/v1/questions/uncertain").status_code == 401
    headers = key_headers(client, "trainer")
    groups = client.get("/v1/questions/uncertain", headers=headers).json()["groups"]
    assert [(g["count"], g["example"]) for g in groups] == [(2, "Wer wartet das WLAN nachts?"),
                                                           (1, "Was kostet ein Parkhaus-Sensor?")]
    unanswered = client.get("/v1/questions/unanswered", headers=headers).json()["groups"]
    assert [g["example"] for g in unanswered] == ["Gibt es Zuschüsse für Lastenräder?"]
