"""``campaign export``: one CSV row per contact with its attempts, last result and outcome.

Streams from the database (``yield_per``) so a campaign of a million contacts does not
need a million objects in memory. Contact fields from the import come last, one column each.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from dialer.db import CampaignNotFoundError, DialerDataError
from dialer.models import Attempt, Campaign, Contact

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
    "last_result",
    "last_sip_status",
    "last_attempt_at",
    "outcome",
    "outcome_at",
    "recording_id",
)
_TIME_COLUMNS = tuple(i for i, name in enumerate(COLUMNS) if name.endswith(("_at", "_start", "_end")))
_DNC_COLUMN = COLUMNS.index("dnc")


def _iso(value: object) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else ""


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
        last = (
            select(Attempt.contact_id, func.max(Attempt.id).label("attempt_id"))
            .where(Attempt.contact_id.in_(select(Contact.id).where(Contact.campaign_id == camp.id)))
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
                Contact.attempts,
                Contact.last_result,
                Attempt.sip_status,
                Attempt.started_at,
                Contact.outcome,
                Contact.outcome_at,
                Contact.recording_id,
                Contact.fields,
            )
            .outerjoin(last, last.c.contact_id == Contact.id)
            .outerjoin(Attempt, Attempt.id == last.c.attempt_id)
            .where(Contact.campaign_id == camp.id)
            .order_by(Contact.row_number, Contact.id)
            .execution_options(yield_per=5000)
        )
        writer = csv.writer(out)
        writer.writerow([*COLUMNS, *field_names])
        for row in session.execute(query):
            values: list[Any] = list(row)
            fields = values.pop()
            for i in _TIME_COLUMNS:
                values[i] = _iso(values[i])
            values[_DNC_COLUMN] = "yes" if values[_DNC_COLUMN] else "no"
            values.extend(fields.get(k, "") for k in field_names)
            writer.writerow(["" if v is None else v for v in values])
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
