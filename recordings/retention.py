"""Retention and legal hold: which calls ``recordings purge`` deletes, and how it leaves a trace.

Retention comes from ``recordings.retention_days``: days by campaign or flow name, ``default``
for the rest, ``0`` to keep forever. A call that matches both a campaign and a flow entry keeps
the longer of the two; with no entry and no ``default`` it is kept forever. A call is due when
it started more than that many days ago.

A legal hold (``recordings hold CALL --reason``) keeps a call whatever its retention until it
is released; holds are rows in ``recording_holds`` and the history (who held and released,
when, why) is kept.

A purge deletes, per call: first a signed tombstone is appended to the call's day chain (what
the seal vouched for, why, who: :func:`recordings.chain_store.append_tombstone`), then the WAV
and the sidecar, then its index row. So ``recordings verify`` explains the gap instead of
failing; files deleted any other way still fail it. A call whose files no longer match their
seal is not purged (that is evidence of tampering: investigate first).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, RowMapping, and_, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from config.logs import log_event
from recordings.call_index import delete_calls
from recordings.call_search import IndexedCall, iter_calls
from recordings.chain_store import append_tombstone, call_manifests
from recordings.database import database_error
from recordings.errors import RecordingError
from recordings.manifest import Manifest
from recordings.private_fs import fsync_dir
from recordings.qa_file import qa_path_for
from recordings.recovery import is_qa_result
from recordings.schema import holds
from recordings.signing import Signer
from recordings.wav_writer import file_sha256

_LOG = logging.getLogger("ivr.recordings")
DEFAULT_RULE = "default"
MAX_DAYS = 36_500


@dataclass(frozen=True)
class RetentionPolicy:
    days: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, days in self.days.items():
            if not 0 <= days <= MAX_DAYS:
                raise RecordingError(
                    f"recordings.retention_days.{name}: {days} days is outside 0..{MAX_DAYS}"
                    " (0 keeps forever)"
                )

    def rule_for(self, flow: str, campaign: str) -> tuple[int | None, str]:
        """(days kept, or None for forever; which setting decided it)."""
        matches = (
            [(self.days[campaign], f"campaign {campaign}")] if campaign and campaign in self.days else []
        )
        if flow and flow in self.days:
            matches.append((self.days[flow], f"flow {flow}"))
        if not matches and DEFAULT_RULE in self.days:
            matches = [(self.days[DEFAULT_RULE], DEFAULT_RULE)]
        if not matches:
            return None, "no retention set"
        forever = [rule for days, rule in matches if days == 0]
        if forever:
            return None, forever[0]
        days, rule = max(matches, key=lambda match: match[0])
        return days, rule

    @property
    def shortest_days(self) -> int | None:
        finite = [days for days in self.days.values() if days > 0]
        return min(finite) if finite else None


# -- holds -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Hold:
    call_id: str
    reason: str
    held_by: str
    held_at: datetime
    released_at: datetime | None = None
    released_by: str | None = None
    release_reason: str | None = None


def _hold(row: RowMapping) -> Hold:
    return Hold(**{name: row[name] for name in Hold.__dataclass_fields__})


def active_hold(engine: Engine, call_id: str) -> Hold | None:
    query = select(holds).where(and_(holds.c.call_id == call_id, holds.c.released_at.is_(None)))
    try:
        with engine.connect() as conn:
            row = conn.execute(query.order_by(holds.c.id)).mappings().first()
    except SQLAlchemyError as exc:
        raise database_error(exc, engine, "reading legal holds") from exc
    return _hold(row) if row else None


def check_can_hold(engine: Engine, call_id: str, reason: str) -> None:
    """Raises :class:`RecordingError` if ``call_id`` cannot be put on hold with ``reason``."""
    if not reason.strip():
        raise RecordingError("recordings hold: give the reason (case, request) with --reason")
    existing = active_hold(engine, call_id)
    if existing is not None:
        raise RecordingError(
            f"call {call_id} is already on hold since {existing.held_at:%Y-%m-%d %H:%M} UTC by"
            f" {existing.held_by}: {existing.reason}"
        )


def place_hold(engine: Engine, call_id: str, reason: str, actor: str, now: datetime | None = None) -> Hold:
    """Put ``call_id`` under legal hold; refuses a second hold and an empty reason."""
    check_can_hold(engine, call_id, reason)
    hold = Hold(call_id, reason.strip(), actor, now or datetime.now(UTC))
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(holds),
                {"call_id": call_id, "reason": hold.reason, "held_by": actor, "held_at": hold.held_at},
            )
    except SQLAlchemyError as exc:
        raise database_error(exc, engine, "placing a legal hold") from exc
    log_event("recording_held", logger=_LOG, call_id=call_id, by=actor)
    return hold


def release_hold(
    engine: Engine, call_id: str, actor: str, reason: str = "", now: datetime | None = None
) -> Hold:
    """Lift the hold on ``call_id`` (its retention applies again); refuses a call not on hold."""
    existing = active_hold(engine, call_id)
    if existing is None:
        raise RecordingError(f"call {call_id} is not on hold")
    at = now or datetime.now(UTC)
    try:
        with engine.begin() as conn:
            conn.execute(
                update(holds)
                .where(and_(holds.c.call_id == call_id, holds.c.released_at.is_(None)))
                .values(released_at=at, released_by=actor, release_reason=reason.strip() or None)
            )
    except SQLAlchemyError as exc:
        raise database_error(exc, engine, "releasing a legal hold") from exc
    log_event("recording_released", logger=_LOG, call_id=call_id, by=actor)
    return Hold(
        existing.call_id,
        existing.reason,
        existing.held_by,
        existing.held_at,
        at,
        actor,
        reason.strip() or None,
    )


def hold_history(engine: Engine, call_id: str) -> list[Hold]:
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(holds).where(holds.c.call_id == call_id).order_by(holds.c.id)
            ).mappings()
            return [_hold(row) for row in rows]
    except SQLAlchemyError as exc:
        raise database_error(exc, engine, "reading legal holds") from exc


# -- purge -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PurgeItem:
    call: IndexedCall
    days: int
    rule: str
    due_at: datetime

    @property
    def reason(self) -> str:
        return f"retention {self.days} days ({self.rule})"


@dataclass(frozen=True)
class PurgePlan:
    due: tuple[PurgeItem, ...]
    held: tuple[PurgeItem, ...]
    """Due, but on legal hold: kept."""


def plan_purge(engine: Engine, policy: RetentionPolicy, now: datetime | None = None) -> PurgePlan:
    """The indexed calls whose retention has run out, split into deletable and held."""
    at = now or datetime.now(UTC)
    shortest = policy.shortest_days
    if shortest is None:
        return PurgePlan((), ())
    due: list[PurgeItem] = []
    held: list[PurgeItem] = []
    for call in iter_calls(engine, at - timedelta(days=shortest)):
        days, rule = policy.rule_for(call.flow, call.campaign)
        if days is None or call.started_at + timedelta(days=days) > at:
            continue
        item = PurgeItem(call, days, rule, call.started_at + timedelta(days=days))
        (held if call.held else due).append(item)
    return PurgePlan(tuple(due), tuple(held))


@dataclass
class PurgeResult:
    purged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    """Put on hold after the plan was made: not purged."""
    problems: list[str] = field(default_factory=list)


def execute_purge(
    root: Path, engine: Engine, plan: PurgePlan, signer: Signer, actor: str, *, now: datetime | None = None
) -> PurgeResult:
    """Tombstone, delete and unindex every due call; a call that cannot be purged is reported."""
    result = PurgeResult()
    for item in plan.due:
        call_id = item.call.call_id
        if active_hold(engine, call_id) is not None:
            result.kept.append(call_id)
            continue
        try:
            _purge_one(root, item, signer, actor, now)
            with engine.begin() as conn:
                delete_calls(conn, [call_id])
        except RecordingError as exc:
            result.problems.append(f"{call_id}: {exc}")
            continue
        except SQLAlchemyError as exc:
            result.problems.append(f"{call_id}: {database_error(exc, engine, 'removing it from the index')}")
            continue
        result.purged.append(call_id)
        log_event("recording_purged", logger=_LOG, call_id=call_id, by=actor, reason=item.reason)
    return result


def _purge_one(root: Path, item: PurgeItem, signer: Signer, actor: str, now: datetime | None) -> None:
    call_id = item.call.call_id
    sidecar = root / item.call.sidecar_path
    folder = sidecar.parent
    entries = call_manifests(folder, call_id)
    if not entries:
        raise RecordingError(
            f"not in the manifest chain of {folder}: not purged (run recordings verify {call_id})"
        )
    last: Manifest = entries[-1][1]
    wav = folder / last.wav
    if not last.purged:
        for path, expected in ((wav, last.wav_sha256), (folder / last.sidecar, last.sidecar_sha256)):
            if not path.exists():
                raise RecordingError(f"{path.name} is missing: not purged (run recordings verify {call_id})")
            if file_sha256(path) != expected:
                raise RecordingError(
                    f"{path.name} no longer matches its seal: not purged; investigate first"
                    f" (recordings verify {call_id})"
                )
        append_tombstone(folder, last, signer, reason=item.reason, actor=actor, now=now)
    # With a tombstone in place (now, or from a purge cut short), the files go.
    qa_result = qa_path_for(folder / last.sidecar)  # derived from the transcript: it goes too
    try:
        for path in (wav, folder / last.sidecar):
            path.unlink(missing_ok=True)
        if is_qa_result(qa_result):
            qa_result.unlink(missing_ok=True)
        fsync_dir(folder)
    except OSError as exc:
        raise RecordingError(f"cannot delete its files: {exc}") from exc
