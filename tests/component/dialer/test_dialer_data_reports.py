"""Status (counts, rates, deadlines at risk), export (attempts, last result, recording) and
the do-not-call list acting on contacts, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dialer import dnc
from dialer.call_result import CallResult
from dialer.db import CampaignNotFoundError
from dialer.export import export_campaign
from dialer.models import Contact, ContactEvent, EventKind
from dialer.status import campaign_status, format_status
from dialer.store import AttemptReport, DialerStore
from tests.component.dialer.dialer_data_helpers import ALWAYS_OPEN, T0, add_contacts, make_campaign


def call(store: DialerStore, result: CallResult, outcome: str | None = None, sip: int | None = None) -> None:
    (lease,) = store.lease("w", T0)
    attempt = store.start_attempt(lease, T0)
    assert attempt is not None
    report = AttemptReport(result, T0, T0 + timedelta(seconds=40), sip, outcome, f"rec-{lease.contact_id}")
    store.finish_attempt(lease, attempt, report, T0)


def test_dialer_data_status_counts_rates_and_risk(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN)
    urgent = add_contacts(engine, cid, 2, window=timedelta(hours=2), first_phone=13800000000)
    later = add_contacts(engine, cid, 3, window=timedelta(hours=20), first_phone=13900000000)
    store = DialerStore(engine)
    call(store, CallResult.ANSWERED_HUMAN, "confirmed", 200)  # urgent[0]
    call(store, CallResult.BUSY, sip=486)  # urgent[1]: retried later
    call(store, CallResult.ANSWERED_HUMAN, "declined", 200)  # later[0]
    call(store, CallResult.ANSWERED_MACHINE, sip=200)  # later[1]
    status = campaign_status(engine, "march", T0, horizon=timedelta(hours=2))
    assert status.contacts == 5
    assert status.by_state == {"done": 2, "pending": 3}
    assert status.by_outcome == {"confirmed": 1, "declined": 1}
    assert (status.attempts, status.connected_attempts) == (4, 3)
    assert status.connect_rate == pytest.approx(0.75)
    assert status.success_rate == pytest.approx(0.5)
    assert [r.contact_id for r in status.at_risk] == [urgent[1]]
    assert status.at_risk[0].last_result == "busy"
    text = format_status(status)
    assert "connect rate: 75.0 %  success rate: 50.0 %" in text
    risk_line = (
        f"contact {urgent[1]} (row 3): deadline 2025-03-03T07:00:00+00:00"
        ", 1 attempts, last result busy"
    )
    assert risk_line in text
    assert "+86" not in text  # no callee numbers on screen or in logs
    assert later[2] not in [r.contact_id for r in status.at_risk]
    with pytest.raises(CampaignNotFoundError):
        campaign_status(engine, "nope", T0)


def test_dialer_data_export_has_attempts_result_outcome_recording(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN, retry={"busy": "0s"})
    add_contacts(engine, cid, 2)
    store = DialerStore(engine)
    call(store, CallResult.BUSY, sip=486)
    call(store, CallResult.BUSY, sip=486)
    call(store, CallResult.ANSWERED_HUMAN, "confirmed", 200)
    out = io.StringIO()
    assert export_campaign(engine, "march", out) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0])[-1] == "product"
    by_phone = {r["phone"]: r for r in rows}
    first = by_phone["+8613800000000"]
    assert (first["attempts"], first["last_result"]) == ("2", "answered_human")
    assert first["last_sip_status"] == "200"
    assert (first["outcome"], first["state"], first["product"]) == ("confirmed", "done", "Fund A")
    assert first["recording_id"].startswith("rec-") and first["outcome_at"] == T0.isoformat()
    second = by_phone["+8613800000001"]
    assert (second["attempts"], second["last_result"], second["outcome"]) == ("1", "busy", "")
    assert second["last_sip_status"] == "486" and second["state"] == "pending"


def test_dialer_data_dnc_add_marks_contacts_and_stops_a_leased_call(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN)
    (first,) = add_contacts(engine, cid, 1)
    other = make_campaign(engine, "april")
    (same_number,) = add_contacts(engine, other, 1)  # the same number in another campaign
    store = DialerStore(engine)
    (lease,) = store.lease("w", T0, campaign="march")
    phone, added, marked = dnc.add(engine, "138 0000 0000", "asked on the phone", T0, region="CN")
    assert (phone, added, marked) == ("+8613800000000", True, 2)
    assert store.start_attempt(lease, T0) is None  # the last check before dialling
    assert dnc.add(engine, "+8613800000000", "again", T0)[1:] == (False, 0)
    with Session(engine) as session:
        flags = {c.id: (c.dnc, c.state) for c in session.scalars(select(Contact))}
        kinds = [e.kind for e in session.scalars(select(ContactEvent).order_by(ContactEvent.id))]
    assert flags == {first: (True, "pending"), same_number: (True, "pending")}
    assert kinds == [EventKind.DNC_MARKED, EventKind.DNC_MARKED]
    assert store.lease("w", T0, limit=5) == []
    assert [e.phone for e in dnc.listing(engine)] == ["+8613800000000"]
    assert dnc.remove(engine, "+8613800000000", T0) == ("+8613800000000", 2)
    assert [lease.contact_id for lease in store.lease("w", T0, limit=5, campaign="march")] == [first]
