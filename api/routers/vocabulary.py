"""GET /v1/vocabulary: source types, EKT phases (labels, colours) and search modes, so the web app and the widget
use the server's vocabulary instead of copies of their own."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from core import vocabulary

router = APIRouter(tags=["Vokabular"])


@router.get("/vocabulary", summary="Quellentypen, EKT-Phasen und Suchmodi mit deutschen Bezeichnungen")
def get_vocabulary() -> dict[str, Any]:
    return vocabulary.as_dict()
