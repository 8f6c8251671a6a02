"""Request and response models of the login, `GET /v1/me` and the key administration."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class Me(BaseModel):
    authenticated: bool = Field(description="false: anonym (Öffentlichkeit)")
    kind: str = Field(description="anonymous | user | key")
    name: str
    role: str | None = Field(description="trainer | admin, sonst null")
    role_label: str | None = Field(description="deutsche Bezeichnung der Rolle")
    scopes: list[str]
    csrf_token: str | None = Field(description="bei Anmeldung im Browser: als X-CSRF-Token bei jedem Schreibzugriff")
    public_access: bool = Field(description="dürfen Anonyme fragen und suchen (STADTRETTER_PUBLIC_ACCESS)?")


class KeyInfo(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="Anfang des Schlüssels, zum Wiedererkennen")
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None


class KeyList(BaseModel):
    keys: list[KeyInfo]
    scopes: dict[str, str] = Field(description="alle möglichen Rechte mit deutscher Beschreibung")


class KeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="wofür, z. B. „Akademie-Website“")
    scopes: list[str] = Field(min_length=1, description="Rechte: ask, search, trainer, admin")


class KeyCreated(KeyInfo):
    key: str = Field(description="der Schlüssel – wird nur dieses eine Mal angezeigt")
