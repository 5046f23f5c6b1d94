"""Load a campaign's call list from CSV.

The columns (:mod:`dialer.call_list_columns`, renamed from other systems with ``--map
new=old``): ``phone`` (required), ``cooling_off_end`` (ISO 8601, required for compliance
callbacks), ``first_name``, ``last_name``, ``timezone`` (IANA), ``priority`` (integer, higher is
called first among equal deadlines); every other column becomes a contact field the flow uses.
A header without a column the campaign kind requires is refused before any row is read.

Rules, in the order a row meets them:
- a cell holding a control character (NUL, other C0 but tab, DEL, C1) rejects the row, naming
  each such field;
- the number is normalised to E.164 with ``phonenumbers`` (``--region`` for national numbers);
- the time zone is the column's, else the number's (:mod:`dialer.callee_zone`); a number
  whose range spans zones with different clocks is rejected rather than guessed, because a
  wrong zone could mean a call outside legal hours: add a ``timezone`` column for those rows;
- a ``cooling_off_end`` without an offset is the callee's local time; a row whose deadline
  (cooling-off end + callback window) has already passed is rejected: nobody could call it;
- a number seen earlier in the file, or already in the campaign with different data, is a
  duplicate; the same row imported again is recognised (by a hash) and left alone, so
  re-importing a file changes nothing.

Rows are numbered by the file line they start on (the header is line 1). A malformed file
(not UTF-8, no header, a row with the wrong number of fields) raises
:class:`dialer.call_list_csv.ImportFileError` and stores nothing: the import is one
transaction, and an import that stores no contact into a new campaign does not create it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from dialer.call_list_columns import STANDARD_COLUMNS, required_columns
from dialer.call_list_csv import ImportFileError, Reject, read_rows, write_rejects
from dialer.call_list_rows import MAX_PRIORITY, YEARS, CampaignSpec, ContactRow, RowParser, parse_column_map
from dialer.call_result import Outcome
from dialer.db import DialerDataError
from dialer.models import Base, Campaign, Contact, ContactEvent, ContactState, DncEntry, EventKind

__all__ = [
    "MAX_PRIORITY",
    "STANDARD_COLUMNS",
    "YEARS",
    "CampaignSpec",
    "ContactRow",
    "ImportReport",
    "RowParser",
    "check_header",
    "import_csv",
    "parse_column_map",
]

CONTACTS = Base.metadata.tables["contacts"]
_INSERT_CHUNK = 5000


@dataclass
class ImportReport:
    file: Path
    campaign: str
    rows: int = 0
    imported: int = 0
    unchanged: int = 0
    dnc_marked: int = 0
    rejects: list[Reject] = field(default_factory=list)
    rejects_file: Path | None = None
    campaign_created: bool = False
    """A new campaign was created by this import."""
    campaign_discarded: bool = False
    """The campaign would have been created, but no row was stored, so it was not."""

    @property
    def rejected_rows(self) -> int:
        return len({r.row for r in self.rejects})


def _campaign(session: Session, name: str, spec: CampaignSpec, now: datetime) -> tuple[Campaign, bool]:
    """The campaign to import into and whether it was created now."""
    campaign = session.scalars(select(Campaign).where(Campaign.name == name)).one_or_none()
    if campaign is None:
        campaign = Campaign(
            name=name,
            kind=spec.kind.value,
            flow=spec.flow,
            region=spec.region,
            calling_hours=dict(spec.calling_hours),
            starts_at=spec.starts_at,
            ends_at=spec.ends_at,
            callback_window_s=int(spec.callback_window.total_seconds()),
            retry=dict(spec.retry),
            machine_policy=spec.machine_policy.value,
            created_at=now,
        )
        session.add(campaign)
        session.flush()
        return campaign, True
    if campaign.kind != spec.kind.value or campaign.flow != spec.flow:
        raise DialerDataError(
            f"campaign '{name}' exists with kind {campaign.kind} and flow {campaign.flow}; "
            f"an import cannot change them (got {spec.kind.value}, {spec.flow})"
        )
    return campaign, False


def check_header(path: Path, header: Sequence[str], spec: CampaignSpec, now: datetime) -> None:
    """Refuse a file or campaign no row of which could be stored, before reading the rows."""
    missing = [name for name in required_columns(spec.kind.value) if name not in header]
    if missing:
        shown = ", ".join(repr(h) for h in header[:8]) + (", ..." if len(header) > 8 else "")
        raise ImportFileError(
            f"{path}:1: header has no {missing[0]!r} column, required for {spec.kind.value} campaigns"
            f" (found: {shown}); use --map {missing[0]}=COLUMN; `campaign import --help` lists"
            " every column; nothing was imported"
        )
    if spec.ends_at is not None and spec.ends_at <= now:
        raise DialerDataError(
            f"--ends {spec.ends_at.isoformat()} has already passed: no contact could be called;"
            " nothing was imported"
        )


def import_csv(
    engine: Engine,
    name: str,
    path: Path,
    spec: CampaignSpec,
    *,
    now: datetime,
    column_map: Mapping[str, str] | None = None,
    rejects_fallback_dir: Path | None = None,
) -> ImportReport:
    """Import ``path`` into campaign ``name`` (created from ``spec`` if new), in one transaction.

    A campaign this import would create is rolled back with the rows when none was stored
    (every row rejected, or an empty file): a failed import leaves no empty draft behind.
    """
    report = ImportReport(file=path, campaign=name)
    header, rows = read_rows(path, column_map or {})
    check_header(path, header, spec, now)
    parser = RowParser(header, spec, now)
    rejected_values: dict[int, list[str]] = {}
    with Session(engine) as session:
        transaction = session.begin()
        try:
            campaign, created = _campaign(session, name, spec, now)
            _store_rows(
                session, campaign.id, parser, rows, report=report, rejected_values=rejected_values, now=now
            )
            if created and report.imported == 0:
                transaction.rollback()
                report.campaign_discarded = True
            else:
                transaction.commit()
                report.campaign_created = created
        except BaseException:
            transaction.rollback()
            raise
    report.rejects_file = write_rejects(path, header, report.rejects, rejected_values, rejects_fallback_dir)
    return report


def _store_rows(
    session: Session,
    campaign_id: int,
    parser: RowParser,
    rows: Iterable[tuple[int, list[str]]],
    *,
    report: ImportReport,
    rejected_values: dict[int, list[str]],
    now: datetime,
) -> None:
    existing: dict[str, str] = {
        phone: digest
        for phone, digest in session.execute(
            select(Contact.phone, Contact.source_hash).where(Contact.campaign_id == campaign_id)
        )
    }
    dnc = set(session.scalars(select(DncEntry.phone)))
    batch: list[dict[str, Any]] = []
    for line, values in rows:
        report.rows += 1
        parsed = parser.parse(line, values)
        if isinstance(parsed, list):
            report.rejects.extend(parsed)
            rejected_values[line] = values
            continue
        known = existing.get(parsed.phone)
        if known is not None:
            if known == parsed.source_hash:
                report.unchanged += 1
            else:
                report.rejects.append(
                    Reject(line, "phone", "duplicate: already in the campaign with different data")
                )
                rejected_values[line] = values
            continue
        is_dnc = parsed.phone in dnc
        report.dnc_marked += is_dnc
        batch.append(_contact_values(campaign_id, parsed, is_dnc, now))
        if len(batch) >= _INSERT_CHUNK:
            report.imported += _insert(session, batch)
    report.imported += _insert(session, batch)
    if report.dnc_marked:
        _record_dnc_events(session, campaign_id, now)


def _contact_values(campaign_id: int, row: ContactRow, dnc: bool, now: datetime) -> dict[str, Any]:
    return {
        "campaign_id": campaign_id,
        "row_number": row.row_number,
        "phone": row.phone,
        "raw_phone": row.raw_phone[:64],
        "first_name": row.first_name[:200],
        "last_name": row.last_name[:200],
        "timezone": row.timezone,
        "cooling_off_end": row.cooling_off_end,
        "window_start": row.window_start,
        "window_end": row.window_end,
        "priority": row.priority,
        "fields": dict(row.fields),
        "source_hash": row.source_hash,
        "dnc": dnc,
        # A number already on the do-not-call list ends ``do_not_call`` here, at import, as
        # listing it later would: never leased, never dialled, never reported expired.
        "state": ContactState.DONE.value if dnc else ContactState.PENDING.value,
        "outcome": Outcome.DO_NOT_CALL.value if dnc else None,
        "outcome_at": now if dnc else None,
        "attempts": 0,
        "next_attempt_at": row.window_start or now,
        "lease_token": 0,
    }


def _insert(session: Session, batch: list[dict[str, Any]]) -> int:
    count = len(batch)
    if batch:
        session.execute(insert(CONTACTS), batch)  # Core: no ORM bookkeeping per row
        batch.clear()
    return count


_DNC_DETAIL = "import; outcome do_not_call"


def _record_dnc_events(session: Session, campaign_id: int, now: datetime) -> None:
    ids = session.scalars(
        select(Contact.id).where(
            Contact.campaign_id == campaign_id,
            Contact.dnc.is_(True),
            ~Contact.id.in_(select(ContactEvent.contact_id).where(ContactEvent.kind == EventKind.DNC_MARKED)),
        )
    ).all()
    if ids:
        session.execute(
            insert(ContactEvent),
            [{"contact_id": i, "at": now, "kind": EventKind.DNC_MARKED, "detail": _DNC_DETAIL} for i in ids],
        )
