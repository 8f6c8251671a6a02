"""Request and response models of the web chat's own endpoints (feedback). Field names English, messages German."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class FeedbackCitation(BaseModel):
    """What the participant saw of one citation; unknown fields sent by the client are dropped."""

    model_config = ConfigDict(extra="ignore", strict=True)  # strict: `"n": true` is no citation number

    n: int | None = None
    source_id: str | None = Field(default=None, max_length=200)
    title: str | None = Field(default=None, max_length=500)
    type: str | None = Field(default=None, max_length=20)
    locator: str | None = Field(default=None, max_length=200)
    chunk_id: str | None = Field(default=None, max_length=200)
    url: str | None = Field(default=None, max_length=2000)
    snippet: str | None = Field(default=None, max_length=4000)


class FeedbackRequest(BaseModel):
    question: str = Field(min_length=1, max_length=2000, description="Die gestellte Frage")
    answer: str = Field(max_length=20000, description="Die angezeigte Antwort")
    citations: list[FeedbackCitation] = Field(default_factory=list, max_length=50)
    rating: Literal["up", "down"] = Field(description="Daumen hoch (up) oder runter (down)")
    comment: str | None = Field(default=None, max_length=2000, description="Optionaler Kommentar")
    conversation_id: str | None = Field(default=None, max_length=64)

    @field_validator("comment")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None


class FeedbackItem(BaseModel):
    id: int
    created_at: str = Field(description="Zeitpunkt (UTC, ISO 8601)")
    question: str
    answer: str
    citations: list[FeedbackCitation]
    rating: Literal["up", "down"]
    comment: str | None = None
    conversation_id: str | None = None


class FeedbackSaved(BaseModel):
    id: int
    created_at: str
    message: str = "Danke für Ihr Feedback!"


class FeedbackList(BaseModel):
    feedback: list[FeedbackItem]
    total: int
