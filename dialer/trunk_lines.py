"""Trunk-wide limits kept in the database, so any number of dialer processes share them.

Each process's :class:`dialer.pacing.Pacer` only knows its own calls; two ``dial`` processes
with ``max_concurrent_calls: 4`` would put 8 calls on a 4-line trunk. Here a trunk has N rows
in ``trunk_lines``; a call takes a free one (or one whose holder stopped renewing it: a process
that died) before its contact is leased, renews it while the call lasts and frees it when the
call ends. Calls per second are kept the same way in ``trunk_rates``, one row per trunk.

On PostgreSQL the line is chosen ``FOR UPDATE SKIP LOCKED`` (and the rate row locked), so two
processes never take one line; on SQLite every write transaction is ``BEGIN IMMEDIATE``.
Time comes in as aware UTC ``now`` from the caller, like everywhere in the dialer.

    lines = TrunkLines(engine, trunk_key(settings.dialer.trunk_uri), 4, calls_per_second=2.0)
    hold = lines.acquire("host:pid:0", now)      # None: every line busy (or too soon)
    ...
    lines.release(hold)
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, Update, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from config.logs import log_event
from dialer.db import DialerDataError
from dialer.models import TrunkLine, TrunkRate

_LOG = logging.getLogger("ivr.dialer.lines")
DEFAULT_HOLD = timedelta(seconds=60)


class LineLostError(DialerDataError):
    """The line's hold expired and another call took it: the call must end."""


@dataclass(frozen=True)
class LineHold:
    trunk: str
    line: int
    holder: str
    expires_at: datetime


def trunk_key(trunk_uri: str) -> str:
    """The trunk a URI template dials through: its host and port (``sip:{number}@host:port``)."""
    host = trunk_uri.split("@", 1)[-1].split(";", 1)[0].split(">", 1)[0].strip()
    return host[:200] or trunk_uri[:200]


class TrunkLines:
    """``lines`` lines (and ``calls_per_second``, if given) of one trunk; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        trunk: str,
        lines: int,
        *,
        calls_per_second: float | None = None,
        burst: float = 1.0,
        hold: timedelta = DEFAULT_HOLD,
    ) -> None:
        if lines < 1:
            raise DialerDataError(f"trunk {trunk}: {lines} lines; at least 1 is needed")
        if calls_per_second is not None and not calls_per_second > 0:
            raise DialerDataError(f"trunk {trunk}: calls_per_second {calls_per_second} must be positive")
        if burst < 1 or hold <= timedelta(0):
            raise DialerDataError(f"trunk {trunk}: burst must be at least 1 and the hold positive")
        self.engine = engine
        self.trunk = trunk
        self.lines = lines
        self.hold = hold
        self._interval = timedelta(seconds=1 / calls_per_second) if calls_per_second else None
        self._allowance = (self._interval or timedelta(0)) * (burst - 1)
        self._postgres = engine.dialect.name == "postgresql"
        self._ready = False

    def _ensure_rows(self) -> None:
        """Create the trunk's rows once; any process may do it, at the same time as others."""
        if self._ready:
            return
        insert = pg_insert if self._postgres else sqlite_insert
        with Session(self.engine) as session, session.begin():
            rows = [{"trunk": self.trunk, "line": n} for n in range(self.lines)]
            session.execute(insert(TrunkLine).values(rows).on_conflict_do_nothing())
            session.execute(insert(TrunkRate).values(trunk=self.trunk).on_conflict_do_nothing())
        self._ready = True

    def acquire(self, owner: str, now: datetime, contact_id: int | None = None) -> LineHold | None:
        """Take a free line for a call about to start; None when all are busy or the trunk's
        calls-per-second budget says not yet."""
        self._ensure_rows()
        with Session(self.engine) as session, session.begin():
            rate = None
            if self._interval is not None:
                rate_query = select(TrunkRate).where(TrunkRate.trunk == self.trunk)
                if self._postgres:
                    rate_query = rate_query.with_for_update()
                rate = session.scalars(rate_query).one()
                if rate.allowed_at is not None and now < rate.allowed_at - self._allowance:
                    return None
            query = (
                select(TrunkLine)
                .where(
                    TrunkLine.trunk == self.trunk,
                    TrunkLine.line < self.lines,
                    or_(TrunkLine.holder.is_(None), TrunkLine.expires_at < now),
                )
                .order_by(TrunkLine.line)
                .limit(1)
            )
            if self._postgres:
                query = query.with_for_update(skip_locked=True)
            row = session.scalars(query).first()
            if row is None:
                return None
            if row.holder is not None:
                log_event(
                    "dialer.line_reclaimed",
                    logging.WARNING,
                    _LOG,
                    trunk=self.trunk,
                    line=row.line,
                    previous=row.holder,
                    expired_at=row.expires_at.isoformat() if row.expires_at else "",
                )
            row.holder = f"{owner}#{uuid.uuid4().hex[:8]}"[:200]
            row.contact_id = contact_id
            row.taken_at = now
            row.expires_at = now + self.hold
            if rate is not None and self._interval is not None:
                rate.allowed_at = max(rate.allowed_at or now, now) + self._interval
            return LineHold(self.trunk, row.line, row.holder, row.expires_at)

    def attach(self, hold: LineHold, contact_id: int) -> None:
        """Note which contact's call holds the line (for a person looking at the table)."""
        with Session(self.engine) as session, session.begin():
            session.execute(self._mine(hold).values(contact_id=contact_id))

    def renew(self, hold: LineHold, now: datetime) -> LineHold:
        """Keep the line for a call that goes on; :class:`LineLostError` if it was taken over."""
        expires = now + self.hold
        with Session(self.engine) as session, session.begin():
            changed = session.execute(self._mine(hold).values(expires_at=expires)).rowcount  # type: ignore[attr-defined]
        if changed != 1:
            raise LineLostError(f"trunk {hold.trunk} line {hold.line} was taken over by another call")
        return dataclasses.replace(hold, expires_at=expires)

    def release(self, hold: LineHold) -> None:
        """Free the line when the call is over (nothing happens if it was taken over)."""
        with Session(self.engine) as session, session.begin():
            session.execute(
                self._mine(hold).values(holder=None, contact_id=None, taken_at=None, expires_at=None)
            )

    def in_use(self, now: datetime) -> int:
        """Lines held right now by some process (expired holds not counted)."""
        with Session(self.engine) as session:
            count = session.scalar(
                select(func.count()).where(
                    TrunkLine.trunk == self.trunk, TrunkLine.holder.is_not(None), TrunkLine.expires_at >= now
                )
            )
        return int(count or 0)

    def _mine(self, hold: LineHold) -> Update:
        return update(TrunkLine).where(
            TrunkLine.trunk == hold.trunk, TrunkLine.line == hold.line, TrunkLine.holder == hold.holder
        )
