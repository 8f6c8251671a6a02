"""Streaming answers: POST /v1/ask with "stream": true and POST /v1/ask/stream (Server-Sent Events)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.metrics import REGISTRY
from core.store import StoreError
from tests.llm_fake import (
    FakeLLM,
    FakeTagger,
    Reply,
    llm_settings,
    make_services,
    parse_sse,
)

QUESTION = "Wie wird der digitale Stadtgutschein finanziert?"


def _stream(services, path: str = "/v1/ask", **body) -> tuple[list[tuple[str, dict]], str]:  # noqa: ANN001, ANN003
    body.setdefault("question", QUESTION)
    if path == "/v1/ask":
        body.setdefault("stream", True)
    with TestClient(create_app(services=services)) as client:
        response = client.post(path, json=body)
    assert response.status_code == 200
    return parse_sse(response.text), response.headers["content-type"]


def _tokens(events: list[tuple[str, dict]]) -> str:
    return "".join(data["text"] for name, data in events if name == "token")


@pytest.mark.parametrize("path", ["/v1/ask", "/v1/ask/stream"])
def test_extractive_answer_streams_sentence_by_sentence(data_dir, path: str) -> None:
    services = make_services(data_dir)
    events, content_type = _stream(services, path)
    assert content_type.startswith("text/event-stream")
    names = [name for name, _ in events]
    assert names[0] == "meta" and names[-2:] == ["citations", "done"] and names.count("token") >= 2
    assert set(names[1:-2]) == {"token"}
    meta, done = events[0][1], events[-1][1]
    assert meta == {"query": QUESTION, "conversation_id": done["conversation_id"], "mode": "extractive"}
    assert _tokens(events) == done["answer"] and "[1]" in done["answer"]
    assert set(done) == {"answer", "abstained", "notice", "verification", "conversation_id", "highlights",
                         "answerability", "uncertain"}
    assert done["uncertain"] is False and done["notice"] is None
    citations = events[-2][1]["citations"]
    assert citations[0]["n"] == 1 and citations[0]["snippet"] and "locator" in citations[0]


def test_llm_answer_streams_tokens_with_checked_markers(data_dir, fake_llm: FakeLLM) -> None:
    services = make_services(data_dir, **llm_settings(fake_llm))
    fake_llm.script("Händler zahlen einen Jahresbeitrag [4]. Die Stadt gibt einen Zuschuss [1][4] [12].")
    events, _ = _stream(services)
    assert fake_llm.requests[0]["stream"] is True
    meta, done = events[0][1], events[-1][1]
    assert meta["mode"] == "llm"
    assert sum(1 for name, _ in events if name == "token") > 5
    assert _tokens(events) == done["answer"] == "Händler zahlen einen Jahresbeitrag [1]. Die Stadt gibt einen Zuschuss [2][1]."
    assert done["verification"] == {"markers_checked": 4, "markers_removed": 1, "invalid_markers": [12], "uncited": False}
    assert [c["n"] for c in events[-2][1]["citations"]] == [1, 2]


def test_model_error_streams_the_fallback_with_notice(data_dir, fake_llm: FakeLLM) -> None:
    services = make_services(data_dir, **llm_settings(fake_llm))
    fake_llm.script(Reply(status=500))
    events, _ = _stream(services)
    done = events[-1][1]
    assert events[-1][0] == "done" and done["notice"] and "Sprachmodell" in done["notice"]
    assert _tokens(events) == done["answer"] and "Zuschuss der Stadt" in done["answer"]


def test_stall_mid_answer_ends_with_the_fallback_in_done(data_dir, fake_llm: FakeLLM) -> None:
    services = make_services(data_dir, **llm_settings(fake_llm, llm_timeout_seconds=0.4))
    fake_llm.script(Reply(pieces=["Die Stadt ", "zahlt ", "mit [1]."], stall_after=2, stall=1.5))
    events, _ = _stream(services)
    done = events[-1][1]
    assert _tokens(events).startswith("Die Stadt") and done["notice"]
    assert done["answer"] != _tokens(events) and "Zuschuss der Stadt" in done["answer"]
    assert [name for name, _ in events][-2:] == ["citations", "done"]


def test_phase_event_when_a_tagger_is_available(data_dir) -> None:
    tagger = FakeTagger()
    services = make_services(data_dir, tagger=tagger)
    events, _ = _stream(services)
    names = [name for name, _ in events]
    assert names[-3:] == ["citations", "phase", "done"]
    phase = events[-2][1]
    assert phase["phase"] == "T" and phase["label"] == "Transformation" and phase["explanation"] and phase["scores"]
    assert tagger.calls and tagger.calls[0][0] == QUESTION


def test_no_phase_event_without_tagger(data_dir) -> None:
    services = make_services(data_dir)
    events, _ = _stream(services)
    assert "phase" not in [name for name, _ in events]


def test_conversation_continues_over_the_stream(data_dir) -> None:
    services = make_services(data_dir)
    first, _ = _stream(services)
    conversation = first[0][1]["conversation_id"]
    second, _ = _stream(services, question="Und was kostet das für Händler?", conversation_id=conversation)
    assert second[0][1]["conversation_id"] == conversation
    assert second[0][1]["query"] == "Und was kostet das für Händler? (digitale Stadtgutschein)"


def test_store_failure_is_an_error_event(data_dir, monkeypatch: pytest.MonkeyPatch) -> None:
    services = make_services(data_dir)
    with TestClient(create_app(services=services)) as client:
        def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            raise StoreError("Chroma unter data/chroma ist nicht erreichbar: kaputt")

        monkeypatch.setattr(services.search, "search", broken)
        response = client.post("/v1/ask/stream", json={"question": QUESTION})
    events = parse_sse(response.text)
    assert response.status_code == 200
    assert [name for name, _ in events] == ["meta", "error"]
    assert "nicht erreichbar" in events[-1][1]["message"]


def test_unexpected_failure_is_a_german_error_event(data_dir, monkeypatch: pytest.MonkeyPatch) -> None:
    services = make_services(data_dir)
    with TestClient(create_app(services=services)) as client:
        monkeypatch.setattr(services.answerer, "retrieve", lambda *a, **k: 1 / 0)
        response = client.post("/v1/ask", json={"question": QUESTION, "stream": True})
    events = parse_sse(response.text)
    assert events[-1] == ("error", {"message": "Die Antwort konnte gerade nicht erstellt werden. "
                                               "Bitte versuchen Sie es später noch einmal."})


def test_events_are_documented_in_openapi(data_dir) -> None:
    services = make_services(data_dir)
    with TestClient(create_app(services=services)) as client:
        schema = client.get("/openapi.json").json()
    ask = schema["paths"]["/v1/ask"]["post"]
    for event in ("meta", "token", "citations", "phase", "done", "error"):
        assert f"`{event}`" in ask["description"]
    assert "text/event-stream" in ask["responses"]["200"]["content"]
    assert "text/event-stream" in schema["paths"]["/v1/ask/stream"]["post"]["responses"]["200"]["content"]


def test_an_answer_below_the_caution_level_says_so_in_both_answer_forms(data_dir) -> None:
    services = make_services(data_dir)
    services.answerer.caution_threshold = 1.01
    events, _ = _stream(services)
    done = events[-1][1]
    assert done["uncertain"] is True and not done["abstained"] and "zitierte Stelle prüfen" in done["notice"]
    assert _tokens(events) == done["answer"]  # the notice is shown beside the answer, not streamed into it
    counted = lambda: REGISTRY.get_sample_value(  # noqa: E731
        "stadtretter_answers_total", {"mode": "extractive", "outcome": "caution"}) or 0.0
    before = counted()
    with TestClient(create_app(services=services)) as client:
        body = client.post("/v1/ask", json={"question": QUESTION}).json()
    assert body["uncertain"] is True and body["answer"] == done["answer"] and body["notice"] == done["notice"]
    assert counted() == before + 1  # operators see how often answers come with a caution
