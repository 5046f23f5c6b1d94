"""Load a campaign's call list from CSV.

Columns (renamed from other systems with ``--map new=old``): ``phone`` (required),
``first_name``, ``last_name``, ``timezone`` (IANA, optional), ``cooling_off_end`` (ISO 8601,
required for compliance callbacks), ``priority`` (integer, higher is called first among equal
deadlines, optional); every other column becomes a contact field the flow can use.

Rules, in the order a row meets them:
- a cell holding a control character (NUL, other C0 but tab, DEL, C1) rejects the row, naming
  each such field;
- the number is normalised to E.164 with ``phonenumbers`` (``--region`` for national numbers);
- the time zone is the column's, else the number's (:mod:`dialer.callee_zone`); a number
  whose range spans zones with different clocks is rejected rather than guessed, because a
  wrong zone could mean a call outside legal hours: add a ``timezone`` column for those rows;
- a ``cooling_off_end`` without an offset is the callee's local time;
- a number seen earlier in the file, or already in the campaign with different data, is a
  duplicate; the same row imported again is recognised (by a hash) and left alone, so
  re-importing a file changes nothing.

Rows are numbered by the file line they start on (the header is line 1). A malformed file
(not UTF-8, no header, a row with the wrong number of fields) raises
:class:`dialer.call_list_csv.ImportFileError` and stores nothing: the import is one
transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from dialer.call_list_csv import Reject, control_character, read_rows, write_rejects
from dialer.callee_zone import zone_exists, zone_for_number
from dialer.calling_hours import CallingHours
from dialer.db import DialerDataError
from dialer.models import (
    Base,
    Campaign,
    CampaignKind,
    Contact,
    ContactEvent,
    DncEntry,
    EventKind,
    MachinePolicy,
)
from dialer.retry_policy import RetryPolicy
from dialer.scheduler import CampaignPolicy

CONTACTS = Base.metadata.tables["contacts"]
STANDARD_COLUMNS = ("phone", "first_name", "last_name", "timezone", "cooling_off_end", "priority")
MAX_PRIORITY = 1_000_000
YEARS = (1970, 2200)  # a cooling-off end outside these is a typo (and would overflow the window)
_INSERT_CHUNK = 5000


def _short(text: str, limit: int = 40) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"


@dataclass(frozen=True)
class ContactRow:
    """A row that passed every check, ready to store."""

    row_number: int
    phone: str
    raw_phone: str
    first_name: str
    last_name: str
    timezone: str
    cooling_off_end: datetime | None
    window_start: datetime | None
    window_end: datetime | None
    priority: int
    fields: Mapping[str, str]
    source_hash: str


@dataclass(frozen=True)
class CampaignSpec:
    """How a campaign is created by its first import (later imports must agree on kind/flow)."""

    kind: CampaignKind
    flow: str
    region: str = ""
    callback_window: timedelta = timedelta(hours=24)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    calling_hours: Mapping[str, Any] = field(default_factory=dict)
    retry: Mapping[str, Any] = field(default_factory=dict)
    machine_policy: MachinePolicy = MachinePolicy.HANGUP_RETRY

    def policy(self) -> CampaignPolicy:
        """The scheduling policy; building it validates hours, retry rules and dates."""
        return CampaignPolicy(
            kind=self.kind,
            hours=CallingHours.from_config(self.calling_hours),
            retry=RetryPolicy.from_config(self.retry),
            callback_window=self.callback_window,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
        )


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

    @property
    def rejected_rows(self) -> int:
        return len({r.row for r in self.rejects})


def parse_column_map(pairs: Iterable[str]) -> dict[str, str]:
    """``["phone=Mobile", ...]`` -> ``{"Mobile": "phone"}`` (file column -> our column)."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        new, sep, old = pair.partition("=")
        if not sep or not new.strip() or not old.strip():
            raise DialerDataError(f"--map {pair!r}: expected NEW=OLD, e.g. phone=Mobile")
        mapping[old.strip()] = new.strip()
    return mapping


class RowParser:
    """Turns one CSV record into a :class:`ContactRow` or its rejects (pure: ``now`` passed in)."""

    def __init__(self, header: Sequence[str], spec: CampaignSpec) -> None:
        self.header = list(header)
        self.spec = spec
        self.policy = spec.policy()
        self._index = {name: i for i, name in enumerate(self.header)}
        self._extra = [(i, name) for i, name in enumerate(self.header) if name not in STANDARD_COLUMNS]
        self._seen: dict[str, int] = {}

    def _get(self, values: Sequence[str], name: str) -> str:
        i = self._index.get(name)
        return values[i].strip() if i is not None else ""

    def parse(self, row: int, values: Sequence[str]) -> ContactRow | list[Reject]:
        rejects = [
            Reject(row, name, reason)
            for name, value in zip(self.header, values, strict=False)
            if (reason := control_character(value))
        ]
        if rejects:
            return rejects  # other checks on such a cell would only add noise
        raw_phone = self._get(values, "phone")
        number, phone, problem = self._phone(raw_phone)
        if problem:
            rejects.append(Reject(row, "phone", problem))
        elif phone in self._seen:
            rejects.append(Reject(row, "phone", f"duplicate of row {self._seen[phone]}"))
        tz, problem = self._timezone(self._get(values, "timezone"), number)
        if problem:
            rejects.append(Reject(row, "timezone", problem))
        coe, problem = self._cooling_off_end(self._get(values, "cooling_off_end"), tz)
        if problem:
            rejects.append(Reject(row, "cooling_off_end", problem))
        priority_text = self._get(values, "priority")
        priority = 0
        if priority_text:
            try:
                priority = int(priority_text)
            except ValueError:
                rejects.append(Reject(row, "priority", f"{_short(priority_text)} is not an integer"))
            else:
                if not -MAX_PRIORITY <= priority <= MAX_PRIORITY:
                    rejects.append(
                        Reject(row, "priority", f"{_short(priority_text)} is outside ±{MAX_PRIORITY:,}")
                    )
        if rejects:
            return rejects
        assert phone is not None and tz is not None
        self._seen[phone] = row
        start, end = self.policy.window_for(coe)
        fields = {name: values[i] for i, name in self._extra}
        first, last = self._get(values, "first_name"), self._get(values, "last_name")
        digest = hashlib.sha256(
            json.dumps(
                [phone, first, last, tz, coe.isoformat() if coe else "", priority, fields], sort_keys=True
            ).encode()
        ).hexdigest()
        return ContactRow(row, phone, raw_phone, first, last, tz, coe, start, end, priority, fields, digest)

    def _phone(self, raw: str) -> tuple[phonenumbers.PhoneNumber | None, str | None, str]:
        if not raw:
            return None, None, "missing (required)"
        try:
            number = phonenumbers.parse(raw, self.spec.region or None)
        except phonenumbers.NumberParseException:
            hint = "" if self.spec.region else " (a national number? pass --region)"
            return None, None, f"{_short(raw)} is not a phone number{hint}"
        if not phonenumbers.is_valid_number(number):
            return None, None, f"{_short(raw)} is not a valid number for its country"
        return number, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), ""

    def _timezone(self, given: str, number: phonenumbers.PhoneNumber | None) -> tuple[str | None, str]:
        if given:
            if zone_exists(given):
                return given, ""
            return None, f"unknown time zone {_short(given)} (expected an IANA name like 'Asia/Shanghai')"
        if number is None:
            return None, ""  # the phone reject already explains the row
        zone, zones = zone_for_number(number)
        if zone is not None:
            return zone, ""
        if not zones:
            return None, "not given and unknown for this number; add a timezone column"
        shown = ", ".join(zones[:3]) + (", ..." if len(zones) > 3 else "")
        return None, f"not given and the number spans {len(zones)} zones ({shown}); add a timezone column"

    def _cooling_off_end(self, text: str, tz: str | None) -> tuple[datetime | None, str]:
        if not text:
            if self.spec.kind is CampaignKind.COMPLIANCE_CALLBACK:
                return None, "missing (required for compliance callbacks)"
            return None, ""
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            return None, f"{_short(text)} is not an ISO 8601 date-time like 2025-03-01T14:30:00+08:00"
        if value.tzinfo is None:
            if tz is None:
                return None, ""  # the time zone reject explains the row
            value = value.replace(tzinfo=ZoneInfo(tz))
        try:
            year = value.astimezone(UTC).year
        except OverflowError:
            year = 0
        if not YEARS[0] <= year <= YEARS[1]:
            return None, f"{_short(text)} is outside the years {YEARS[0]} to {YEARS[1]}"
        return value, ""


def _campaign(session: Session, name: str, spec: CampaignSpec, now: datetime) -> Campaign:
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
        return campaign
    if campaign.kind != spec.kind.value or campaign.flow != spec.flow:
        raise DialerDataError(
            f"campaign '{name}' exists with kind {campaign.kind} and flow {campaign.flow}; "
            f"an import cannot change them (got {spec.kind.value}, {spec.flow})"
        )
    return campaign


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
    """Import ``path`` into campaign ``name`` (created from ``spec`` if new), in one transaction."""
    report = ImportReport(file=path, campaign=name)
    header, rows = read_rows(path, column_map or {})
    parser = RowParser(header, spec)
    with Session(engine) as session, session.begin():
        campaign = _campaign(session, name, spec, now)
        existing: dict[str, str] = {
            phone: digest
            for phone, digest in session.execute(
                select(Contact.phone, Contact.source_hash).where(Contact.campaign_id == campaign.id)
            )
        }
        dnc = set(session.scalars(select(DncEntry.phone)))
        batch: list[dict[str, Any]] = []
        rejected_values: dict[int, list[str]] = {}
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
            batch.append(_contact_values(campaign.id, parsed, is_dnc, now))
            if len(batch) >= _INSERT_CHUNK:
                report.imported += _insert(session, batch)
        report.imported += _insert(session, batch)
        if report.dnc_marked:
            _record_dnc_events(session, campaign.id, now)
    report.rejects_file = write_rejects(path, header, report.rejects, rejected_values, rejects_fallback_dir)
    return report


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
        "state": "pending",
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
            [{"contact_id": i, "at": now, "kind": EventKind.DNC_MARKED, "detail": "import"} for i in ids],
        )
