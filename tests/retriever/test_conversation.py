"""Conversations: store in the state database with retention, follow-up detection and rewriting (rule and model)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, inspect, select

from core.database import Database

from retriever.conversation import (
    DAY,
    ConversationStore,
    turns_table,
    clean_condensed,
    combine,
    is_follow_up,
    rewrite_follow_up,
    valid_conversation_id,
)
from tests.llm_fake import (
    FakeLLM,
    Reply,
    llm_settings,
    make_services,
)

FIRST = "Wie wird der digitale Stadtgutschein finanziert?"


# --- store ------------------------------------------------------------------------------------------------------


def test_store_keeps_turns_in_order_and_at_most_max_turns(state_database: Database) -> None:
    store = ConversationStore(state_database.engine, retention_days=30, max_turns=3)
    for i in range(5):
        store.add_turn("c1", f"Frage {i}?", f"Antwort {i} [1].", query=f"Anfrage {i}")
    store.add_turn("c2", "Andere Frage?", "Andere Antwort.")
    turns = store.turns("c1")
    assert [t.question for t in turns] == ["Frage 2?", "Frage 3?", "Frage 4?"]
    assert store.history("c1")[-2:] == [
        {"role": "user", "content": "Frage 4?", "query": "Anfrage 4"},
        {"role": "assistant", "content": "Antwort 4 [1]."},
    ]
    assert store.history("unbekannt") == []
    assert {"conversations", "conversation_turns"} <= set(inspect(state_database.engine).get_table_names())


def test_store_deletes_conversations_past_retention(state_database: Database) -> None:
    store = ConversationStore(state_database.engine, retention_days=30, max_turns=20)
    now = time.time()
    store.add_turn("alt", "Alte Frage?", "Alte Antwort.", now=now - 31 * DAY)
    store.add_turn("aktiv", "Frage?", "Antwort.", now=now - 29 * DAY)
    assert store.history("alt", now=now) == []  # expired even before pruning
    assert store.prune(now=now) == 1
    assert store.count() == 1 and store.turns("aktiv", now=now)
    store.add_turn("neu", "Frage?", "Antwort.", now=now + 2 * DAY)  # adding prunes too
    assert store.count() == 1 and store.turns("neu", now=now + 2 * DAY)
    with state_database.engine.connect() as db:
        assert db.execute(select(func.count()).select_from(turns_table)).scalar_one() == 1


def test_conversation_ids() -> None:
    assert valid_conversation_id("3f2a" * 8) and valid_conversation_id("client_id-1")
    assert not valid_conversation_id("") and not valid_conversation_id("a b") and not valid_conversation_id("x" * 65)


# --- follow-up rule ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("question", [
    "Und wie finanziert man das?", "Was kostet das?", "Wer bezahlt dafür?", "Wie lange dauert diese Einführung?",
    "Warum?", "Aber wie viele Händler machen mit?", "Gibt es dort auch Fördermittel?", "Wer betreibt ihn?",
])
def test_follow_ups_are_detected(question: str) -> None:
    assert is_follow_up(question)


@pytest.mark.parametrize("question", [
    "Wie wird der digitale Stadtgutschein finanziert?", "Welche Fördermittel gibt es?",
    "Wie funktioniert das Betriebsmodell eines Stadtgutscheins?", "Was zählt eine Frequenzmessung?",
])
def test_standalone_questions_are_not_follow_ups(question: str) -> None:
    assert not is_follow_up(question)


def test_follow_up_gets_the_previous_topic() -> None:
    history = [{"role": "user", "content": FIRST}, {"role": "assistant", "content": "Über Beiträge [1]."}]
    assert rewrite_follow_up("Was kostet das?", history) == "Was kostet das? (digitale Stadtgutschein)"
    assert rewrite_follow_up("Welche Fördermittel gibt es?", history) == "Welche Fördermittel gibt es?"
    assert rewrite_follow_up("Was kostet das?", []) == "Was kostet das?"
    # a chain of follow-ups keeps the topic; words already asked about are not repeated
    chain = history + [{"role": "user", "content": "Und wer zahlt dafür?"}, {"role": "assistant", "content": "…"}]
    assert "Stadtgutschein" in rewrite_follow_up("Wie lange dauert das?", chain)
    assert combine("Wie wird der Stadtgutschein beworben?", FIRST) == "Wie wird der Stadtgutschein beworben? (digitale)"
    # a stored standalone query is preferred over re-deriving it
    stored = [{"role": "user", "content": "Was kostet das?", "query": "Kosten Frequenzmessung"}]
    assert rewrite_follow_up("Und wer zahlt dafür?", stored) == "Und wer zahlt dafür? (Kosten Frequenzmessung)"


def test_condensed_output_is_cleaned() -> None:
    assert clean_condensed("Eigenständige Frage: „Was kostet der Stadtgutschein?“\nMehr Text") == "Was kostet der Stadtgutschein?"
    assert clean_condensed("  \n") == ""


# --- through QAService ------------------------------------------------------------------------------------------


def test_extractive_conversation_is_stored_and_followed_up(data_dir) -> None:
    services = make_services(data_dir)
    first = services.qa.ask(FIRST)
    assert first.conversation_id and len(first.conversation_id) == 32 and first.query == FIRST
    second = services.qa.ask("Und was kostet das für Händler?", conversation_id=first.conversation_id)
    assert second.conversation_id == first.conversation_id
    assert second.query == "Und was kostet das für Händler? (digitale Stadtgutschein)"
    assert "120 Euro" in second.answer
    turns = services.qa.conversations.turns(first.conversation_id)
    assert [(t.question, t.query) for t in turns] == [(FIRST, FIRST), ("Und was kostet das für Händler?", second.query)]
    assert services.qa.ask("Was kostet das?").query == "Was kostet das?"  # new conversation: nothing to refer to


def test_client_history_is_used_when_given(data_dir) -> None:
    services = make_services(data_dir)
    history = [{"role": "user", "content": "Was zählt eine Frequenzmessung?"}, {"role": "assistant", "content": "…"}]
    answer = services.qa.ask("Und was verlangt dabei der Datenschutz?", history=history)
    assert answer.query == "Und was verlangt dabei der Datenschutz? (Frequenzmessung)"


def test_max_turns_setting_applies(data_dir) -> None:
    services = make_services(data_dir, conversation_max_turns=2)
    conversation = services.qa.ask(FIRST).conversation_id
    for question in ("Was kostet das?", "Wer zahlt dafür?"):
        services.qa.ask(question, conversation_id=conversation)
    assert [t.question for t in services.qa.conversations.turns(conversation)] == ["Was kostet das?", "Wer zahlt dafür?"]


def test_llm_condenses_the_follow_up(data_dir, fake_llm: FakeLLM) -> None:
    services = make_services(data_dir, **llm_settings(fake_llm))
    fake_llm.script("Über Händlerbeiträge und einen Zuschuss der Stadt [1].")
    first = services.qa.ask(FIRST)
    fake_llm.reset()
    fake_llm.script("Wie hoch ist der Jahresbeitrag der Händler für den digitalen Stadtgutschein?",
                    "Der Jahresbeitrag beträgt 120 Euro [1].")
    second = services.qa.ask("Und was zahlen die Händler dafür?", conversation_id=first.conversation_id)

    condense, answer_request = fake_llm.requests
    prompt = condense["messages"][-1]["content"]
    assert "Nutzer: " + FIRST in prompt and "Assistent: Über Händlerbeiträge und einen Zuschuss der Stadt." in prompt
    assert "Folgefrage: Und was zahlen die Händler dafür?" in prompt
    assert second.query == "Wie hoch ist der Jahresbeitrag der Händler für den digitalen Stadtgutschein?"
    roles = [m["role"] for m in answer_request["messages"]]
    assert roles == ["system", "user", "assistant", "user"]  # the history goes to the model as messages
    assert answer_request["messages"][1]["content"] == FIRST
    assert "Frage: Und was zahlen die Händler dafür?" in answer_request["messages"][-1]["content"]
    assert second.answer == "Der Jahresbeitrag beträgt 120 Euro [1]." and second.mode == "llm"


def test_failed_condense_uses_the_rule_and_does_not_wait_twice(data_dir, fake_llm: FakeLLM) -> None:
    services = make_services(data_dir, **llm_settings(fake_llm))
    history = [{"role": "user", "content": FIRST}, {"role": "assistant", "content": "Über Beiträge."}]
    fake_llm.script(Reply(status=500))
    answer = services.qa.ask("Was kostet das?", history=history)
    assert len(fake_llm.requests) == 1
    assert answer.query == "Was kostet das? (digitale Stadtgutschein)"
    assert answer.notice and answer.mode == "extractive"
