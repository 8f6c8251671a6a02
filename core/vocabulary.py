"""The product's one vocabulary: source types, EKT phases, their German labels and colours, search modes.

Python code imports it; the web app gets the same data from the server (`as_dict()`), never a copy of its own.
"""

from __future__ import annotations

from typing import Any, Literal

SourceType = Literal["article", "webtalk", "course"]
SOURCE_TYPES: tuple[SourceType, ...] = ("article", "webtalk", "course")
TYPE_LABELS: dict[str, str] = {"article": "Artikel", "webtalk": "WebTalk", "course": "Kursmaterial"}

Phase = Literal["E", "K", "T"]
PHASES: tuple[Phase, ...] = ("E", "K", "T")
CROSS_PHASE = "übergreifend"
# Column order of every phase distribution: the three phases, then "cross-phase".
PHASE_KEYS: tuple[str, ...] = (*PHASES, CROSS_PHASE)
PHASE_LABELS: dict[str, str] = {
    "E": "Evaluation",
    "K": "Konzeption",
    "T": "Transformation",
    CROSS_PHASE: "Phasenübergreifend",
}
# "zur Evaluation": for German sentences that name a phase ("Die Antwort gehört zur Evaluation").
PHASE_DATIVE: dict[str, str] = {"E": "zur Evaluation", "K": "zur Konzeption", "T": "zur Transformation"}
# Accent, background and text colour per phase; the stylesheet's --sr-E… variables are set from these.
PHASE_COLOURS: dict[str, dict[str, str]] = {
    "E": {"accent": "#1d4ed8", "background": "#e3edff", "text": "#163d8a"},
    "K": {"accent": "#b45309", "background": "#fdf0d5", "text": "#733600"},
    "T": {"accent": "#15803d", "background": "#dff5e7", "text": "#135230"},
    CROSS_PHASE: {"accent": "#6d4fc2", "background": "#ece8f7", "text": "#432d7a"},
}

SearchMode = Literal["hybrid", "dense", "lexical"]
SEARCH_MODES: tuple[SearchMode, ...] = ("hybrid", "dense", "lexical")
SEARCH_MODE_LABELS: dict[str, str] = {"hybrid": "Hybrid", "dense": "Bedeutung (dense)", "lexical": "Stichwörter"}

# Between a document title and its section path ("Titel › Abschnitt › Unterabschnitt").
SECTION_SEP = " › "


def type_label(source_type: str) -> str:
    return TYPE_LABELS.get(source_type, source_type)


def phase_label(phase: str | None) -> str:
    return PHASE_LABELS.get(phase or "", phase or "")


def as_dict() -> dict[str, Any]:
    """The vocabulary as JSON for the web app."""
    return {
        "types": [{"key": key, "label": TYPE_LABELS[key]} for key in SOURCE_TYPES],
        "phases": [
            {"key": key, "label": PHASE_LABELS[key], "colours": PHASE_COLOURS[key]} for key in PHASE_KEYS
        ],
        "cross_phase": CROSS_PHASE,
        "modes": [{"key": key, "label": SEARCH_MODE_LABELS[key]} for key in SEARCH_MODES],
        "section_separator": SECTION_SEP,
    }
