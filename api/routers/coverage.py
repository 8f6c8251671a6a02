"""The coverage map for trainers: topics × EKT phase × source type, with gaps."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.auth import AUTH_RESPONSES, TrainerDep
from api.deps import ServicesDep

router = APIRouter(tags=["Werkstatt"], responses=AUTH_RESPONSES)


@router.get("/coverage", summary="Themenlandkarte: Themen × EKT-Phase × Quellentyp, mit Lücken")
def coverage(principal: TrainerDep, services: ServicesDep) -> dict[str, Any]:
    return services.coverage.coverage().to_dict()
