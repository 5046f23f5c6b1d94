"""Searching the call index: by number (keyed hashes), start time, outcome, flow, campaign, QA
verdict and failed QA rule, and by the words each speaker said (:mod:`recordings.transcript_index`).

What comes back is an :class:`IndexedCall`: the call as the index knows it, no transcript (the
sidecar has that). The index is a finding aid, never evidence: the sidecars and their signed
manifests are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, exists, literal, select
from sqlalchemy.exc import SQLAlchemyError

from recordings.database import database_error
from recordings.errors import RecordingError
from recordings.numbers import remote_party
from recordings.qa_file import QA_STATUSES, QaSummary
from recordings.schema import SPEAKER_COLUMNS, calls, holds
from recordings.sidecar import iso
from recordings.transcript_index import phrase_clause

SPEAKERS = SPEAKER_COLUMNS
QA_FILTERS = (*QA_STATUSES, "none")
"""What ``--qa`` takes: a verdict, or ``none`` for calls not judged (yet)."""
_WORD = re.compile(r"\w+", re.UNICODE)
_RULE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_BATCH = 500


@dataclass(frozen=True)
class IndexedCall:
    """One call as the index knows it (no transcript: read the sidecar for that)."""

    call_id: str
    direction: str
    status: str
    started_at: datetime
    ended_at: datetime | None
    duration_s: float | None
    flow: str
    flow_version: str
    outcome: str
    campaign: str
    contact_id: str
    from_masked: str
    to_masked: str
    turns: int
    sidecar_path: str
    held: bool = False
    qa: QaSummary | None = None
    """Its QA verdict (``recordings qa``), ``None`` while it is not judged."""

    @property
    def remote_masked(self) -> str:
        """The other party's masked number: the caller of an inbound call, the callee of an outbound."""
        return remote_party(self.direction, self.from_masked, self.to_masked)

    def to_json(self, root: Path) -> dict[str, Any]:
        """The ``recordings search --json`` object; field names are a public contract."""
        return {
            "call_id": self.call_id,
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at) if self.ended_at else None,
            "direction": self.direction,
            "number": self.remote_masked,
            "from": self.from_masked,
            "to": self.to_masked,
            "flow": self.flow,
            "flow_version": self.flow_version,
            "outcome": self.outcome,
            "campaign": self.campaign,
            "contact_id": self.contact_id,
            "duration_s": None if self.duration_s is None else round(self.duration_s, 3),
            "status": self.status,
            "turns": self.turns,
            "held": self.held,
            "qa": None if self.qa is None else self.qa.to_json(),
            "sidecar": str(root / self.sidecar_path),
        }


@dataclass(frozen=True)
class SearchFilters:
    """What ``recordings search`` narrows by; every given filter must match."""

    number_digests: tuple[str, ...] = ()
    """Keyed hashes of the forms of one number; a call matches if either party has one of them."""
    started_from: datetime | None = None
    started_before: datetime | None = None
    """Exclusive upper bound on the start time."""
    outcome: str | None = None
    flow: str | None = None
    campaign: str | None = None
    says: str | None = None
    """Words (a phrase, in order) said in the call; stemmed (``cancel`` finds ``cancelled``)."""
    speaker: str | None = None
    """Only words said by this speaker (caller, bot or agent)."""
    qa: str | None = None
    """The QA verdict: ``pass``, ``fail``, ``incomplete``, or ``none`` (not judged)."""
    qa_rule: str | None = None
    """A QA rule id that failed on the call."""
    call_ids: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        """The filters as the access log records them (a number only as 'given', never in clear)."""
        out: dict[str, Any] = {}
        if self.number_digests:
            out["number"] = "(hashed)"
        for name in ("outcome", "flow", "campaign", "says", "speaker", "qa", "qa_rule"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.started_from:
            out["from"] = iso(self.started_from)
        if self.started_before:
            out["before"] = iso(self.started_before)
        if self.call_ids:
            out["call_ids"] = list(self.call_ids)
        return out

    def check(self) -> None:
        """Refuse filters no call can match, naming the option and what to type."""
        if self.speaker is not None and self.speaker not in SPEAKERS:
            raise RecordingError(f"--speaker {self.speaker!r} is not one of {', '.join(SPEAKERS)}")
        if self.speaker is not None and not self.says:
            raise RecordingError("--speaker narrows --says: give the words to look for with --says")
        if self.says is not None:
            phrase_words(self.says)
        if self.qa is not None and self.qa not in QA_FILTERS:
            raise RecordingError(f"--qa {self.qa!r} is not one of {', '.join(QA_FILTERS)}")
        if self.qa_rule is not None and not _RULE_ID.match(self.qa_rule):
            raise RecordingError(
                f"--qa-rule {self.qa_rule!r}: not a rule id (letters, digits, _ and -, as in the rules file)"
            )
        if self.qa == "none" and self.qa_rule is not None:
            raise RecordingError("--qa none finds calls not judged, which failed no rule: drop --qa-rule")


@dataclass(frozen=True)
class SearchResult:
    calls: tuple[IndexedCall, ...]
    more: bool
    """More calls match than the limit let through."""


def phrase_words(says: str) -> list[str]:
    words = _WORD.findall(says)
    if not words:
        raise RecordingError(f"--says {says!r}: no word to search for")
    return words


def _held() -> Any:
    return exists().where(and_(holds.c.call_id == calls.c.call_id, holds.c.released_at.is_(None)))


def _qa_clauses(filters: SearchFilters) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if filters.qa == "none":
        clauses.append(calls.c.qa_status.is_(None))
    elif filters.qa is not None:
        clauses.append(calls.c.qa_status == filters.qa)
    if filters.qa_rule is not None:  # ids are space-separated: match a whole one
        padded = literal(" ") + calls.c.qa_failed_rules + literal(" ")
        clauses.append(padded.contains(f" {filters.qa_rule} ", autoescape=True))
    return clauses


def search(engine: Engine, filters: SearchFilters, limit: int = 50) -> SearchResult:
    """Matching calls, newest first, at most ``limit``."""
    filters.check()
    if limit < 1:
        raise RecordingError(f"--limit {limit}: must be at least 1")
    query = select(*calls.c, _held().label("held"))
    if filters.number_digests:
        digests = list(filters.number_digests)
        query = query.where(calls.c.from_hash.in_(digests) | calls.c.to_hash.in_(digests))
    if filters.started_from is not None:
        query = query.where(calls.c.started_at >= filters.started_from)
    if filters.started_before is not None:
        query = query.where(calls.c.started_at < filters.started_before)
    for name in ("outcome", "flow", "campaign"):
        value = getattr(filters, name)
        if value is not None:
            query = query.where(calls.c[name] == value)
    if filters.call_ids:
        query = query.where(calls.c.call_id.in_(list(filters.call_ids)))
    if filters.says:
        words = phrase_words(filters.says)
        query = query.where(phrase_clause(engine.dialect.name, words, filters.speaker))
    for clause in _qa_clauses(filters):
        query = query.where(clause)
    query = query.order_by(calls.c.started_at.desc(), calls.c.call_id).limit(limit + 1)
    rows = _rows(engine, query, "searching the call index")
    return SearchResult(tuple(_indexed(row) for row in rows[:limit]), len(rows) > limit)


def find_call(engine: Engine, call_id: str) -> IndexedCall | None:
    found = search(engine, SearchFilters(call_ids=(call_id,)), limit=1)
    return found.calls[0] if found.calls else None


def iter_calls(engine: Engine, started_before: datetime) -> Iterator[IndexedCall]:
    """Every indexed call that started before ``started_before``, oldest first (purge)."""
    query = (
        select(*calls.c, _held().label("held"))
        .where(calls.c.started_at < started_before)
        .order_by(calls.c.started_at, calls.c.call_id)
    )
    for row in _rows(engine, query, "reading the call index"):
        yield _indexed(row)


def qa_verdicts(engine: Engine, call_ids: Iterable[str]) -> dict[str, QaSummary]:
    """The QA verdicts the index holds for these calls (the judged ones only)."""
    wanted = list(dict.fromkeys(call_ids))
    found: dict[str, QaSummary] = {}
    columns = (calls.c.call_id, calls.c.qa_status, calls.c.qa_score, calls.c.qa_failed_rules)
    for start in range(0, len(wanted), _BATCH):
        query = select(*columns).where(
            calls.c.call_id.in_(wanted[start : start + _BATCH]), calls.c.qa_status.is_not(None)
        )
        for row in _rows(engine, query, "reading QA verdicts from the call index"):
            summary = _qa(row)
            if summary is not None:
                found[row["call_id"]] = summary
    return found


def _rows(engine: Engine, query: Any, doing: str) -> list[Any]:
    try:
        with engine.connect() as conn:
            return list(conn.execute(query).mappings())
    except SQLAlchemyError as exc:
        raise database_error(exc, engine, doing) from exc


def _qa(row: Any) -> QaSummary | None:
    if row["qa_status"] is None:
        return None
    return QaSummary(row["qa_status"], row["qa_score"], tuple((row["qa_failed_rules"] or "").split()))


def _indexed(row: Any) -> IndexedCall:
    return IndexedCall(
        call_id=row["call_id"],
        direction=row["direction"],
        status=row["status"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        duration_s=row["duration_s"],
        flow=row["flow"],
        flow_version=row["flow_version"],
        outcome=row["outcome"],
        campaign=row["campaign"],
        contact_id=row["contact_id"],
        from_masked=row["from_masked"],
        to_masked=row["to_masked"],
        turns=row["turns"],
        sidecar_path=row["sidecar_path"],
        held=bool(row["held"]),
        qa=_qa(row),
    )
