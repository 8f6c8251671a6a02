"""Answers written by a language model from the retrieved sources, with verified citations.

Steps: pack the best chunks as numbered, delimited sources into the context budget → ask the model (through
langchain, streamed or not) → check every [n] marker against the given sources while the text streams: unknown
markers are removed and reported, known ones are renumbered in order of first use → citations for the sources
actually cited, each with a snippet (the chunk sentences that best match the answer sentences citing it).

Abstention happens before the model is called (evidence selection and answerability are the extractive answerer's,
computed once and reused by a fallback), and every model, HTTP or timeout error falls back to the extractive answer
with a German notice: never an error for the user.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.prompts import (
    ChatPromptTemplate,
    HumanMessagePromptTemplate,
    MessagesPlaceholder,
    SystemMessagePromptTemplate,
)

from retriever.answer import ExtractiveAnswerer, Selection, _lead, _snippet, caution, citation_for, locator_for
from retriever.evidence import Sentence, chunk_sentences
from retriever.models import Answer, Citation, SearchHit
from retriever.text import analyze
from core.embeddings import StadtretterEmbeddings
from core.metrics import LLM_FALLBACKS, record_stage, stage
from core.prompts import render, template
from core.settings import Settings
from core.vocabulary import PHASE_LABELS, TYPE_LABELS

logger = logging.getLogger("stadtretter.generation")

HISTORY_MESSAGES = 6  # the last n history messages go to the model
HISTORY_MESSAGE_CHARS = 1200

Event = tuple[str, dict[str, Any]]


class GenerationUnavailable(RuntimeError):
    """The configured backend cannot be built (e.g. the `llm` extra is not installed)."""


# --- backend factory --------------------------------------------------------------------------------------------


def make_chat_model(settings: Settings):  # noqa: ANN201 - a langchain BaseChatModel or None
    """The chat model for settings.llm_backend; None for "none" (extractive answers)."""
    backend = settings.llm_backend
    if backend == "none":
        return None
    if not settings.llm_model:
        raise GenerationUnavailable("STADTRETTER_LLM_MODEL ist nicht gesetzt")
    if backend == "openai":
        try:
            from langchain_openai import ChatOpenAI
        except ImportError as exc:
            raise GenerationUnavailable("langchain-openai ist nicht installiert (Extra 'llm')") from exc
        api_key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "not-needed"
        return ChatOpenAI(
            base_url=settings.llm_base_url,
            api_key=api_key,
            model=settings.llm_model,
            timeout=settings.llm_timeout_seconds,
            max_retries=0,
            max_tokens=settings.llm_max_tokens,
        )
    if backend == "ollama":
        try:
            from langchain_ollama import ChatOllama
        except ImportError as exc:
            raise GenerationUnavailable("langchain-ollama ist nicht installiert (Extra 'llm')") from exc
        kwargs: dict[str, Any] = {"model": settings.llm_model, "num_predict": settings.llm_max_tokens,
                                  "client_kwargs": {"timeout": settings.llm_timeout_seconds}}
        if settings.llm_base_url:
            kwargs["base_url"] = settings.llm_base_url
        return ChatOllama(**kwargs)
    raise GenerationUnavailable(f"Unbekanntes LLM-Backend: {backend}")


# --- prompts ----------------------------------------------------------------------------------------------------


def answer_prompt() -> ChatPromptTemplate:
    """System rules, the recent conversation, then the numbered sources and the question."""
    return ChatPromptTemplate.from_messages([
        SystemMessagePromptTemplate(prompt=template("llm_system.txt")),
        MessagesPlaceholder("history", optional=True),
        HumanMessagePromptTemplate(prompt=template("llm_answer.txt")),
    ])


def condense_prompt() -> ChatPromptTemplate:
    return ChatPromptTemplate.from_messages([HumanMessagePromptTemplate(prompt=template("condense_question.txt"))])


_ITEM = r"(?:Quelle\s*)?\d{1,3}(?:\s*[-–]\s*\d{1,3})?"  # "3", "Quelle 3", "2-4"
_ANY_MARKER = re.compile(rf"\s*\[\s*{_ITEM}(?:\s*[,;]\s*{_ITEM})*\s*\]")


def strip_markers(text: str) -> str:
    return _ANY_MARKER.sub("", text).strip()


def history_messages(history: Iterable[dict[str, str]]) -> list[BaseMessage]:
    """The last messages of the conversation as chat messages (markers of old answers removed, long ones cut)."""
    messages: list[BaseMessage] = []
    for item in list(history)[-HISTORY_MESSAGES:]:
        content = strip_markers(str(item.get("content", "")))[:HISTORY_MESSAGE_CHARS]
        if not content:
            continue
        messages.append(AIMessage(content) if item.get("role") == "assistant" else HumanMessage(content))
    return messages


def message_text(message: Any) -> str:
    """Text of a langchain message or chunk (content may be a string or a list of parts)."""
    content = getattr(message, "content", message)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part if isinstance(part, str) else str(part.get("text", "")) for part in content
                       if isinstance(part, (str, dict)))
    return str(content or "")


# --- context packing --------------------------------------------------------------------------------------------


@dataclass
class PackedSource:
    n: int
    hit: SearchHit
    text: str  # the (possibly cut) text given to the model, neutralised
    cut: bool = False

    @property
    def title(self) -> str:
        return str(self.hit.metadata.get("title", ""))

    @property
    def locator(self) -> str:
        return locator_for(self.hit.metadata)


_TAG_CHARS = str.maketrans({"<": "‹", ">": "›"})
_SOURCE_MARKER = re.compile(r"\[(\s*\d{1,3}\s*)\]")
_SENTENCE_END = re.compile(r"[.!?…][\"»“”')\]]*(?=\s|$)")


def neutralise(text: str) -> str:
    """Source text as data: no tag look-alikes (so no fake </quelle> or <system>), no [n] look-alikes."""
    return _SOURCE_MARKER.sub(r"(\1)", text.translate(_TAG_CHARS))


def _attribute(value: object) -> str:
    return " ".join(str(value).split()).translate(_TAG_CHARS).replace('"', "'")


def _open_tag(n: int, hit: SearchHit) -> str:
    meta = hit.metadata
    attributes = {
        "nr": n,
        "titel": meta.get("title") or "ohne Titel",
        "typ": TYPE_LABELS.get(str(meta.get("type", "")), str(meta.get("type", "")) or "unbekannt"),
        "fundstelle": locator_for(meta),
    }
    if meta.get("phase"):
        attributes["phase"] = PHASE_LABELS.get(str(meta["phase"]), str(meta["phase"]))
    if meta.get("date"):
        attributes["datum"] = meta["date"]
    return "<quelle " + " ".join(f'{key}="{_attribute(value)}"' for key, value in attributes.items()) + ">"


def _render(n: int, hit: SearchHit, text: str) -> str:
    return f"{_open_tag(n, hit)}\n{text}\n</quelle>"


def cut_at_sentence(text: str, limit: int) -> str:
    """The longest prefix of whole sentences within limit characters ("" when even the first is longer)."""
    if len(text) <= limit:
        return text
    best = 0
    for match in _SENTENCE_END.finditer(text):
        if match.end() > limit:
            break
        best = match.end()
    return text[:best].rstrip()


def pack_context(hits: list[SearchHit], budget: int) -> tuple[list[PackedSource], str]:
    """Number the hits (best first) as delimited sources that fit the character budget. Weaker whole sources are
    dropped when the budget is full; a single source longer than the whole budget is cut at a sentence end."""
    sources: list[PackedSource] = []
    parts: list[str] = []
    used = 0
    for hit in hits:
        n = len(sources) + 1
        text = neutralise(hit.text.strip())
        block = _render(n, hit, text)
        separator = 2 if parts else 0
        if used + separator + len(block) <= budget:
            sources.append(PackedSource(n, hit, text))
        elif not sources:
            room = budget - len(_render(n, hit, "")) - len(" […]")
            text = cut_at_sentence(text, room)
            if not text:
                continue  # not even one sentence fits: try the next source
            text = f"{text} […]"
            block = _render(n, hit, text)
            sources.append(PackedSource(n, hit, text, cut=True))
        else:
            break  # this and all weaker sources are dropped
        parts.append(block)
        used += separator + len(block)
    return sources, "\n\n".join(parts)


# --- citation verification --------------------------------------------------------------------------------------


_MARKER = re.compile(rf"(\s*)\[\s*({_ITEM}(?:\s*[,;]\s*{_ITEM})*)\s*\]")
_PARTIAL_MARKER = re.compile(r"\[\s*(?:Q(?:u(?:e(?:l(?:l(?:e)?)?)?)?)?)?\s*[\d\s,;\-–]*(?:Quelle\s*[\d\s,;\-–]*)*$")


@dataclass
class MarkerRewriter:
    """Checks the [n] markers of a model answer while it streams. Known sources are renumbered in order of first
    use, unknown markers are dropped (with the whitespace before them) and reported. Text that might still become
    a marker (an open "[" or trailing whitespace) is held back until the next piece, so the streamed text is
    exactly the final text."""

    valid: set[int]
    mapping: dict[int, int] = field(default_factory=dict)  # number given by the model -> number shown
    checked: int = 0
    removed: int = 0
    invalid: list[int] = field(default_factory=list)
    _buffer: str = ""
    _started: bool = False
    emitted: str = ""

    def feed(self, text: str) -> str:
        self._buffer += text
        hold = len(self._buffer)
        bracket = self._buffer.rfind("[")
        if bracket >= 0 and len(self._buffer) - bracket <= 40 and _PARTIAL_MARKER.fullmatch(self._buffer[bracket:]):
            hold = bracket
        while hold > 0 and self._buffer[hold - 1].isspace():
            hold -= 1
        ready, self._buffer = self._buffer[:hold], self._buffer[hold:]
        return self._emit(ready)

    def finish(self) -> str:
        ready, self._buffer = self._buffer.rstrip(), ""
        return self._emit(ready)

    def _emit(self, ready: str) -> str:
        out = _MARKER.sub(self._replace, ready)
        if not self._started:
            out = out.lstrip()
            self._started = bool(out)
        self.emitted += out
        return out

    def _replace(self, match: re.Match[str]) -> str:
        kept: list[str] = []
        for number in _marker_numbers(match.group(2)):
            self.checked += 1
            if number in self.valid:
                new = self.mapping.setdefault(number, len(self.mapping) + 1)
                marker = f"[{new}]"
                if marker not in kept:
                    kept.append(marker)
            else:
                self.removed += 1
                self.invalid.append(number)
        return match.group(1) + "".join(sorted(kept, key=lambda m: int(m[1:-1]))) if kept else ""

    def verification(self) -> dict[str, Any]:
        return {"markers_checked": self.checked, "markers_removed": self.removed,
                "invalid_markers": list(self.invalid), "uncited": not self.mapping}


def _marker_numbers(items: str) -> list[int]:
    numbers: list[int] = []
    for first, last in re.findall(r"(\d{1,3})(?:\s*[-–]\s*(\d{1,3}))?", items):
        start, end = int(first), int(last or first)
        numbers.extend(range(start, end + 1) if 0 <= end - start <= 20 else [start, end])
    return numbers


def verify_citations(text: str, valid: set[int]) -> tuple[str, MarkerRewriter]:
    """Non-streaming form of MarkerRewriter: (checked text, rewriter with mapping and counts)."""
    rewriter = MarkerRewriter(valid)
    out = rewriter.feed(text) + rewriter.finish()
    return out, rewriter


_UNIT = re.compile(r"[^.!?]*?(?:[.!?]+(?:\s*\[\d+\])*|(?:\s*\[\d+\])+(?:[.!?]+)?|$)", re.S)


def citing_texts(answer: str) -> dict[int, list[str]]:
    """For every marker number, the answer text (without markers) of the sentences or clauses carrying it."""
    result: dict[int, list[str]] = {}
    for match in _UNIT.finditer(answer):
        unit = match.group(0)
        numbers = [int(n) for n in re.findall(r"\[(\d+)\]", unit)]
        text = _ANY_MARKER.sub("", unit).strip(" \n\t,;:")
        if not numbers or not text:
            continue
        for number in dict.fromkeys(numbers):
            result.setdefault(number, []).append(text)
    return result


def _overlap(query_terms: set[str], text: str) -> float:
    if not query_terms:
        return 0.0
    return len(query_terms & set(analyze(text))) / len(query_terms)


def best_snippets(
    embeddings: StadtretterEmbeddings, cited: list[tuple[SearchHit, list[str]]], max_sentences: int = 3
) -> list[tuple[str, tuple[float, float] | None]]:
    """For each (chunk, answer sentences citing it): the chunk sentences that best match those answer sentences,
    as text that stands in the chunk, and the transcript cue when they all come from one cue."""
    per_chunk = [chunk_sentences(hit, 0) for hit, _ in cited]
    all_sentences = [s.text for sentences in per_chunk for s in sentences]
    all_claims = [claim for _, claims in cited for claim in claims]
    sentence_vectors = embeddings.embed_passages(all_sentences) if all_sentences else None
    claim_vectors = embeddings.embed_queries(all_claims) if all_claims else None
    out: list[tuple[str, tuple[float, float] | None]] = []
    s_offset = c_offset = 0
    for (hit, claims), sentences in zip(cited, per_chunk):
        if not sentences or not claims or sentence_vectors is None or claim_vectors is None:
            out.append((_lead(hit.text), None))
            s_offset += len(sentences)
            c_offset += len(claims)
            continue
        vectors = sentence_vectors[s_offset : s_offset + len(sentences)]
        chosen: dict[int, Sentence] = {}
        for index, claim in enumerate(claims):
            cosines = vectors @ claim_vectors[c_offset + index]
            terms = set(analyze(claim))
            scores = [float(c) + 0.1 * _overlap(terms, s.text) for c, s in zip(cosines, sentences)]
            best = int(np.argmax(scores))
            chosen.setdefault(best, sentences[best])
            if len(chosen) >= max_sentences:
                break
        s_offset += len(sentences)
        c_offset += len(claims)
        picked = sorted(chosen.values(), key=lambda s: s.position)
        cues = {s.cue for s in picked}
        cue = picked[0].cue if len(cues) == 1 and hit.metadata.get("type") == "webtalk" else None
        out.append((_snippet(hit.text, picked), cue))
    return out


def build_citations(
    embeddings: StadtretterEmbeddings, text: str, sources: list[PackedSource], rewriter: MarkerRewriter
) -> list[Citation]:
    """Citations numbered as in the checked text; all given sources when the answer cites none."""
    if rewriter.mapping:
        by_new = sorted(((new, old) for old, new in rewriter.mapping.items()))
        claims = citing_texts(text)
        cited = [(sources[old - 1].hit, claims.get(new) or [strip_markers(text)]) for new, old in by_new]
        numbers = [new for new, _ in by_new]
    else:
        cited = [(source.hit, [strip_markers(text)]) for source in sources]
        numbers = [source.n for source in sources]
    snippets = best_snippets(embeddings, cited)
    return [citation_for(n, hit, snippet, cue) for n, (hit, _), (snippet, cue) in zip(numbers, cited, snippets)]


def uncited_suffix(sources: list[PackedSource]) -> str:
    listing = ", ".join(f"[{s.n}] „{s.title}“ ({s.locator})" for s in sources)
    return "\n\n" + render("llm_uncited.txt", sources=listing)


# --- the LLM answerer -------------------------------------------------------------------------------------------


def describe_error(exc: BaseException) -> str:
    """Short log description of a model failure (not shown to users)."""
    status = getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)
    return f"{type(exc).__name__}" + (f" (HTTP {status})" if status else "") + f": {exc}"


class LLMAnswerer:
    def __init__(self, model: Any, extractive: ExtractiveAnswerer, embeddings: StadtretterEmbeddings,
                 context_chars: int) -> None:
        self.model = model
        self.extractive = extractive
        self.embeddings = embeddings
        self.context_chars = context_chars

    def condense(self, question: str, history_text: str) -> str:
        """The follow-up rewritten by the model into a standalone question (raises on model errors)."""
        messages = condense_prompt().format_messages(history=history_text, question=question)
        return message_text(self.model.invoke(messages))

    def generate(
        self, question: str, query: str, hits: list[SearchHit], history: list[dict[str, str]], streaming: bool
    ) -> Generator[Event, None, Answer]:
        """Yields ("token", {"text"}) events when streaming; returns the final Answer (mode "llm", or the
        extractive answer when abstaining or after a model failure)."""
        if not hits:
            return self.extractive.run(question, query=query, hits=hits)
        with stage("sentence_selection"):  # the same evidence and answerability as the extractive answer
            selection = self.extractive.select(query, hits)
        if not selection.answerable:
            answer = self.extractive.run(question, query=query, hits=hits, selection=selection)
            yield from stream_text(answer.answer, streaming)
            return answer
        sources, context = pack_context(hits, self.context_chars)
        if not sources:
            return (yield from self.fallback(question, query, hits, streaming, "no source fits the context budget",
                                             selection))
        messages = answer_prompt().format_messages(
            sources=context, question=question, history=history_messages(history)
        )
        rewriter = MarkerRewriter({s.n for s in sources})
        llm_started = time.perf_counter()
        try:
            if streaming:
                for n, chunk in enumerate(self.model.stream(messages)):
                    if n == 0:
                        record_stage("llm_first_token", time.perf_counter() - llm_started)
                    piece = rewriter.feed(message_text(chunk))
                    if piece:
                        yield "token", {"text": piece}
            else:
                rewriter.feed(message_text(self.model.invoke(messages)))
            tail = rewriter.finish()
        except Exception as exc:  # any model, HTTP or timeout error: the extractive answer instead
            # After a failure mid-answer the fallback is not streamed: done.answer replaces the partial text.
            partial = bool(rewriter.emitted)
            return (yield from self.fallback(question, query, hits, streaming and not partial, describe_error(exc),
                                             selection))
        finally:
            record_stage("llm_total", time.perf_counter() - llm_started)
        if tail and streaming:
            yield "token", {"text": tail}
        text = rewriter.emitted
        if not text.strip():
            return (yield from self.fallback(question, query, hits, streaming, "empty model answer", selection))
        if not rewriter.mapping:
            suffix = uncited_suffix(sources)
            text += suffix
            if streaming:
                yield "token", {"text": suffix}
        citations = build_citations(self.embeddings, text, sources, rewriter)
        return caution(Answer(question, text, citations, abstained=False, query=query, mode="llm",
                              verification=rewriter.verification(), answerability=round(selection.probability, 4)),
                       selection)

    def fallback(self, question: str, query: str, hits: list[SearchHit], streaming: bool,
                 reason: str, selection: Selection | None = None) -> Generator[Event, None, Answer]:
        logger.warning("LLM-Antwort nicht möglich, extraktive Antwort statt dessen: %s", reason)
        answer = fallback_answer(self.extractive, question, query, hits, selection)
        yield from stream_text(answer.answer, streaming)
        return answer


def fallback_answer(extractive: ExtractiveAnswerer, question: str, query: str, hits: list[SearchHit],
                    selection: Selection | None = None) -> Answer:
    LLM_FALLBACKS.inc()
    answer = extractive.run(question, query=query, hits=hits, selection=selection)
    fallback = render("llm_fallback_notice.txt")  # first: it explains why the answer reads as it does
    answer.notice = f"{fallback} {answer.notice}" if answer.notice else fallback
    return answer


_PIECE = re.compile(r".+?(?:[.!?…](?:\s*\[\d+\])*(?:\s+|$)|$)", re.S)


def text_pieces(text: str) -> list[str]:
    """Sentence-sized pieces (markers stay with their sentence) whose concatenation is exactly the text."""
    return [m.group(0) for m in _PIECE.finditer(text) if m.group(0)]


def stream_text(text: str, streaming: bool) -> Generator[Event, None, None]:
    if streaming:
        for piece in text_pieces(text):
            yield "token", {"text": piece}
