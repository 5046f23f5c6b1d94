"""One call-list row to a contact: the pure checks of :mod:`dialer.importer`.

:class:`RowParser` turns a CSV record into a :class:`ContactRow` or the rejects that say, per
field, why it cannot be stored (see :mod:`dialer.importer` for the rules). No database; the
time is passed in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers

from dialer.call_list_columns import STANDARD_COLUMNS
from dialer.call_list_csv import Reject, control_character
from dialer.callee_zone import zone_exists, zone_for_number
from dialer.calling_hours import CallingHours
from dialer.db import DialerDataError
from dialer.models import CampaignKind, MachinePolicy
from dialer.retry_policy import RetryPolicy
from dialer.scheduler import CampaignPolicy

MAX_PRIORITY = 1_000_000
YEARS = (1970, 2200)  # a cooling-off end outside these is a typo (and would overflow the window)


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

    def __init__(self, header: Sequence[str], spec: CampaignSpec, now: datetime | None = None) -> None:
        """``now`` given: a row whose deadline is not after it is rejected."""
        self.header = list(header)
        self.spec = spec
        self.now = now
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
        start, end = self.policy.window_for(coe)
        if self.now is not None and end is not None and end <= self.now:
            return [Reject(row, "cooling_off_end", self._passed(end))]
        self._seen[phone] = row
        fields = {name: values[i] for i, name in self._extra}
        first, last = self._get(values, "first_name"), self._get(values, "last_name")
        digest = hashlib.sha256(
            json.dumps(
                [phone, first, last, tz, coe.isoformat() if coe else "", priority, fields], sort_keys=True
            ).encode()
        ).hexdigest()
        return ContactRow(row, phone, raw_phone, first, last, tz, coe, start, end, priority, fields, digest)

    def _passed(self, end: datetime) -> str:
        hours = self.spec.callback_window.total_seconds() / 3600
        return (
            f"the deadline {end.isoformat()} (cooling-off end + {hours:g} h callback window)"
            " has already passed"
        )

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
