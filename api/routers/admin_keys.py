"""Key administration for admins (the Verwaltung page uses it): list, create (the key is returned once), revoke."""

from __future__ import annotations

from dataclasses import asdict

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from api.auth import AUTH_RESPONSES, AdminDep
from api.auth_schemas import KeyCreate, KeyCreated, KeyInfo, KeyList
from api.deps import ServicesDep
from services.api_keys import SCOPES, ApiKeyConflict, ApiKeyError, ApiKeyNotFound

router = APIRouter(prefix="/admin/keys", tags=["Verwaltung: API-Schlüssel"], responses=AUTH_RESPONSES)


@router.get("", response_model=KeyList, summary="Alle API-Schlüssel (ohne die Schlüssel selbst)")
def list_keys(principal: AdminDep, services: ServicesDep) -> KeyList:
    return KeyList(keys=[KeyInfo(**asdict(key)) for key in services.api_keys.list()], scopes=SCOPES)


@router.post("", response_model=KeyCreated, status_code=201, summary="API-Schlüssel erzeugen (nur einmal sichtbar)",
             responses={409: {"description": "Einen Schlüssel mit diesem Namen gibt es schon"}})
def create_key(body: KeyCreate, principal: AdminDep, services: ServicesDep) -> KeyCreated:
    try:
        created = services.api_keys.create(body.name, body.scopes)
    except ApiKeyConflict as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    except ApiKeyError as exc:  # shaped like every other 422 (the schema's HTTPValidationError)
        field = str(exc).split(":", 1)[0]
        raise HTTPException(status_code=422, detail=[{"type": "value_error", "loc": ["body", field],
                                                       "msg": str(exc)}]) from exc
    return KeyCreated(key=created.key, **asdict(created.info))


@router.delete("/{key_id}", response_model=KeyInfo, summary="API-Schlüssel widerrufen (gilt sofort nicht mehr)",
               responses={404: {"description": "Diesen Schlüssel gibt es nicht"}})
def revoke_key(
    key_id: Annotated[int, Path(ge=1, le=2**31 - 1)],  # INTEGER column: PostgreSQL's range (int4)
    principal: AdminDep, services: ServicesDep,
) -> KeyInfo:
    try:
        return KeyInfo(**asdict(services.api_keys.revoke(key_id)))
    except ApiKeyNotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
