"""How a search hit's source is shown: the same shape in the API's JSON and the CLI's `--json` and text output."""

from __future__ import annotations

from pydantic import BaseModel, Field

from core.vocabulary import PHASES
from retriever.answer import locator_for
from retriever.models import SearchHit


class SourceInfo(BaseModel):
    source_id: str
    title: str
    type: str
    url: str | None = None
    date: str | None = None
    locator: str | None = None
    page: int | None = None
    start: float | None = None
    end: float | None = None
    section: str | None = None
    phase: str | None = None
    phase_scores: dict[str, float] = Field(default_factory=dict)


def source_info(hit: SearchHit) -> SourceInfo:
    meta = hit.metadata
    return SourceInfo(
        source_id=str(meta.get("source_id", "")),
        title=str(meta.get("title", "")),
        type=str(meta.get("type", "")),
        url=meta.get("url"),
        date=meta.get("date"),
        locator=locator_for(meta),
        page=meta.get("page"),
        start=meta.get("start"),
        end=meta.get("end"),
        section=meta.get("section"),
        phase=meta.get("phase"),
        phase_scores={p: float(meta[f"phase_{p}"]) for p in PHASES if f"phase_{p}" in meta},
    )
