"""``campaign export``: one CSV row per contact with its attempts, last call and outcome.

Streams from the database (``yield_per``) so a campaign of a million contacts does not
need a million objects in memory. Contact fields from the import come last, one column each.

Attempts we cancelled ourselves (a pause, a shutdown) are not counted; the last call's
columns (``last_*``, ``answered_at``, ``ended_at``, ``decision_*``) describe the last attempt
that was not cancelled. ``retry_at`` is when the contact is next due, for contacts without a
final outcome (not on the do-not-call list).

Every cell is escaped against spreadsheet formula injection (OWASP "CSV injection"): a cell
starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading ``'`` so Excel,
LibreOffice and Google Sheets show it as text instead of running it. A plain signed number
(an E.164 phone number, a negative priority) cannot hold a formula and is left as it is.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, func, or_, select
from sqlalchemy.orm import Session

from dialer.call_result import CallResult
from dialer.db import CampaignNotFoundError, DialerDataError
from dialer.models import Attempt, Campaign, Contact, ContactState

COLUMNS = (
    "row",
    "phone",
    "first_name",
    "last_name",
    "timezone",
    "window_start",
    "window_end",
    "dnc",
    "state",
    "attempts",
    "retry_at",
    "last_result",
    "last_sip_status",
    "last_invite_at",
    "answered_at",
    "ended_at",
    "outcome",
    "outcome_at",
    "decision_text",
    "decision_confidence",
    "recording_id",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")
_NOT_CANCELLED = or_(Attempt.result.is_(None), Attempt.result != CallResult.CANCELLED.value)


def safe_cell(value: object) -> str:
    """``value`` as a CSV cell no spreadsheet runs as a formula (see the module docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def export_campaign(engine: Engine, name: str, out: IO[str]) -> int:
    """Write the campaign's contacts as CSV to ``out``; returns the number of contacts."""
    count = 0
    with Session(engine) as session:
        camp = session.scalars(select(Campaign).where(Campaign.name == name)).one_or_none()
        if camp is None:
            raise CampaignNotFoundError(name)
        field_names: dict[str, None] = {}  # ordered set over every import into the campaign
        fields_query = select(Contact.fields).where(Contact.campaign_id == camp.id)
        for fields in session.scalars(fields_query.execution_options(yield_per=5000)):
            field_names.update((k, None) for k in fields if k not in COLUMNS)
        of_campaign = Attempt.contact_id.in_(select(Contact.id).where(Contact.campaign_id == camp.id))
        counted = (
            select(
                Attempt.contact_id,
                func.max(Attempt.id).label("attempt_id"),
                func.count().label("attempts"),
            )
            .where(of_campaign, _NOT_CANCELLED)
            .group_by(Attempt.contact_id)
            .subquery()
        )
        query = (
            select(
                Contact.row_number,
                Contact.phone,
                Contact.first_name,
                Contact.last_name,
                Contact.timezone,
                Contact.window_start,
                Contact.window_end,
                Contact.dnc,
                Contact.state,
                func.coalesce(counted.c.attempts, 0),
                Contact.next_attempt_at,
                Attempt.result,
                Attempt.sip_status,
                Attempt.invite_at,
                Attempt.answered_at,
                Attempt.ended_at,
                Contact.outcome,
                Contact.outcome_at,
                Attempt.decision_text,
                Attempt.decision_confidence,
                Contact.recording_id,
                Contact.fields,
            )
            .outerjoin(counted, counted.c.contact_id == Contact.id)
            .outerjoin(Attempt, Attempt.id == counted.c.attempt_id)
            .where(Contact.campaign_id == camp.id)
            .order_by(Contact.row_number, Contact.id)
            .execution_options(yield_per=5000)
        )
        writer = csv.writer(out)
        writer.writerow([safe_cell(name) for name in (*COLUMNS, *field_names)])
        retry_at = COLUMNS.index("retry_at")
        for row in session.execute(query):
            values: list[Any] = list(row)
            fields = values.pop()
            if values[COLUMNS.index("state")] == ContactState.DONE or values[COLUMNS.index("dnc")]:
                values[retry_at] = None  # a final contact is not due again
            values.extend(fields.get(k, "") for k in field_names)
            writer.writerow([safe_cell(v) for v in values])
            count += 1
    return count


def export_to_file(engine: Engine, name: str, path: Path) -> int:
    """Write to ``path`` through a temporary file, so a failed export leaves no half file."""
    tmp = path.with_name(path.name + ".part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w", encoding="utf-8", newline="") as out:
            count = export_campaign(engine, name, out)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DialerDataError(f"{path}: cannot write export: {exc.strerror}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count
