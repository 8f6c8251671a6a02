"""The web chat in a real browser: streaming answers, citation cards and their links, filters, conversations,
feedback, copying, error messages and keyboard-only use."""

from __future__ import annotations

import json
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE
from tests.browser.support import (
    Q_PDF,
    Q_UNRELATED,
    Q_WEBTALK,
    Q_WLAN,
    answers,
    ask,
    card_hrefs,
    expected_links,
    last_answer,
    save_screenshot,
)

pytestmark = pytest.mark.browser


def api_answer(page, live, question: str, **extra) -> dict:  # noqa: ANN001
    response = page.request.post(f"{live.url}/v1/ask", data={"question": question, **extra})
    assert response.ok, response.text()
    return response.json()


def test_streamed_answer_with_citation_cards_and_links(live, page, artifacts) -> None:  # noqa: ANN001
    page.goto(live.url + "/")
    expect(page.get_by_role("heading", name="Was möchten Sie wissen?")).to_be_visible()
    expect(page.locator(".sr-example")).to_have_count(4)
    expect(page.locator(".sr-example").first).to_contain_text("WLAN")
    save_screenshot(page, artifacts, "desktop-leer")

    expected = {q: api_answer(page, live, q) for q in (Q_WLAN, Q_PDF, Q_WEBTALK)}
    streamed = []
    page.on("response", lambda r: streamed.append(r.headers.get("content-type", "")) if r.url.endswith("/v1/ask") else None)
    for question in (Q_PDF, Q_WLAN, Q_WEBTALK):
        body = ask(page, question)
        assert body["stream"] is True
        answer = last_answer(page)
        expect(answer).to_have_attribute("data-state", "done")
        assert int(answer.get_attribute("data-token-count")) >= 1  # text arrived as token events
        data = expected[question]
        assert not data["abstained"]
        expect(answer.locator(".sr-answer-text")).to_contain_text(data["answer"].split(" [")[0][:40])
        # Every [n] marker is a link to its card.
        markers = answer.locator("a.sr-marker")
        assert markers.count() >= 1
        cards = answer.locator(".sr-card")
        expect(cards).to_have_count(len(data["citations"]))
        for citation in data["citations"]:
            card = answer.locator(f'.sr-card[data-n="{citation["n"]}"]')
            expect(card.locator(".sr-card-title")).to_contain_text(citation["title"])
            expect(card.locator(".sr-type")).to_contain_text({"article": "Artikel", "webtalk": "WebTalk", "course": "Kursmaterial"}[citation["type"]])
            expect(card.locator(".sr-snippet")).to_contain_text(citation["snippet"][:30])
            assert card_hrefs(card) == expected_links(citation), citation
            if citation.get("date"):
                y, m, d = citation["date"].split("-")
                expect(card.locator("time")).to_have_text(f"{d}.{m}.{y}")
        if question == Q_PDF:
            page.mouse.move(0, 0)
            page.evaluate("window.scrollTo(0, document.querySelector('.sr-msg-user').offsetTop - 16)")
            save_screenshot(page, artifacts, "desktop-antwort", readme=True)
    assert all("text/event-stream" in ct for ct in streamed) and len(streamed) == 3

    # The PDF answer cites page 2 of the course PDF (the answer leads with its best sentence, so not necessarily as
    # [1]) and the link serves the original file.
    pdf_citation = next(c for c in expected[Q_PDF]["citations"] if c["page"] == 2)
    assert pdf_citation["type"] == "course"
    pdf = page.request.get(f"{live.url}/quellen/{pdf_citation['source_id']}/datei")
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf" and pdf.body().startswith(b"%PDF")
    # The transcript answer links to the second of the cue (21 s).
    assert expected[Q_WEBTALK]["citations"][0]["start"] == 21.0

    # Clicking a marker moves focus to its card.
    first = answers(page).first
    first.locator("a.sr-marker").first.click()
    expect(first.locator('.sr-card[data-n="1"]')).to_be_focused()
    save_screenshot(page, artifacts, "desktop-verlauf")


def test_abstention_shows_closest_sources(live, page, artifacts) -> None:  # noqa: ANN001
    page.goto(live.url + "/")
    ask(page, Q_UNRELATED)
    answer = last_answer(page)
    expect(answer).to_contain_text("keine belastbare Antwort")
    expect(answer.locator(".sr-sources-title")).to_contain_text("Nächstliegende Quellen")
    assert answer.locator(".sr-card").count() >= 1
    expect(answer.locator(".sr-answer-phase")).to_have_count(0)
    page.evaluate("window.scrollTo(0, document.querySelector('.sr-msg-user').offsetTop - 16)")
    save_screenshot(page, artifacts, "desktop-keine-antwort")


def test_an_answer_with_a_caution_shows_the_notice_beside_the_answer(live, page, artifacts) -> None:  # noqa: ANN001
    answerer = live.services.answerer
    level = answerer.caution_threshold
    answerer.caution_threshold = 1.01  # every answer of the sources below the caution level
    try:
        page.goto(live.url + "/")
        ask(page, Q_WLAN)
        answer = last_answer(page)
        expect(answer).to_have_attribute("data-state", "done")
        notice = answer.locator(".sr-notice")
        expect(notice).to_contain_text("Bitte die zitierte Stelle prüfen")
        expect(answer.locator(".sr-answer-text")).not_to_contain_text("Hinweis")  # beside the text, not in it
        assert answer.locator(".sr-card").count() >= 1  # the citations to check are there
        page.evaluate("window.scrollTo(0, document.querySelector('.sr-msg-user').offsetTop - 16)")
        save_screenshot(page, artifacts, "desktop-mit-vorbehalt")
    finally:
        answerer.caution_threshold = level


def test_filters_change_what_is_retrieved(live, page) -> None:  # noqa: ANN001
    page.goto(live.url + "/")
    unfiltered = ask(page, Q_WLAN)
    assert "filters" not in unfiltered
    expect(last_answer(page).locator(".sr-card").first).to_have_attribute("data-type", "article")

    # Source type: only WebTalks are searched for the next question.
    page.locator("label.sr-chip", has_text="WebTalk").click()
    expect(page.locator(".sr-filter-summary")).to_contain_text("WebTalk")
    body = ask(page, Q_WLAN)
    assert body["filters"] == {"type": ["webtalk"]}
    answer = last_answer(page)
    expect(page.locator(".sr-msg-user").last).to_contain_text("Gefiltert: WebTalk")
    types = answer.locator(".sr-card").evaluate_all("cards => cards.map(c => c.dataset.type)")
    assert types and set(types) == {"webtalk"}

    # Phase: only passages of the chosen EKT phase.
    page.locator("label.sr-chip", has_text="Alle").nth(1).click()
    page.locator("label.sr-chip", has_text="Evaluation").click()
    body = ask(page, "Wie wird die Passantenbefragung vorbereitet?")
    assert body["filters"] == {"phase": ["E"]}
    expected = api_answer(page, live, "Wie wird die Passantenbefragung vorbereitet?", filters={"phase": ["E"]})
    assert expected["citations"] and {c["phase"] for c in expected["citations"]} == {"E"}
    answer = last_answer(page)
    expect(answer.locator(".sr-card")).to_have_count(len(expected["citations"]))
    badges = answer.locator(".sr-card .sr-phase").all_inner_texts()
    assert badges and all("Evaluation" in b for b in badges)
    other = api_answer(page, live, "Wie wird die Passantenbefragung vorbereitet?", filters={"phase": ["T"]})
    assert {c["source_id"] for c in other["citations"]}.isdisjoint({c["source_id"] for c in expected["citations"]})


def test_follow_up_sends_history_and_conversation_survives_reload(live, page) -> None:  # noqa: ANN001
    page.goto(live.url + "/")
    first = ask(page, Q_WLAN)
    assert first["history"] == [] and "conversation_id" not in first
    conversation_id = page.evaluate("JSON.parse(localStorage.getItem('stadtretter-chat:v1')).conversationId")
    assert conversation_id
    first_answer = last_answer(page).locator(".sr-answer-text").inner_text()

    follow_up = ask(page, "Und was kosten die laufenden Kosten im Jahr?")
    assert follow_up["conversation_id"] == conversation_id
    assert follow_up["history"][0] == {"role": "user", "content": Q_WLAN}
    assert follow_up["history"][1]["role"] == "assistant"
    assert follow_up["history"][1]["content"].startswith(first_answer.split(" [")[0][:30])
    expect(last_answer(page)).to_contain_text("9.000 Euro")

    # The conversation survives a reload, and the next question continues it.
    page.reload()
    expect(answers(page)).to_have_count(2)
    expect(page.locator(".sr-msg-user").first).to_contain_text(Q_WLAN)
    third = ask(page, Q_PDF)
    assert third["conversation_id"] == conversation_id and len(third["history"]) == 4

    # "Neues Gespräch" starts over.
    page.get_by_role("button", name="Neues Gespräch").click()
    expect(page.get_by_role("heading", name="Was möchten Sie wissen?")).to_be_visible()
    expect(page.get_by_label("Ihre Frage")).to_be_focused()
    fresh = ask(page, Q_WEBTALK)
    assert fresh["history"] == [] and "conversation_id" not in fresh


def test_feedback_is_stored(live, page) -> None:  # noqa: ANN001
    page.goto(live.url + "/")
    ask(page, Q_WLAN)
    answer = last_answer(page)
    answer.get_by_role("button", name="Nein, nicht hilfreich").click()
    comment = answer.get_by_label("Ihr Kommentar (optional)", exact=False)
    expect(comment).to_be_focused()
    comment.fill("Mir fehlt die Höhe der Fördermittel.")
    with page.expect_response(lambda r: r.url.endswith("/v1/feedback") and r.request.method == "POST") as response:
        answer.get_by_role("button", name="Feedback senden").click()
    assert response.value.status == 201
    expect(answer.locator(".sr-feedback-done")).to_have_text("Danke für Ihr Feedback!")
    expect(answer.get_by_role("button", name="Nein, nicht hilfreich")).to_have_attribute("aria-pressed", "true")

    conversation_id = page.evaluate("JSON.parse(localStorage.getItem('stadtretter-chat:v1')).conversationId")
    stored = live.services.feedback.list(1)[0][0]  # the newest, as stored in the state database
    assert (stored.question, stored.rating, stored.comment, stored.conversation_id) == (
        Q_WLAN, "down", "Mir fehlt die Höhe der Fördermittel.", conversation_id)
    assert "Finanzierungsmix" in stored.answer and stored.created_at
    assert stored.citations[0]["title"].startswith("Innenstadt-WLAN finanzieren")

    # A thumbs-up without comment, then the trainers' list shows the newest first.
    ask(page, Q_PDF)
    answer = last_answer(page)
    answer.get_by_role("button", name="Ja, hilfreich").click()
    answer.get_by_role("button", name="Feedback senden").click()
    expect(answer.locator(".sr-feedback-done")).to_be_visible()
    trainer_key = live.services.api_keys.create(f"trainer-{uuid.uuid4().hex[:8]}", "trainer").key
    assert page.request.get(f"{live.url}/v1/feedback").status == 401  # reading needs the trainer role
    trainer = {"Authorization": f"Bearer {trainer_key}"}
    listing = page.request.get(f"{live.url}/v1/feedback?limit=2", headers=trainer).json()
    assert [(f["question"], f["rating"], f["comment"]) for f in listing["feedback"]] == [
        (Q_PDF, "up", None), (Q_WLAN, "down", "Mir fehlt die Höhe der Fördermittel.")
    ]
    # Feedback state survives a reload (no second vote).
    page.reload()
    expect(answers(page).last.locator(".sr-feedback-done")).to_be_visible()
    expect(answers(page).last.get_by_role("button", name="Ja, hilfreich")).to_be_disabled()


def test_copy_answer_as_markdown(live, context, page) -> None:  # noqa: ANN001
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    page.goto(live.url + "/")
    expected = api_answer(page, live, Q_PDF)
    ask(page, Q_PDF)
    answer = last_answer(page)
    answer.get_by_role("button", name="Antwort kopieren").click()
    expect(answer.get_by_role("button", name="Kopiert!")).to_be_visible()
    markdown = page.evaluate("navigator.clipboard.readText()")
    assert markdown.startswith(f"**Frage:** {Q_PDF}\n\n{expected['answer'].strip()}\n")
    assert "**Quellen:**" in markdown and "_EKT-Phase: Evaluation – " in markdown
    for c in expected["citations"]:
        y, m, d = c["date"].split("-")
        link = f"{live.url}/quellen/{c['source_id']}/datei#page={c['page']}"
        assert f"- [{c['n']}] [{c['title']}]({link}) – Kursmaterial, Seite {c['page']}, {d}.{m}.{y}" in markdown


def test_errors_are_german_and_retry_works(live, page) -> None:  # noqa: ANN001
    page.goto(live.url + "/")
    # A failure reported inside the stream.
    stream = ('event: meta\ndata: {"query": "x", "conversation_id": "c1", "mode": "extractive"}\n\n'
              'event: error\ndata: {"message": "Die Antwort konnte gerade nicht erstellt werden. '
              'Bitte versuchen Sie es später noch einmal."}\n\n')  # fmt: skip
    page.route("**/v1/ask", lambda route: route.fulfill(status=200, content_type="text/event-stream", body=stream))
    page.get_by_label("Ihre Frage").fill(Q_WLAN)
    page.get_by_label("Ihre Frage").press("Enter")
    answer = last_answer(page)
    expect(answer).to_have_attribute("data-state", "error")
    expect(answer.get_by_role("alert")).to_contain_text("Die Antwort konnte gerade nicht erstellt werden")
    # Service unavailable (503 with the server's German detail).
    page.unroute("**/v1/ask")
    page.route("**/v1/ask", lambda route: route.fulfill(status=503, json={"detail": "Chroma ist nicht erreichbar."}))
    answer.get_by_role("button", name="Erneut versuchen").click()
    expect(answer.get_by_role("alert")).to_contain_text("Chroma ist nicht erreichbar.")
    # Server gone.
    page.unroute("**/v1/ask")
    page.route("**/v1/ask", lambda route: route.abort("connectionrefused"))
    answer.get_by_role("button", name="Erneut versuchen").click()
    expect(answer.get_by_role("alert")).to_contain_text("Keine Verbindung zum Wissens-Chat")
    # Back to normal: retry gives the answer.
    page.unroute("**/v1/ask")
    answer.get_by_role("button", name="Erneut versuchen").click()
    expect(answer).to_have_attribute("data-state", "done")
    expect(answer.locator(".sr-card")).not_to_have_count(0)
    # An empty question is not sent.
    page.get_by_label("Ihre Frage").press("Enter")
    expect(page.locator(".sr-field-error")).to_have_text("Bitte geben Sie zuerst eine Frage ein.")
    expect(answers(page)).to_have_count(1)


def test_rate_limit_answers_in_german(live, page, artifacts) -> None:  # noqa: ANN001
    page.goto(live.limited_url + "/")
    for _ in range(3):
        ask(page, Q_WLAN)
        expect(last_answer(page)).to_have_attribute("data-state", "done")
    page.get_by_label("Ihre Frage").fill(Q_WLAN)
    page.get_by_label("Ihre Frage").press("Enter")
    answer = last_answer(page)
    expect(answer).to_have_attribute("data-state", "error")
    expect(answer.get_by_role("alert")).to_contain_text(
        "Zu viele Anfragen – bitte warten Sie einen Moment und versuchen Sie es dann erneut."
    )
    save_screenshot(page, artifacts, "desktop-zu-viele-anfragen")
    # The raw API answer: 429, German JSON, Retry-After.
    statuses = [page.request.post(f"{live.limited_url}/v1/ask", data={"question": Q_WLAN}) for _ in range(4)]
    assert [r.status for r in statuses] == [200, 200, 200, 429]
    assert statuses[-1].json() == {
        "detail": "Zu viele Anfragen – bitte warten Sie einen Moment und versuchen Sie es dann erneut."
    }
    assert 1 <= int(statuses[-1].headers["retry-after"]) <= 60


def test_keyboard_only(live, page) -> None:  # noqa: ANN001
    page.goto(live.url + "/")
    focused = lambda: page.evaluate(  # noqa: E731
        "() => { const e = document.activeElement; return e ? (e.id || e.className || e.tagName) : '' }"
    )
    # Tab through the page: the skip link comes first, the type filter is a radio group (arrow keys), then the box.
    page.keyboard.press("Tab")
    expect(page.locator(".sr-skip")).to_be_focused()
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.group") == "type":
            break
    else:
        pytest.fail("Quellentyp-Filter nicht per Tab erreichbar")
    page.keyboard.press("ArrowRight")  # Alle → Artikel
    expect(page.locator('input[data-group="type"][value="article"]')).to_be_checked()
    box = page.get_by_label("Ihre Frage")
    for _ in range(10):
        page.keyboard.press("Tab")
        if box.evaluate("el => el === document.activeElement"):
            break
    else:
        pytest.fail(f"Frage-Feld nicht per Tab erreichbar (Fokus: {focused()})")
    # Focus is visible.
    assert box.evaluate("el => getComputedStyle(el).outlineStyle") == "solid"
    page.keyboard.type("Wie wird das Innenstadt-WLAN")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("finanziert?")
    assert box.input_value() == "Wie wird das Innenstadt-WLAN\nfinanziert?"
    with page.expect_request(lambda r: r.url.endswith("/v1/ask")) as request:
        page.keyboard.press("Enter")
    assert json.loads(request.value.post_data)["filters"] == {"type": ["article"]}
    answer = last_answer(page)
    expect(answer).to_have_attribute("data-state", "done")
    expect(box).to_be_focused()
    # From the question box, Shift+Tab walks back into the answer and reaches the citation links.
    for _ in range(8):
        page.keyboard.press("Shift+Tab")
        if page.evaluate("!!document.activeElement.closest('.sr-card')"):
            break
    else:
        pytest.fail(f"Quellen nicht per Tab erreichbar (Fokus: {focused()})")
    link = page.locator(".sr-card a:focus")
    expect(link).to_have_count(1)
    assert link.evaluate("el => getComputedStyle(el).outlineStyle") == "solid"
    # Enter on the focused link opens the cited place.
    with page.context.expect_page() as new_page:
        page.keyboard.press("Enter")
    opened = new_page.value
    opened.wait_for_load_state()
    assert "/quellen/" in opened.url or "stadtretter.example" in opened.url
    opened.close()
    # The [1] marker in the text is reachable too and moves focus to its card.
    for _ in range(12):
        page.keyboard.press("Shift+Tab")
        if page.evaluate("document.activeElement.classList.contains('sr-marker')"):
            break
    page.keyboard.press("Enter")
    expect(answer.locator('.sr-card[data-n="1"]')).to_be_focused()


def test_phone_layout(live, browser, artifacts) -> None:  # noqa: ANN001
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="de-DE")
    page = context.new_page()
    try:
        page.goto(live.url + "/")
        expect(page.locator(".sr-filters")).not_to_have_attribute("open", "")  # collapsed on phones
        save_screenshot(page, artifacts, "phone-leer")
        ask(page, Q_PDF)
        page.evaluate("window.scrollTo(0, 0)")
        save_screenshot(page, artifacts, "phone-antwort")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.locator(".sr-filters summary").click()
        save_screenshot(page, artifacts, "phone-filter")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    finally:
        context.close()
