"""Accounts for people (trainers and admins): Argon2id password hashes, browser sessions stored in the state
database. Passwords are never stored or logged in clear; the session cookie carries a random token of which only
the SHA-256 hash is stored, so a leaked database does not yield usable sessions."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from functools import cached_property
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import DateTime, ForeignKey, Integer, String, delete, func, select
from sqlalchemy.orm import Mapped, mapped_column

from core.database import Base, Database

Role = Literal["trainer", "admin"]
ROLES: tuple[str, ...] = get_args(Role)
ROLE_LABELS = {"trainer": "Trainer*in", "admin": "Administrator*in"}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9._@-]{2,64}$")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024  # hashing megabytes of "password" would be a cheap denial of service


class AccountError(ValueError):
    """Invalid input or unknown account; the message is German and names the field."""


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    password_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LoginSession(Base):
    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class Account:
    """What callers see of a user: never the hash."""

    id: int
    name: str
    role: str
    created_at: datetime


@dataclass(frozen=True)
class ActiveSession:
    account: Account
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class NewSession:
    token: str  # goes into the cookie, shown nowhere else
    session: ActiveSession


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    """SQLite returns naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _account(user: User) -> Account:
    return Account(id=user.id, name=user.name, role=user.role, created_at=_aware(user.created_at))


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name or ""):
        raise AccountError(
            "Benutzername: 2–64 Zeichen aus Buchstaben (ohne Umlaute), Ziffern und . _ @ - erlaubt"
        )
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"Rolle '{role}' gibt es nicht; erlaubt sind: {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"Passwort: mindestens {MIN_PASSWORD_LENGTH} Zeichen")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"Passwort: höchstens {MAX_PASSWORD_LENGTH} Zeichen")
    return password


class AccountService:
    """Users, passwords and browser sessions."""

    def __init__(self, database: Database, session_lifetime: timedelta, hasher: PasswordHasher | None = None) -> None:
        self.database = database
        self.session_lifetime = session_lifetime
        self.hasher = hasher or PasswordHasher()  # argon2-cffi's default type is Argon2id (RFC 9106 profile)

    @cached_property
    def _dummy_hash(self) -> str:
        """Verified against when the name is unknown, so a failed login takes as long for both cases."""
        return self.hasher.hash(secrets.token_urlsafe(16))

    # Users
    def add(self, name: str, role: str, password: str) -> Account:
        check_name(name)
        check_role(role)
        check_password(password)
        with self.database.session() as db:
            if db.scalar(select(User).where(User.name == name)) is not None:
                raise AccountError(f"Benutzer '{name}' gibt es schon")
            now = _now()
            user = User(
                name=name, role=role, password_hash=self.hasher.hash(password),
                created_at=now, password_changed_at=now,
            )
            db.add(user)
            db.flush()
            return _account(user)

    def list(self) -> list[Account]:
        with self.database.session() as db:
            return [_account(user) for user in db.scalars(select(User).order_by(User.name))]

    def get(self, name: str) -> Account | None:
        with self.database.session() as db:
            user = db.scalar(select(User).where(User.name == name))
            return _account(user) if user else None

    def remove(self, name: str) -> None:
        with self.database.session() as db:
            user = self._user(db, name)
            admins = db.scalar(select(func.count()).select_from(User).where(User.role == "admin"))
            if user.role == "admin" and admins == 1:
                raise AccountError(
                    f"'{name}' ist das letzte Administrator-Konto und kann nicht gelöscht werden; "
                    "bitte zuerst ein anderes anlegen"
                )
            db.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
            db.delete(user)

    def set_password(self, name: str, password: str) -> None:
        """New password; every open session of the account ends."""
        check_password(password)
        with self.database.session() as db:
            user = self._user(db, name)
            user.password_hash = self.hasher.hash(password)
            user.password_changed_at = _now()
            db.execute(delete(LoginSession).where(LoginSession.user_id == user.id))

    def count_admins(self) -> int:
        with self.database.session() as db:
            return db.scalar(select(func.count()).select_from(User).where(User.role == "admin")) or 0

    def authenticate(self, name: str, password: str) -> Account | None:
        """The account when name and password match, else None (no hint which of the two was wrong)."""
        if len(password) > MAX_PASSWORD_LENGTH:
            return None
        with self.database.session() as db:
            user = db.scalar(select(User).where(User.name == name))
            try:
                self.hasher.verify(user.password_hash if user else self._dummy_hash, password)
            except (VerificationError, InvalidHashError):
                return None
            if user is None:
                return None
            if self.hasher.check_needs_rehash(user.password_hash):
                user.password_hash = self.hasher.hash(password)
            return _account(user)

    # Sessions
    def start_session(self, account: Account) -> NewSession:
        token = secrets.token_urlsafe(32)
        now = _now()
        row = LoginSession(
            token_hash=token_hash(token), user_id=account.id, csrf_token=secrets.token_urlsafe(32),
            created_at=now, expires_at=now + self.session_lifetime,
        )
        with self.database.session() as db:
            db.execute(delete(LoginSession).where(LoginSession.expires_at < now))
            db.add(row)
        return NewSession(token=token, session=ActiveSession(account, row.csrf_token, row.expires_at))

    def session(self, token: str) -> ActiveSession | None:
        """The live session for a cookie token, or None (unknown, expired, account removed)."""
        with self.database.session() as db:
            row = db.scalar(select(LoginSession).where(LoginSession.token_hash == token_hash(token)))
            if row is None or _aware(row.expires_at) <= _now():
                return None
            user = db.get(User, row.user_id)
            if user is None:
                return None
            return ActiveSession(_account(user), row.csrf_token, _aware(row.expires_at))

    def end_session(self, token: str) -> None:
        with self.database.session() as db:
            db.execute(delete(LoginSession).where(LoginSession.token_hash == token_hash(token)))

    @staticmethod
    def _user(db, name: str) -> User:  # noqa: ANN001 - sqlalchemy Session
        user = db.scalar(select(User).where(User.name == name))
        if user is None:
            raise AccountError(f"Benutzer '{name}' gibt es nicht")
        return user
