"""Request and response models of the public API (field names in English, messages in German)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from core.vocabulary import Phase, SearchMode, SourceType
from retriever.models import SearchFilters
from services.presenters import SourceInfo


# A question needs one character that is not blank on either side: Python's str.isspace() (the server strips the
# question) and \s of the JSON-Schema regex dialect (ECMA 262: clients, Schemathesis) differ, so the schema's pattern
# lists both by code point (\uXXXX reads the same in Python, Rust (pydantic-core) and ECMA regexes).
_BLANK = sorted({c for c in map(chr, range(0x10000)) if c.isspace()} | {"\ufeff"})
NOT_BLANK = "[^" + "".join(f"\\u{ord(c):04x}" for c in _BLANK) + "]"


class Filters(BaseModel):
    type: list[SourceType] = Field(default_factory=list, description="Quellentypen")
    phase: list[Phase] = Field(default_factory=list, description="EKT-Phasen")
    date_from: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    date_to: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")

    @field_validator("type", "phase", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    def to_search(self) -> SearchFilters:
        return SearchFilters(types=list(self.type), phases=list(self.phase), date_from=self.date_from, date_to=self.date_to)


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=2000)
    k: int = Field(default=8, ge=1, le=50)
    filters: Filters | None = None
    mode: SearchMode | None = None
    rerank: bool = Field(
        default=False,
        description="Die ersten Treffer nach ihrem besten Satz ordnen, wie in Antworten (genauer, beim ersten Mal langsamer).",
    )


class SearchResult(BaseModel):
    chunk_id: str
    text: str
    score: float
    source: SourceInfo


class SearchResponse(BaseModel):
    query: str
    mode: str
    results: list[SearchResult]


class HistoryMessage(BaseModel):
    role: Literal["user", "assistant"]
    content: str = Field(max_length=8000)


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=2000, pattern=NOT_BLANK)
    filters: Filters | None = None
    mode: SearchMode | None = None
    history: list[HistoryMessage] = Field(default_factory=list, max_length=40)
    conversation_id: str | None = Field(default=None, max_length=64)
    stream: bool = False

    @field_validator("question", mode="before")
    @classmethod
    def _not_blank(cls, value: object) -> object:
        if isinstance(value, str) and not re.search(NOT_BLANK, value):  # before the pattern: a German message
            raise ValueError("Die Frage darf nicht leer sein")
        return value

    @field_validator("question")
    @classmethod
    def _stripped(cls, value: str) -> str:
        return value.strip()


class CitationOut(BaseModel):
    n: int
    source_id: str
    title: str
    type: str
    url: str | None = None
    locator: str
    snippet: str
    score: float
    page: int | None = None
    start: float | None = None
    end: float | None = None
    section: str | None = None
    date: str | None = None
    chunk_id: str | None = None
    phase: str | None = None
    phase_scores: dict[str, float] = Field(default_factory=dict)


class PhaseOut(BaseModel):
    phase: str
    label: str
    explanation: str
    scores: dict[str, float] = Field(default_factory=dict)


class AskResponse(BaseModel):
    question: str
    answer: str
    citations: list[CitationOut]
    abstained: bool
    query: str | None = None
    phase: PhaseOut | None = None
    mode: str = "extractive"
    notice: str | None = None
    verification: dict | None = None
    conversation_id: str | None = None
    # Character spans [start, end) in `answer` of the numbers, dates, amounts or names that answer the question.
    highlights: list[tuple[int, int]] = Field(default_factory=list)
    answerability: float | None = None  # probability that the sources answer the question (learned model)
    # Answered, but below the caution level: `notice` asks to check the cited passage.
    uncertain: bool = False


class SourceSummary(BaseModel):
    source_id: str
    title: str | None
    type: str | None
    url: str | None = None
    date: str | None = None
    author: str | None = None
    chunk_count: int
    phase: str | None = None
    phase_scores: dict[str, float] = Field(default_factory=dict)


class SourcesResponse(BaseModel):
    sources: list[SourceSummary]


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    store_reachable: bool
    model_loaded: bool
    embedding_model: str | None = None
    chunks: int = 0
    sources: int = 0
    detail: str | None = None


class ReadinessCheckOut(BaseModel):
    name: Literal["store", "model", "data_dir", "lexical_index", "database"]
    ok: bool
    detail: str


class ReadinessResponse(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: list[ReadinessCheckOut]
