"""Who looked at which calls: every show, list, search, export, hold, release and purge.

Each ``recordings`` command that reads or changes calls appends one row to
``recording_access_log`` *before* it prints or writes anything: if the row cannot be written
the command refuses (no access without a trace). A row holds who (``--as NAME`` or the OS
user; the OS user is always kept too, so ``--as`` names a person without hiding the account),
when, what (the action and its filters or reason, never a number in clear), which calls, and
from where (host, terminal, the SSH client address). The table is append-only: triggers refuse
UPDATE and DELETE (and TRUNCATE on PostgreSQL).
"""

from __future__ import annotations

import json
import os
import pwd
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import SQLAlchemyError

from recordings.database import IndexDatabaseError, database_error
from recordings.errors import RecordingError
from recordings.schema import access_log
from recordings.sidecar import iso

ACTIONS = (
    "list",
    "show",
    "search",
    "export",
    "hold",
    "release",
    "purge",
    "reindex",
    "audit",
    "play",
    "supervise",
)
MAX_LOGGED_IDS = 10_000
"""A row names at most this many calls (a ``list`` of a huge archive); ``call_count`` is exact."""


@dataclass(frozen=True)
class Accessor:
    """Who is running the command, and from where."""

    actor: str
    os_user: str
    host: str
    tty: str
    remote: str
    pid: int


def _os_user() -> str:
    try:
        name = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        name = f"uid {os.geteuid()}"
    sudo = os.environ.get("SUDO_USER")
    return f"{name} (sudo by {sudo})" if sudo and sudo != name else name


def _tty() -> str:
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd):
                return os.ttyname(fd)
        except OSError:
            continue
    return ""


def check_actor(name: str) -> str:
    text = name.strip()
    if not text or len(text) > 200 or any(ch < " " for ch in text):
        raise RecordingError(f"--as {name[:40]!r}: give a person's name or id (1-200 printable characters)")
    return text


def current_accessor(as_name: str | None = None) -> Accessor:
    """The person (``--as``, else the OS user) and where they run the command."""
    os_user = _os_user()
    remote = (os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_CLIENT") or "").split(" ")[0]
    return Accessor(
        actor=check_actor(as_name) if as_name is not None else os_user.split(" ", 1)[0],
        os_user=os_user[:200],
        host=socket.gethostname()[:255],
        tty=_tty()[:200],
        remote=remote[:200],
        pid=os.getpid(),
    )


@dataclass(frozen=True)
class AccessEntry:
    id: int
    at: datetime
    actor: str
    os_user: str
    host: str
    tty: str
    remote: str
    pid: int
    action: str
    call_count: int
    call_ids: tuple[str, ...]
    detail: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The ``recordings audit --json`` object; field names are a public contract."""
        return {
            "id": self.id,
            "at": iso(self.at),
            "actor": self.actor,
            "os_user": self.os_user,
            "host": self.host,
            "tty": self.tty,
            "remote": self.remote,
            "pid": self.pid,
            "action": self.action,
            "call_count": self.call_count,
            "call_ids": list(self.call_ids),
            "detail": self.detail,
        }


def record_access(
    engine: Engine,
    who: Accessor,
    action: str,
    call_ids: Sequence[str] = (),
    *,
    detail: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> None:
    """Append one row; raises :class:`IndexDatabaseError` (and the command must stop) on failure."""
    if action not in ACTIONS:
        raise ValueError(f"unknown access action {action!r}")
    ids = list(dict.fromkeys(call_ids))
    row = {
        "at": now or datetime.now(UTC),
        "actor": who.actor,
        "os_user": who.os_user,
        "host": who.host,
        "tty": who.tty,
        "remote": who.remote,
        "pid": who.pid,
        "action": action,
        "call_count": len(ids),
        "call_ids": json.dumps(ids[:MAX_LOGGED_IDS]),
        "detail": json.dumps(dict(detail or {}), ensure_ascii=False, sort_keys=True, default=str),
    }
    try:
        with engine.begin() as conn:
            conn.execute(insert(access_log), row)
    except SQLAlchemyError as exc:
        error = database_error(exc, engine, f"recording this {action} in the access log")
        raise IndexDatabaseError(f"{error}; refusing to {action} calls without an audit trail") from exc


def read_access_log(
    engine: Engine, since: datetime | None = None, limit: int | None = None
) -> list[AccessEntry]:
    """Rows oldest first (the newest ``limit`` of them when given)."""
    query = select(access_log)
    if since is not None:
        query = query.where(access_log.c.at >= since)
    query = query.order_by(access_log.c.id.desc() if limit else access_log.c.id)
    if limit:
        query = query.limit(limit)
    try:
        with engine.connect() as conn:
            rows = list(conn.execute(query).mappings())
    except SQLAlchemyError as exc:
        raise database_error(exc, engine, "reading the access log") from exc
    entries = [
        AccessEntry(
            id=row["id"],
            at=row["at"],
            actor=row["actor"],
            os_user=row["os_user"],
            host=row["host"],
            tty=row["tty"],
            remote=row["remote"],
            pid=row["pid"],
            action=row["action"],
            call_count=row["call_count"],
            call_ids=tuple(json.loads(row["call_ids"])),
            detail=json.loads(row["detail"]),
        )
        for row in rows
    ]
    return sorted(entries, key=lambda entry: entry.id)
