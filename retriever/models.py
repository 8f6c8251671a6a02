"""Typed inputs and outputs of search and answering, shared by the API, the CLI and the evaluation."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SearchFilters:
    types: list[str] = field(default_factory=list)  # article | webtalk | course
    phases: list[str] = field(default_factory=list)  # E | K | T (primary phase of the chunk)
    date_from: str | None = None  # YYYY-MM-DD inclusive
    date_to: str | None = None

    def is_empty(self) -> bool:
        return not (self.types or self.phases or self.date_from or self.date_to)


@dataclass
class SearchHit:
    """One retrieved chunk with its score and the metadata of its source."""

    chunk_id: str
    text: str
    score: float
    metadata: dict[str, Any]

    @property
    def source_id(self) -> str:
        return str(self.metadata.get("source_id", ""))


@dataclass
class Citation:
    n: int
    source_id: str
    title: str
    type: str
    url: str | None
    locator: str  # German, human readable: "Seite 3", "12:04–13:02", "Abschnitt: Finanzierung"
    snippet: str  # text that stands in the source at that locator
    score: float
    page: int | None = None
    start: float | None = None
    end: float | None = None
    section: str | None = None
    date: str | None = None
    chunk_id: str | None = None
    phase: str | None = None
    phase_scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PhaseTag:
    phase: str  # E | K | T | übergreifend
    label: str  # German label, e.g. "Konzeption"
    explanation: str  # one German line
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class Answer:
    question: str
    answer: str
    citations: list[Citation]
    abstained: bool
    query: str | None = None  # the standalone query actually searched (after follow-up rewriting)
    phase: PhaseTag | None = None
    mode: str = "extractive"  # extractive | llm
    notice: str | None = None  # German notice, e.g. fallback after an LLM error
    verification: dict[str, Any] | None = None  # LLM citation check: markers checked / removed
    conversation_id: str | None = None
    highlights: list[tuple[int, int]] = field(default_factory=list)  # char spans in `answer` that answer the question
    answerability: float | None = None  # the answerability model's probability that the sources answer
    # Answered, but the answerability model is unsure the cited sentences say what was asked: the answer carries a
    # German notice asking to check the cited passage (between the abstention threshold and the caution level).
    uncertain: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
