"""The call index, written: one database row per sealed call (its transcript per speaker in
:mod:`recordings.transcript_index`, its QA verdict from ``<call>.qa.json``), kept in step with
the files on disk. Searching it is :mod:`recordings.call_search`.

Calls get here three ways, all idempotent (an upsert keyed by call id):

- when sealed: :class:`recordings.DualTrackRecorder` (given ``index_url``) indexes its call
  right after chaining its manifest (:func:`index_now`);
- from the spool: every sealed call is first registered in ``<recordings>/.unindexed/`` and
  unregistered once indexed, so a call sealed while the database was down (or by a recorder
  with no ``index_url``, or by start-up recovery) is indexed by the next
  :func:`index_pending`, which every ``recordings`` command runs before it reads the index.
  A call whose QA result changed is registered again (:func:`refresh_index`);
- :func:`reindex` rebuilds the index from every sidecar (and QA file) on disk.

The index is a finding aid, never evidence: the sidecars and their signed manifests are.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from config.logs import log_event
from config.settings import DatabaseSettings
from recordings.database import database_error, open_index_database
from recordings.errors import RecordingError, SidecarError
from recordings.index_spool import mark_unindexed, pending, unmark
from recordings.qa_file import QaSummary, read_qa_summary
from recordings.recovery import sidecar_files
from recordings.schema import SPEAKER_COLUMNS, calls
from recordings.sidecar import Sidecar, read_sidecar
from recordings.transcript_index import delete_transcripts, write_transcripts
from recordings.wav_writer import file_sha256, is_being_written

_LOG = logging.getLogger("ivr.recordings")
_BATCH = 500
INDEX_RETRY_S = 30.0
"""After the database failed, :func:`index_now` leaves it alone this long (calls stay spooled)."""
_INDEX_FAILED_AT: dict[str, float] = {}
_QA_COLUMNS = ("qa_status", "qa_score", "qa_failed_rules")


@dataclass(frozen=True)
class IndexRow:
    """What :func:`index_rows` writes for one call: its ``recording_calls`` values and its
    transcript per speaker."""

    values: dict[str, Any]
    transcript: dict[str, str]


def qa_columns(summary: QaSummary | None) -> dict[str, Any]:
    """A QA verdict as the index stores it (all NULL: not judged)."""
    if summary is None:
        return dict.fromkeys(_QA_COLUMNS)
    return {
        "qa_status": summary.status,
        "qa_score": summary.score,
        "qa_failed_rules": " ".join(summary.failed_rules),
    }


def index_row(
    root: Path,
    path: Path,
    sidecar: Sidecar,
    sidecar_sha256: str,
    now: datetime,
    *,
    qa: QaSummary | None = None,
) -> IndexRow:
    try:
        relative = path.relative_to(root).as_posix()
    except ValueError:
        relative = str(path)
    per_speaker: dict[str, list[str]] = {speaker: [] for speaker in SPEAKER_COLUMNS}
    for turn in sidecar.turns:
        per_speaker.setdefault(turn.speaker, []).append(turn.text)
    return IndexRow(
        {
            "call_id": sidecar.call_id,
            "direction": sidecar.direction,
            "status": sidecar.status,
            "started_at": sidecar.started_at,
            "ended_at": sidecar.ended_at,
            "duration_s": sidecar.duration_s,
            "flow": sidecar.flow_name[:200],
            "flow_version": sidecar.flow_version[:64],
            "outcome": sidecar.outcome[:200],
            "campaign": sidecar.tags.get("campaign", "")[:200],
            "contact_id": sidecar.tags.get("contact_id", "")[:200],
            "from_hash": sidecar.from_hmac or None,
            "to_hash": sidecar.to_hmac or None,
            "number_key_id": sidecar.number_key_id,
            "from_masked": sidecar.from_masked[:200],
            "to_masked": sidecar.to_masked[:200],
            "turns": len(sidecar.turns),
            "sidecar_path": relative,
            "sidecar_sha256": sidecar_sha256,
            "indexed_at": now,
            **qa_columns(qa),
        },
        {speaker: "\n".join(per_speaker[speaker]) for speaker in SPEAKER_COLUMNS},
    )


def _row_from_disk(root: Path, path: Path, now: datetime) -> tuple[Sidecar, IndexRow]:
    """A sealed call's row as its files say: the sidecar, and the QA file if it judged those bytes."""
    sidecar = read_sidecar(path)
    digest = file_sha256(path)
    return sidecar, index_row(root, path, sidecar, digest, now, qa=read_qa_summary(path, digest))


def _upsert(conn: Connection, rows: Sequence[IndexRow]) -> None:
    """Insert or replace the calls and their transcripts (one statement per table per batch)."""
    if not rows:
        return
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(calls)
    updated = {name: stmt.excluded[name] for name in rows[0].values if name != "call_id"}
    conn.execute(
        stmt.on_conflict_do_update(index_elements=["call_id"], set_=updated), [row.values for row in rows]
    )
    wanted = [row.values["call_id"] for row in rows]
    found = conn.execute(select(calls.c.call_id, calls.c.id).where(calls.c.call_id.in_(wanted)))
    ids = {call_id: pk for call_id, pk in found}
    write_transcripts(conn, [{"pk": ids[row.values["call_id"]], **row.transcript} for row in rows])


def delete_calls(conn: Connection, call_ids: Iterable[str]) -> int:
    """Remove calls (and their transcripts) from the index; returns how many rows went."""
    wanted = list(call_ids)
    removed = 0
    for start in range(0, len(wanted), _BATCH):
        chunk = wanted[start : start + _BATCH]
        pks = list(conn.execute(select(calls.c.id).where(calls.c.call_id.in_(chunk))).scalars())
        if not pks:
            continue
        delete_transcripts(conn, pks)
        removed += conn.execute(delete(calls).where(calls.c.id.in_(pks))).rowcount or 0
    return removed


def index_rows(engine: Engine, rows: Sequence[IndexRow]) -> None:
    """Upsert ``rows`` in batches, one transaction each (the bench and :func:`reindex` use it)."""
    try:
        for start in range(0, len(rows), _BATCH):
            with engine.begin() as conn:
                _upsert(conn, rows[start : start + _BATCH])
    except SQLAlchemyError as exc:
        raise database_error(exc, engine, "indexing calls") from exc


def count_calls(engine: Engine) -> int:
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(calls)).scalar_one())
    except SQLAlchemyError as exc:
        raise database_error(exc, engine, "counting indexed calls") from exc


# -- keeping it in step with the disk -----------------------------------------------------------
@dataclass
class IndexReport:
    indexed: int = 0
    unchanged: int = 0
    removed: int = 0
    live: int = 0
    problems: list[str] = field(default_factory=list)


def index_pending(
    root: Path, engine: Engine, limit: int | None = None, only: Sequence[str] | None = None
) -> IndexReport:
    """Index the spooled calls (all, the first ``limit``, or ``only`` these) and unregister them.

    A marker whose sidecar is gone or unreadable is reported and left for :func:`reindex`.
    Raises :class:`IndexDatabaseError` when the database cannot be written.
    """
    report = IndexReport()
    queue = pending(root)
    if only is not None:
        wanted = set(only)
        queue = [item for item in queue if item[0] in wanted]
    queue = queue[:limit] if limit is not None else queue
    now = datetime.now(UTC)
    for start in range(0, len(queue), _BATCH):
        rows: list[IndexRow] = []
        done: list[str] = []
        for call_id, path in queue[start : start + _BATCH]:
            try:
                rows.append(_row_from_disk(root, path, now)[1])
                done.append(call_id)
            except (SidecarError, OSError) as exc:
                report.problems.append(f"{call_id}: cannot index: {exc}")
        index_rows(engine, rows)
        for call_id in done:
            unmark(root, call_id)
        report.indexed += len(rows)
    if report.indexed:
        log_event("recordings_indexed", logger=_LOG, calls=report.indexed)
    return report


def index_now(
    root: Path,
    call_ids: Sequence[str],
    index_url: str,
    index_settings: DatabaseSettings | None = None,
    backlog: int = 50,
) -> str | None:
    """Index these spooled calls now, then up to ``backlog`` others still waiting, if a database
    is given. Never raises: returns ``None`` once they are indexed, else why not (logged as
    ``recording_not_indexed``); they stay spooled for the next command or seal.

    After a failure this process leaves that database alone for :data:`INDEX_RETRY_S`, so an
    outage does not add a connection timeout to the end of every call.
    """
    if not index_url:
        return "no database given"
    failed_at = _INDEX_FAILED_AT.get(index_url)
    if failed_at is not None and time.monotonic() - failed_at < INDEX_RETRY_S:
        return f"the database failed less than {INDEX_RETRY_S:g}s ago"
    try:
        engine = open_index_database(index_url, index_settings or DatabaseSettings())
        index_pending(root, engine, only=call_ids)
        if backlog:
            index_pending(root, engine, limit=backlog)
    except (RecordingError, OSError, SQLAlchemyError) as exc:
        _INDEX_FAILED_AT[index_url] = time.monotonic()
        error = str(exc)[:300]
        log_event("recording_not_indexed", logging.WARNING, _LOG, call_ids=list(call_ids)[:20], error=error)
        return error
    _INDEX_FAILED_AT.pop(index_url, None)
    return None


def refresh_index(
    root: Path,
    changed: Sequence[tuple[str, Path]],
    index_url: str,
    index_settings: DatabaseSettings | None = None,
) -> str | None:
    """Calls whose index row is out of date (their QA file was written), as (call id, sidecar):
    spooled again and indexed now (:func:`index_now`). Never raises; ``None`` once indexed."""
    try:
        for call_id, sidecar in changed:
            mark_unindexed(root, call_id, sidecar)
    except OSError as exc:
        log_event("recording_not_indexed", logging.WARNING, _LOG, error=f"cannot spool: {exc}"[:300])
    return index_now(root, [call_id for call_id, _ in changed], index_url, index_settings)


def reindex(root: Path, engine: Engine) -> IndexReport:
    """Make the index match the files on disk: add or update every sealed call (and its QA
    verdict), drop the rest.

    Idempotent: a call whose sidecar bytes and QA verdict are unchanged is not rewritten. Calls
    still being recorded are left out (their seal indexes them).
    """
    report = IndexReport()
    try:
        with engine.connect() as conn:
            stored = conn.execute(
                select(calls.c.call_id, calls.c.sidecar_sha256, *(calls.c[name] for name in _QA_COLUMNS))
            )
            known = {row[0]: tuple(row[1:]) for row in stored}
    except SQLAlchemyError as exc:
        raise database_error(exc, engine, "reading the call index") from exc
    now = datetime.now(UTC)
    rows: list[IndexRow] = []
    seen: set[str] = set()
    for path in sidecar_files(root):
        try:
            sidecar, row = _row_from_disk(root, path, now)
        except (SidecarError, OSError) as exc:
            report.problems.append(str(exc))
            continue
        if sidecar.status == "recording" or sidecar.sha256 is None:
            if is_being_written(path.parent / sidecar.wav_name):
                report.live += 1
            else:
                report.problems.append(f"{path}: not sealed (interrupted, not recovered yet): left out")
            continue
        seen.add(sidecar.call_id)
        if known.get(sidecar.call_id) == tuple(row.values[name] for name in ("sidecar_sha256", *_QA_COLUMNS)):
            report.unchanged += 1
            continue
        rows.append(row)
    index_rows(engine, rows)
    report.indexed = len(rows)
    gone = [call_id for call_id in known if call_id not in seen]
    try:
        with engine.begin() as conn:
            report.removed = delete_calls(conn, gone)
    except SQLAlchemyError as exc:
        raise database_error(exc, engine, "removing deleted calls from the index") from exc
    for call_id, _path in pending(root):
        if call_id in seen:
            unmark(root, call_id)
    log_event(
        "recordings_reindexed",
        logger=_LOG,
        indexed=report.indexed,
        unchanged=report.unchanged,
        removed=report.removed,
    )
    return report
