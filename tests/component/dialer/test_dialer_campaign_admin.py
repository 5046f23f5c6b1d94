"""``campaign list``, ``delete`` and ``recycle`` on SQLite and PostgreSQL: counts, refusals
while calls could race, what is re-queued and what is left alone, and the audit lines."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from config.errors import IvrError
from dialer.campaign_admin import delete_campaign, list_campaigns, parse_results, recycle_contacts
from dialer.db import CampaignNotFoundError, DialerDataError
from dialer.hourly_counters import count_change
from dialer.models import Attempt, Campaign, CampaignState, Contact, ContactEvent
from tests.component.dialer.dialer_data_helpers import ALWAYS_OPEN, T0, add_contacts, make_campaign


def set_contact(engine: Engine, contact: int, **values: Any) -> None:
    with Session(engine) as session, session.begin():
        session.execute(update(Contact).where(Contact.id == contact).values(**values))


def add_attempt(engine: Engine, contact: int, result: str | None) -> None:
    """An attempt ended with ``result`` (None: a call in progress), counted as the store does."""
    with Session(engine) as session, session.begin():
        attempt = Attempt(
            contact_id=contact,
            started_at=T0,
            invite_at=T0,
            ended_at=T0 if result else None,
            result=result,
            worker="w",
        )
        session.add(attempt)
        session.flush()
        count_change(session, session.get_one(Contact, contact), {attempt.id: None})


def count(engine: Engine, model: Any) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_list_counts_every_campaign(engine: Engine) -> None:
    march = make_campaign(engine, "march", state=CampaignState.PAUSED)
    ids = add_contacts(engine, march, 4)
    set_contact(engine, ids[0], state="done", outcome="confirmed")
    set_contact(engine, ids[1], state="in_call")
    set_contact(engine, ids[2], dnc=True)
    add_attempt(engine, ids[0], "answered_human")
    add_attempt(engine, ids[0], "cancelled")  # not counted
    add_attempt(engine, ids[1], None)  # in progress: counted
    make_campaign(engine, "april", kind="retention", state=CampaignState.DRAFT)
    summaries = {s.name: s for s in list_campaigns(engine)}
    assert list(summaries) == ["april", "march"]
    m = summaries["march"]
    assert (m.kind, m.state, m.contacts, m.pending, m.in_call, m.done, m.dnc, m.attempts) == (
        "compliance_callback",
        "paused",
        4,
        2,
        1,
        1,
        1,
        2,
    )
    assert summaries["april"].contacts == 0 and summaries["april"].kind == "retention"


def test_delete_is_refused_while_running_or_in_a_call_and_is_audited(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    march = make_campaign(engine, "march", state=CampaignState.RUNNING)
    ids = add_contacts(engine, march, 3)
    add_attempt(engine, ids[0], "busy")
    with Session(engine) as session, session.begin():
        session.add(ContactEvent(contact_id=ids[0], at=T0, kind="outcome", detail="x"))
    other = make_campaign(engine, "april")
    (kept,) = add_contacts(engine, other, 1, first_phone=13900000000)
    add_attempt(engine, kept, "busy")

    with pytest.raises(DialerDataError, match=r"campaign 'march' is running: pause it first"):
        delete_campaign(engine, "march", user="ana")
    with Session(engine) as session, session.begin():
        session.execute(update(Campaign).where(Campaign.id == march).values(state="paused"))
    set_contact(engine, ids[1], state="in_call")
    with pytest.raises(DialerDataError, match=r"still has 1 calls in progress"):
        delete_campaign(engine, "march", user="ana")
    set_contact(engine, ids[1], state="pending")

    caplog.set_level(logging.INFO, logger="ivr.dialer.audit")
    report = delete_campaign(engine, "march", user="ana")
    assert (report.contacts, report.attempts, report.events) == (3, 1, 1)
    assert [s.name for s in list_campaigns(engine)] == ["april"]
    assert (count(engine, Contact), count(engine, Attempt), count(engine, ContactEvent)) == (1, 1, 0)
    [record] = [r for r in caplog.records if r.name == "ivr.dialer.audit"]
    assert record.getMessage() == "campaign.deleted"
    assert record.fields == {  # type: ignore[attr-defined]
        "user": "ana",
        "campaign": "march",
        "kind": "compliance_callback",
        "state": "paused",
        "contacts": 3,
        "attempts": 1,
        "events": 1,
    }
    with pytest.raises(CampaignNotFoundError):
        delete_campaign(engine, "march")


def test_recycle_requeues_only_what_it_should(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    march = make_campaign(engine, "march", state=CampaignState.FINISHED, calling_hours=ALWAYS_OPEN)
    busy, unanswered, confirmed, listed, calling, late, declined = add_contacts(engine, march, 7)
    later = T0 + timedelta(hours=3)
    set_contact(engine, busy, state="done", outcome="max_attempts", last_result="busy", attempts=5)
    set_contact(engine, unanswered, last_result="no_answer", attempts=2, next_attempt_at=later)
    set_contact(engine, confirmed, state="done", outcome="confirmed", last_result="busy")
    set_contact(engine, listed, state="done", outcome="do_not_call", last_result="busy", dnc=True)
    set_contact(engine, calling, state="in_call", last_result="busy")
    set_contact(engine, late, state="done", outcome="expired", last_result="busy", window_end=T0)
    set_contact(engine, declined, state="done", outcome="declined", last_result="answered_human")

    caplog.set_level(logging.INFO, logger="ivr.dialer.audit")
    report = recycle_contacts(engine, "march", parse_results("busy, no_answer"), T0, user="ana")
    assert (report.recycled, report.past_deadline, report.reopened) == (2, 1, True)
    with Session(engine) as session:
        rows = {
            c.id: (c.state, c.attempts, c.outcome, c.next_attempt_at)
            for c in session.scalars(select(Contact).where(Contact.campaign_id == march))
        }
        events = session.execute(
            select(ContactEvent.contact_id, ContactEvent.kind, ContactEvent.detail)
        ).all()
        state = session.scalar(select(Campaign.state).where(Campaign.id == march))
    assert rows[busy] == ("pending", 0, None, T0)
    assert rows[unanswered] == ("pending", 0, None, T0)
    assert rows[confirmed][2] == "confirmed" and rows[listed][2] == "do_not_call"
    assert rows[calling][0] == "in_call" and rows[late][2] == "expired" and rows[declined][2] == "declined"
    assert state == "paused"
    assert sorted((cid, kind) for cid, kind, _ in events) == [(busy, "recycled"), (unanswered, "recycled")]
    assert any("by ana: last result busy, outcome max_attempts, 5 attempts" in d for _, _, d in events)
    [record] = [r for r in caplog.records if r.name == "ivr.dialer.audit"]
    assert record.getMessage() == "campaign.recycled"
    assert record.fields["contacts"] == 2 and record.fields["user"] == "ana"  # type: ignore[attr-defined]
    # Nothing matches any more: nothing changes, the campaign stays paused.
    assert recycle_contacts(engine, "march", {"rejected"}, T0, user="ana").recycled == 0


def test_recycle_checks_the_result_names() -> None:
    with pytest.raises(IvrError, match=r"--result 'busy,bussy': unknown result 'bussy' \(one or more of: "):
        parse_results("busy,bussy")
    with pytest.raises(IvrError, match="no result given"):
        parse_results(" , ")
