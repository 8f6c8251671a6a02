"""Questions: one JSON answer, or the answer as Server-Sent Events (`"stream": true` or /v1/ask/stream)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

from fastapi import APIRouter, Depends
from sse_starlette import EventSourceResponse

from api.auth import require_scope
from api.deps import ServicesDep
from api.schemas import AskRequest, AskResponse, CitationOut
from core.embeddings import EmbeddingUnavailable
from core.store import StoreError
from retriever.qa import ERROR_MESSAGE
from services.container import Services

logger = logging.getLogger("stadtretter.api")

router = APIRouter(tags=["Fragen"], dependencies=[Depends(require_scope("ask"))])

SSE_DESCRIPTION = """
Beantwortet eine Frage aus den Stadtretter-Quellen, mit Quellenangaben [n]. Ist ein Sprachmodell eingerichtet,
formuliert es die Antwort; jede Quellenmarke wird danach geprüft. Sonst (oder wenn das Modell nicht antwortet)
wird die Antwort aus Sätzen der Quellen zusammengestellt (`notice` erklärt das).

Folgefragen: `conversation_id` aus der letzten Antwort mitschicken (oder den Verlauf in `history`); ohne
`conversation_id` beginnt ein neues Gespräch und die Antwort enthält eine neue. `query` ist die eigenständige
Suchanfrage, zu der die Frage umformuliert wurde.

**Streaming** (`"stream": true` oder `POST /v1/ask/stream`): Antwort `text/event-stream` (Server-Sent Events),
jedes Ereignis mit Namen (`event:`) und JSON in `data:`, in dieser Reihenfolge:

| event | data | |
| --- | --- | --- |
| `meta` | `{query, conversation_id, mode}` | einmal, zuerst; `mode`: `llm` oder `extractive` |
| `token` | `{text}` | beliebig oft: Textstücke der Antwort, aneinandergehängt ergeben sie die Antwort |
| `citations` | `{citations: [Citation]}` | einmal; Felder wie `citations` der JSON-Antwort |
| `phase` | `{phase, label, explanation, scores}` | nur wenn eine EKT-Phase bestimmt wurde |
| `done` | `{answer, abstained, notice, verification, conversation_id, highlights, answerability, uncertain}` | zuletzt; `answer` ist der endgültige Text |
| `error` | `{message}` | statt der übrigen Ereignisse bei einem Fehler (deutsche Meldung); beendet den Stream |

`done.answer` ist maßgeblich: Fällt das Sprachmodell mitten in der Antwort aus, ersetzt die aus den Quellen
zusammengestellte Antwort (mit `notice`) den bis dahin gestreamten Text. Auch ohne Sprachmodell wird gestreamt
(Satz für Satz), damit Clients nur einen Weg brauchen.

`verification` (nur mit Sprachmodell): `{markers_checked, markers_removed, invalid_markers, uncited}` – wie viele
Quellenmarken geprüft und wie viele entfernt wurden, weil es die Quelle nicht gab; `uncited`: die Antwort
enthielt keine Marke, die verwendeten Quellen sind als „Grundlage“ angehängt.
"""

SSE_EVENT_SCHEMA = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["meta", "token", "citations", "phase", "done", "error"]},
        "data": {"type": "string", "description": "JSON des Ereignisses (siehe Tabelle)"},
    },
}

SSE_RESPONSES = {
    200: {
        "description": "Antwort als JSON, oder mit `stream` als Server-Sent Events",
        # OpenAPI 3.1: for a stream, `schema` describes each event (name and JSON text), as Schemathesis checks it.
        "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA, "example": (
            'event: meta\ndata: {"query": "Was kostet ein Stadtgutschein?", "conversation_id": "3f2a…", '
            '"mode": "llm"}\n\nevent: token\ndata: {"text": "Die Kosten "}\n\n…\n\nevent: done\ndata: {…}\n\n'
        )}},
    },
    503: {"description": "Index oder Embedding-Modell nicht verfügbar (nur ohne Streaming)"},
}


def _event_stream(services: Services, body: AskRequest) -> Iterator[dict[str, str]]:
    """The QAService events as SSE messages; any failure ends the stream with an `error` event."""
    try:
        qa = services.public_qa
        events = qa.stream(
            body.question,
            filters=body.filters.to_search() if body.filters else None,
            mode=body.mode,
            history=body.history,
            conversation_id=body.conversation_id,
        )
        for event, data in events:
            if event == "citations":
                data = {"citations": [CitationOut(**c).model_dump() for c in data["citations"]]}
            yield {"event": event, "data": json.dumps(data, ensure_ascii=False)}
    except (StoreError, EmbeddingUnavailable) as exc:  # index or model unusable: its German message
        yield {"event": "error", "data": json.dumps({"message": str(exc)}, ensure_ascii=False)}
    except Exception:  # noqa: BLE001 - the stream already started: report in-band
        logger.exception("Stream fehlgeschlagen")
        yield {"event": "error", "data": json.dumps({"message": ERROR_MESSAGE}, ensure_ascii=False)}


def _stream_response(services: Services, body: AskRequest) -> EventSourceResponse:
    return EventSourceResponse(_event_stream(services, body), headers={"Cache-Control": "no-store"})


@router.post(
    "/ask",
    response_model=AskResponse,
    summary="Frage stellen, Antwort mit Quellen (optional gestreamt)",
    description=SSE_DESCRIPTION,
    responses=SSE_RESPONSES,
)
def ask(body: AskRequest, services: ServicesDep):  # noqa: ANN201 - AskResponse or EventSourceResponse
    if body.stream:
        return _stream_response(services, body)
    answer = services.public_qa.ask(
        body.question,
        filters=body.filters.to_search() if body.filters else None,
        mode=body.mode,
        history=body.history,
        conversation_id=body.conversation_id,
    )
    return AskResponse(**answer.to_dict())


@router.post(
    "/ask/stream",
    summary="Frage stellen, Antwort als Server-Sent Events",
    description="Wie `POST /v1/ask` mit `\"stream\": true` (das Feld `stream` wird ignoriert).\n" + SSE_DESCRIPTION,
    response_class=EventSourceResponse,
    responses={200: SSE_RESPONSES[200]},
)
def ask_stream(body: AskRequest, services: ServicesDep) -> EventSourceResponse:
    return _stream_response(services, body)
