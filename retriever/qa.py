"""QAService: the one entry point the API and the CLI use to answer questions.

One flow for both answer modes and for streamed and non-streamed answers:
conversation (server-side turns or the client's history) → standalone query (follow-up rewriting) → retrieval →
answer (language model with verified citations, or extractive) → EKT phase (when a tagger is available) →
turn stored → events.

Events of `stream()` (name, data):
  meta       {query, conversation_id, mode}       mode: "llm" | "extractive" (who is expected to write)
  token      {text}                              pieces of the answer text, in order
  citations  {citations: [Citation as dict]}
  phase      {phase, label, explanation, scores}  only with a phase tagger and a non-abstained answer
  done       {answer, abstained, notice, verification, conversation_id, highlights, answerability, uncertain}
  error      {message}                           German; ends the stream (store or embedding model unusable)
The tokens concatenate to done.answer, except after a model failure in mid-answer: then done.answer (the
extractive fallback, with done.notice) replaces the streamed text. Clients show done.answer at the end.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import asdict
from typing import Any, Protocol

from core.embeddings import EmbeddingUnavailable, StadtretterEmbeddings
from core.metrics import ANSWERS
from core.settings import Settings
from core.store import StoreError
from core.vocabulary import SearchMode
from retriever.answer import ExtractiveAnswerer
from retriever.conversation import (
    ConversationStore,
    clean_condensed,
    history_text,
    new_conversation_id,
    rewrite_follow_up,
    valid_conversation_id,
)
from retriever.generation import (
    Event,
    GenerationUnavailable,
    LLMAnswerer,
    describe_error,
    fallback_answer,
    make_chat_model,
    stream_text,
)
from retriever.models import Answer, Citation, PhaseTag, SearchFilters

logger = logging.getLogger("stadtretter.qa")

ERROR_MESSAGE = "Die Antwort konnte gerade nicht erstellt werden. Bitte versuchen Sie es später noch einmal."


class AnswerTagger(Protocol):
    """Gives an answer its EKT phase (retriever.phases.PhaseTagger)."""

    def tag_answer(
        self, question: str, citations: Sequence[Citation], vector: Sequence[float] | None = None
    ) -> PhaseTag: ...


class QAService:
    def __init__(
        self,
        settings: Settings,
        answerer: ExtractiveAnswerer,
        embeddings: StadtretterEmbeddings,
        conversations: ConversationStore,
        phase_tagger: AnswerTagger | None = None,
    ) -> None:
        self.settings = settings
        self.answerer = answerer
        self.embeddings = embeddings
        self.conversations = conversations
        self.phase_tagger = phase_tagger  # None: answers carry no phase
        self._lock = threading.Lock()
        self._model: Any = None
        self._model_built = False

    # --- public API -----------------------------------------------------------------------------------------

    def ask(
        self,
        question: str,
        filters: SearchFilters | None = None,
        mode: SearchMode | None = None,
        history: Iterable[Any] | None = None,
        conversation_id: str | None = None,
    ) -> Answer:
        """The complete answer. Store or embedding errors are raised (StoreError, EmbeddingUnavailable); model
        errors never are (extractive answer with a notice instead)."""
        answer: Answer | None = None
        for event, data in self._events(question, filters, mode, history, conversation_id, streaming=False):
            if event == "_answer":
                answer = data["answer"]
        assert answer is not None
        return answer

    def stream(
        self,
        question: str,
        filters: SearchFilters | None = None,
        mode: SearchMode | None = None,
        history: Iterable[Any] | None = None,
        conversation_id: str | None = None,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """The answer as events (see the module docstring). Never raises: failures end with an `error` event."""
        try:
            for event, data in self._events(question, filters, mode, history, conversation_id, streaming=True):
                if not event.startswith("_"):
                    yield event, data
        except (StoreError, EmbeddingUnavailable) as exc:
            yield "error", {"message": str(exc)}
        except Exception:  # noqa: BLE001 - a stream ends with a German error event, never a broken connection
            logger.exception("Antwort im Stream fehlgeschlagen")
            yield "error", {"message": ERROR_MESSAGE}

    @property
    def llm_configured(self) -> bool:
        return self.settings.llm_backend != "none"

    # --- the flow -------------------------------------------------------------------------------------------

    def _events(
        self,
        question: str,
        filters: SearchFilters | None,
        mode: SearchMode | None,
        history: Iterable[Any] | None,
        conversation_id: str | None,
        streaming: bool,
    ) -> Generator[Event, None, None]:
        question = question.strip()
        conversation_id = conversation_id if valid_conversation_id(conversation_id) else new_conversation_id()
        past = self._history(history, conversation_id)
        answerer = self.answerer
        model = self.chat_model() if self.llm_configured else None
        model_failed = False

        query = question
        if past:
            condensed = ""
            if model is not None:
                try:
                    llm = LLMAnswerer(model, answerer, self.embeddings, self.settings.llm_context_chars)
                    condensed = clean_condensed(llm.condense(question, history_text(past)))
                except Exception as exc:  # the model is down: no second wait for the answer
                    logger.warning("Folgefrage nicht umformuliert: %s", describe_error(exc))
                    model_failed = True
            query = condensed or rewrite_follow_up(question, past)

        use_model = model is not None and not model_failed
        yield "meta", {"query": query, "conversation_id": conversation_id, "mode": "llm" if use_model else "extractive"}

        hits = answerer.retrieve(query, filters, mode)
        if use_model:
            llm = LLMAnswerer(model, answerer, self.embeddings, self.settings.llm_context_chars)
            answer = yield from llm.generate(question, query, hits, past, streaming)
        elif self.llm_configured:
            answer = fallback_answer(answerer, question, query, hits)
            yield from stream_text(answer.answer, streaming)
        else:
            answer = answerer.run(question, query=query, hits=hits)
            yield from stream_text(answer.answer, streaming)

        answer.question = question
        answer.query = query
        answer.conversation_id = conversation_id
        answer.phase = self._phase(question, answer)
        self._remember(conversation_id, question, answer)
        outcome = "abstained" if answer.abstained else "caution" if answer.uncertain else "answered"
        ANSWERS.labels(answer.mode, outcome).inc()

        yield "citations", {"citations": [citation.to_dict() for citation in answer.citations]}
        if answer.phase is not None:
            yield "phase", asdict(answer.phase)
        yield "done", {
            "answer": answer.answer,
            "abstained": answer.abstained,
            "notice": answer.notice,
            "verification": answer.verification,
            "conversation_id": conversation_id,
            "highlights": answer.highlights,
            "answerability": answer.answerability,
            "uncertain": answer.uncertain,
        }
        yield "_answer", {"answer": answer}

    # --- parts ----------------------------------------------------------------------------------------------

    def chat_model(self) -> Any:
        """The configured chat model, built once; None when it cannot be built (answers fall back)."""
        with self._lock:
            if not self._model_built:
                try:
                    self._model = make_chat_model(self.settings)
                except GenerationUnavailable as exc:
                    logger.error("Sprachmodell nicht verfügbar: %s", exc)
                    self._model = None
                except Exception as exc:  # noqa: BLE001 - invalid backend settings must not break answering
                    logger.error("Sprachmodell konnte nicht eingerichtet werden: %s", describe_error(exc))
                    self._model = None
                self._model_built = True
            return self._model

    def _history(self, history: Iterable[Any] | None, conversation_id: str) -> list[dict[str, Any]]:
        """The client's history when it sends one, else the stored turns of the conversation."""
        messages: list[dict[str, Any]] = []
        for item in history or []:
            role = item.get("role") if isinstance(item, dict) else getattr(item, "role", None)
            content = item.get("content") if isinstance(item, dict) else getattr(item, "content", None)
            if role in ("user", "assistant") and content and str(content).strip():
                messages.append({"role": role, "content": str(content)})
        if messages:
            return messages
        try:
            return self.conversations.history(conversation_id)
        except Exception as exc:  # noqa: BLE001 - a broken conversation store must not stop answers
            logger.error("Gesprächsverlauf nicht lesbar: %s", exc)
            return []

    def _remember(self, conversation_id: str, question: str, answer: Answer) -> None:
        try:
            self.conversations.add_turn(conversation_id, question, answer.answer, answer.query)
        except Exception as exc:  # noqa: BLE001
            logger.error("Gesprächsrunde nicht gespeichert: %s", exc)

    def _phase(self, question: str, answer: Answer) -> PhaseTag | None:
        if answer.abstained or not answer.citations:
            return None
        if self.phase_tagger is None:
            return None
        try:
            vector = self.answerer.query_vector(question)
            return self.phase_tagger.tag_answer(question, answer.citations, vector)
        except Exception as exc:  # noqa: BLE001
            logger.error("Phase der Antwort nicht bestimmt: %s", exc)
            return None
