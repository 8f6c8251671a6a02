"""POST /v1/ask (JSON) with a language model behind a real OpenAI-compatible HTTP server."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.store import StoreError
from tests.llm_fake import (
    FakeLLM,
    Reply,
    llm_settings,
    make_services,
)

QUESTION = "Wie wird der digitale Stadtgutschein finanziert?"


def _client(services) -> TestClient:  # noqa: ANN001
    return TestClient(create_app(services=services))


def test_llm_answer_with_verified_citations(data_dir, fake_llm: FakeLLM) -> None:
    services = make_services(data_dir, **llm_settings(fake_llm))
    fake_llm.script("Händler zahlen Beiträge [2] und die Stadt gibt einen Zuschuss [2]. Bund [6].")
    with _client(services) as client:
        response = client.post("/v1/ask", json={"question": QUESTION})
    assert response.status_code == 200
    body = response.json()
    assert body["mode"] == "llm" and body["abstained"] is False and body["notice"] is None
    assert body["answer"] == "Händler zahlen Beiträge [1] und die Stadt gibt einen Zuschuss [1]. Bund."
    assert body["verification"] == {"markers_checked": 3, "markers_removed": 1, "invalid_markers": [6], "uncited": False}
    assert [c["n"] for c in body["citations"]] == [1] and body["citations"][0]["snippet"]
    assert len(body["conversation_id"]) == 32 and body["query"] == QUESTION
    system = fake_llm.system_prompt()
    assert "nummerierten Quellen" in system and f"Frage: {QUESTION}" in fake_llm.last_user()
    assert '<quelle nr="1"' in fake_llm.last_user()


@pytest.mark.parametrize("reply", [Reply(status=500), Reply(status=429), Reply("zu spät [1].", delay=1.5)],
                         ids=["http500", "http429", "timeout"])
def test_model_failures_give_the_extractive_answer_never_a_500(data_dir, fake_llm: FakeLLM, reply: Reply) -> None:
    services = make_services(data_dir, **llm_settings(fake_llm, llm_timeout_seconds=0.4))
    fake_llm.script(reply)
    with _client(services) as client:
        response = client.post("/v1/ask", json={"question": QUESTION})
    assert response.status_code == 200
    body = response.json()
    assert body["notice"] == ("Hinweis: Das Sprachmodell war gerade nicht erreichbar. "
                              "Diese Antwort wurde deshalb direkt aus den Quellen zusammengestellt.")
    assert body["mode"] == "extractive" and "Zuschuss der Stadt" in body["answer"] and body["citations"]


def test_history_and_conversation_reach_the_model(data_dir, fake_llm: FakeLLM) -> None:
    services = make_services(data_dir, **llm_settings(fake_llm))
    history = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": "Über Beiträge [1]."}]
    fake_llm.script("Wie hoch ist der Händlerbeitrag für den Stadtgutschein?", "Er beträgt 120 Euro im Jahr [1].")
    with _client(services) as client:
        response = client.post("/v1/ask", json={"question": "Und wie viel zahlt ein Händler?", "history": history})
        body = response.json()
        assert body["query"] == "Wie hoch ist der Händlerbeitrag für den Stadtgutschein?"
        messages = fake_llm.messages()
        assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
        assert messages[2]["content"] == "Über Beiträge."  # old markers are not shown to the model

        # the server kept the conversation: the next follow-up needs only the id
        fake_llm.reset()
        fake_llm.script("Wie lange dauerte die Einführung des Stadtgutscheins?", "Sechs Monate [1].")
        follow = client.post("/v1/ask", json={"question": "Wie lange dauerte das?",
                                              "conversation_id": body["conversation_id"]}).json()
    assert follow["conversation_id"] == body["conversation_id"]
    assert "Nutzer: Und wie viel zahlt ein Händler?" in fake_llm.requests[0]["messages"][-1]["content"]
    assert follow["answer"] == "Sechs Monate [1]." and follow["query"].startswith("Wie lange dauerte die Einführung")


def test_store_errors_are_503_with_a_german_message(data_dir, monkeypatch: pytest.MonkeyPatch) -> None:
    services = make_services(data_dir)

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise StoreError("Chroma unter data/chroma ist nicht erreichbar: kaputt")

    with _client(services) as client:
        monkeypatch.setattr(services.search, "search", broken)
        response = client.post("/v1/ask", json={"question": QUESTION})
    assert response.status_code == 503 and "nicht erreichbar" in response.json()["detail"]
