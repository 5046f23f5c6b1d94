"""Console accounts: a name, a role, extra grants and an argon2 password hash, in the campaign
database (table ``console_users``, created if missing: it only ever gains rows).

A password is never stored, logged or returned; a disabled account keeps its row (who did what
stays attributable) but can no longer log in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from config.database import UtcDateTime
from config.errors import IvrError
from console.roles import check_grants, check_role, permissions_of

METADATA = MetaData()
USERS = Table(
    "console_users",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(32), nullable=False),
    Column("grants", String(400), nullable=False, default=""),
    Column("password_hash", String(200), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("password_changed_at", UtcDateTime, nullable=False),
)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024


class UserError(IvrError):
    """A user could not be added or changed: bad name, weak password, unknown user."""


@dataclass(frozen=True)
class User:
    """A console user as pages see it: never with the password hash."""

    name: str
    role: str
    grants: frozenset[str] = frozenset()
    disabled: bool = False

    @property
    def permissions(self) -> frozenset[str]:
        return permissions_of(self.role, self.grants)

    def can(self, permission: str) -> bool:
        return permission in self.permissions


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise UserError(
            f"user name {name[:80]!r}: use 1-64 letters, digits, '.', '_', '@' or '-', starting with"
            " a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password too short: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"password too long: at most {MAX_PASSWORD} characters")
    return password


class UserStore:
    """The ``console_users`` table; every method is one short transaction."""

    def __init__(self, engine: Engine, hasher: PasswordHasher | None = None) -> None:
        """``hasher``: argon2id with the library's memory-hard defaults unless given (tests)."""
        self.engine = engine
        self.hasher = hasher or PasswordHasher()
        self._dummy_hash = ""
        METADATA.create_all(engine, checkfirst=True)

    def add(
        self, name: str, role: str, password: str, now: datetime, grants: frozenset[str] = frozenset()
    ) -> User:
        check_name(name)
        check_role(role)
        grants = check_grants(grants)
        digest = self.hasher.hash(check_password(password))
        values = dict(
            name=name,
            role=role,
            grants=",".join(sorted(grants)),
            password_hash=digest,
            disabled=False,
            created_at=now,
            password_changed_at=now,
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(USERS).values(**values))
        except IntegrityError:
            raise UserError(f"user {name!r} already exists (users passwd changes a password)") from None
        return User(name, role, grants)

    def get(self, name: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(USERS.c.name, USERS.c.role, USERS.c.grants, USERS.c.disabled).where(
                    USERS.c.name == name
                )
            ).one_or_none()
        return None if row is None else _user(row.name, row.role, row.grants, row.disabled)

    def users(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(USERS.c.name, USERS.c.role, USERS.c.grants, USERS.c.disabled).order_by(USERS.c.name)
            ).all()
        return [_user(r.name, r.role, r.grants, r.disabled) for r in rows]

    def disable(self, name: str) -> None:
        with self.engine.begin() as conn:
            if conn.execute(update(USERS).where(USERS.c.name == name).values(disabled=True)).rowcount == 0:
                raise UserError(f"no user {name!r} (users list shows them)")

    def set_password(self, name: str, password: str, now: datetime) -> None:
        digest = self.hasher.hash(check_password(password))
        with self.engine.begin() as conn:
            done = conn.execute(
                update(USERS)
                .where(USERS.c.name == name)
                .values(password_hash=digest, password_changed_at=now)
            )
            if done.rowcount == 0:
                raise UserError(f"no user {name!r} (users list shows them)")

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when ``password`` is theirs and the account is enabled, else None.

        An unknown name still costs one hash check, so timing does not tell which names exist.
        """
        with self.engine.connect() as conn:
            row = conn.execute(select(USERS).where(USERS.c.name == name)).one_or_none()
        if row is None and not self._dummy_hash:
            self._dummy_hash = self.hasher.hash("not a password of anyone")
        digest = self._dummy_hash if row is None else row.password_hash
        ok: bool
        try:
            ok = self.hasher.verify(digest, password[:MAX_PASSWORD])
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or row is None or row.disabled:
            return None
        if self.hasher.check_needs_rehash(digest):
            with self.engine.begin() as conn:
                conn.execute(
                    update(USERS).where(USERS.c.name == name).values(password_hash=self.hasher.hash(password))
                )
        return _user(row.name, row.role, row.grants, row.disabled)


def _user(name: str, role: str, grants: str, disabled: bool) -> User:
    return User(name, role, frozenset(g for g in grants.split(",") if g), bool(disabled))
