"""API keys for machines (the Akademie website, a CMS hook). A key is shown once at creation; the database keeps
its SHA-256 hash (a key has 256 random bits, so a slow password hash would only cost time per request) and a short
prefix to recognise it in lists."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import DateTime, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from core.database import Base, Database
from services.accounts import token_hash

KEY_PREFIX = "sr_"
SHOWN_PREFIX_LENGTH = 10
# What a key may do. ask/search: the public routes when STADTRETTER_PUBLIC_ACCESS=false; trainer/admin: act with
# that role (e.g. a CMS hook that uploads documents).
SCOPES = {
    "ask": "Fragen stellen (und Feedback senden)",
    "search": "Suchen, Quellen und Phasen lesen",
    "trainer": "Rolle Trainer*in: Feedback und Fragenprotokoll lesen",
    "admin": "Rolle Administrator*in: alles",
}
LAST_USED_RESOLUTION = timedelta(minutes=1)  # at most one write per key and minute, not one per request


class ApiKeyError(ValueError):
    """Invalid input; the message is German and names the field."""


class ApiKeyConflict(ApiKeyError):
    """A key with this name exists."""


class ApiKeyNotFound(ApiKeyError):
    """No such key."""


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class NewApiKey:
    key: str  # the secret, shown once
    info: ApiKey


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def _info(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id, name=row.name, prefix=row.prefix, scopes=tuple(row.scopes.split(",")),
        created_at=_aware(row.created_at), last_used_at=_aware(row.last_used_at),
    )


def parse_scopes(scopes: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    items = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    cleaned = tuple(dict.fromkeys(item.strip() for item in items if item.strip()))
    if not cleaned:
        raise ApiKeyError(f"scope: mindestens ein Recht angeben ({', '.join(SCOPES)})")
    unknown = [scope for scope in cleaned if scope not in SCOPES]
    if unknown:
        raise ApiKeyError(f"scope: unbekannt {', '.join(unknown)}; erlaubt sind {', '.join(SCOPES)}")
    return cleaned


class ApiKeyService:
    def __init__(self, database: Database) -> None:
        self.database = database

    def create(self, name: str, scopes: str | list[str] | tuple[str, ...]) -> NewApiKey:
        name = (name or "").strip()
        if not 1 <= len(name) <= 100:
            raise ApiKeyError("name: 1–100 Zeichen")
        parsed = parse_scopes(scopes)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self.database.session() as db:
            if db.scalar(select(ApiKeyRow).where(ApiKeyRow.name == name)) is not None:
                raise ApiKeyConflict(f"name: einen Schlüssel '{name}' gibt es schon")
            row = ApiKeyRow(
                name=name, prefix=key[:SHOWN_PREFIX_LENGTH], key_hash=token_hash(key), scopes=",".join(parsed),
                created_at=datetime.now(UTC), last_used_at=None,
            )
            db.add(row)
            db.flush()
            return NewApiKey(key=key, info=_info(row))

    def list(self) -> list[ApiKey]:
        with self.database.session() as db:
            return [_info(row) for row in db.scalars(select(ApiKeyRow).order_by(ApiKeyRow.name))]

    def revoke(self, name_or_id: str | int) -> ApiKey:
        with self.database.session() as db:
            if isinstance(name_or_id, int):
                row = db.get(ApiKeyRow, name_or_id)
            else:
                row = db.scalar(select(ApiKeyRow).where(ApiKeyRow.name == name_or_id))
            if row is None:
                raise ApiKeyNotFound(f"Schlüssel '{name_or_id}' gibt es nicht")
            info = _info(row)
            db.delete(row)
            return info

    def authenticate(self, key: str) -> ApiKey | None:
        """The key's record when it exists (and note when it was used), else None."""
        if not key.startswith(KEY_PREFIX) or len(key) > 200:
            return None
        with self.database.session() as db:
            row = db.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == token_hash(key)))
            if row is None:
                return None
            now = datetime.now(UTC)
            last = _aware(row.last_used_at)
            if last is None or now - last >= LAST_USED_RESOLUTION:
                row.last_used_at = now
            return _info(row)
