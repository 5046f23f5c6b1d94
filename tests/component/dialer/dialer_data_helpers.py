"""Builders shared by the dialer data tests (imported by basename: pytest puts this
directory on ``sys.path``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from dialer.models import Campaign, CampaignState, Contact

T0 = datetime(2025, 3, 3, 6, 0, tzinfo=UTC)  # a Monday, 14:00 in Shanghai
ALWAYS_OPEN = {"default": "00:00-24:00"}


def make_campaign(
    engine: Engine,
    name: str = "march",
    *,
    state: CampaignState = CampaignState.RUNNING,
    kind: str = "compliance_callback",
    calling_hours: dict[str, Any] | None = None,
    retry: dict[str, Any] | None = None,
    created: datetime = T0,
) -> int:
    with Session(engine) as session, session.begin():
        campaign = Campaign(
            name=name,
            kind=kind,
            flow="flows/library/callback.yaml",
            region="CN",
            state=state.value,
            calling_hours=calling_hours if calling_hours is not None else {},
            retry=retry or {},
            created_at=created,
        )
        session.add(campaign)
        session.flush()
        return campaign.id


def add_contacts(
    engine: Engine,
    campaign_id: int,
    count: int,
    *,
    start: datetime = T0 - timedelta(hours=1),
    window: timedelta = timedelta(hours=24),
    tz: str = "Asia/Shanghai",
    priorities: Sequence[int] | None = None,
    first_phone: int = 13800000000,
) -> list[int]:
    rows = [
        {
            "campaign_id": campaign_id,
            "row_number": i + 2,
            "phone": f"+86{first_phone + i}",
            "raw_phone": str(first_phone + i),
            "first_name": f"N{i}",
            "last_name": "X",
            "timezone": tz,
            "cooling_off_end": start,
            "window_start": start,
            "window_end": start + window,
            "priority": priorities[i] if priorities else 0,
            "fields": {"product": "Fund A"},
            "source_hash": f"h{i}",
            "dnc": False,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": start,
            "lease_token": 0,
        }
        for i in range(count)
    ]
    with Session(engine) as session, session.begin():
        session.execute(insert(Contact), rows)
        phones = [str(row["phone"]) for row in rows]
        found = dict(
            session.execute(select(Contact.phone, Contact.id).where(Contact.phone.in_(phones))).all()
        )
    return [found[phone] for phone in phones]
