"""Intake's one write path (:func:`dialer.intake.add_contact`) on SQLite and PostgreSQL: what is
stored, with which event, what is refused (and then nothing is stored), and that the stored
contact is one the dialer's store leases."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from dialer import dnc
from dialer.db import make_engine
from dialer.intake import add_contact
from dialer.intake_answers import IntakeAnswer, IntakeStatus
from dialer.intake_log import log_answer
from dialer.intake_request import IntakeRequest, decode_request
from dialer.models import Campaign, CampaignState, Contact, ContactEvent, EventKind
from dialer.store import DialerStore
from tests.component.dialer.dialer_data_helpers import ALWAYS_OPEN, T0, make_campaign

NUMBER = "+8613812345678"
COOLING_OFF_END = "2025-03-03T10:00:00+08:00"  # 02:00 UTC, before T0 (06:00 UTC, 14:00 Shanghai)


def body(**values: Any) -> bytes:
    base: dict[str, Any] = {"phone": "138 1234 5678", "cooling_off_end": COOLING_OFF_END}
    base.update(values)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


def submit(
    engine: Engine, payload: bytes, campaign: str = "march", now: datetime = T0, source: str = "http"
) -> IntakeAnswer:
    decoded = decode_request(payload)
    if isinstance(decoded, IntakeAnswer):
        return decoded
    assert isinstance(decoded, IntakeRequest)
    return add_contact(engine, campaign, decoded, source=source, now=now)


def counts(engine: Engine) -> tuple[int, int]:
    with Session(engine) as session:
        contacts = session.scalar(select(func.count()).select_from(Contact)) or 0
        events = session.scalar(select(func.count()).select_from(ContactEvent)) or 0
    return contacts, events


def test_dialer_intake_db_stores_a_contact_like_an_import(engine: Engine) -> None:
    make_campaign(engine, calling_hours={"default": "09:00-21:00"})
    result = submit(engine, body(first_name="Li", fields={"product": "Fund A"}, request_id="r-1"))
    assert result.status is IntakeStatus.CREATED and result.http_status == 201
    assert result.request_id == "r-1"
    added = result.contact
    assert added is not None and added.dialable_now and added.next_attempt_at == T0
    assert added.deadline == datetime(2025, 3, 4, 2, 0, tzinfo=UTC)
    with Session(engine) as session:
        contact = session.scalars(select(Contact)).one()
        events = list(session.scalars(select(ContactEvent)))
    assert contact.id == added.contact_id
    assert (contact.phone, contact.raw_phone, contact.timezone) == (NUMBER, "138 1234 5678", "Asia/Shanghai")
    assert contact.window_start == datetime(2025, 3, 3, 2, 0, tzinfo=UTC)
    assert contact.window_end == datetime(2025, 3, 4, 2, 0, tzinfo=UTC)
    assert contact.fields == {"product": "Fund A"} and contact.first_name == "Li"
    assert (contact.state, contact.row_number, contact.dnc, contact.next_attempt_at) == (
        "pending",
        0,
        False,
        T0,
    )
    assert len(contact.source_hash) == 64
    assert [(e.contact_id, e.kind, e.detail, e.at) for e in events] == [
        (contact.id, EventKind.IMPORTED, "intake http", T0)
    ]
    body_json = result.body()
    assert body_json["contact_id"] == contact.id and body_json["next_attempt_at"] == "2025-03-03T06:00:00Z"
    # The dialer's own store takes it at once.
    leases = DialerStore(engine).lease("w1", T0)
    assert [lease.contact_id for lease in leases] == [contact.id]


def test_dialer_intake_db_same_request_again_changes_nothing(engine: Engine) -> None:
    make_campaign(engine, calling_hours=ALWAYS_OPEN)
    first = submit(engine, body(request_id="a"))
    again = submit(engine, body(phone="+86 138-1234-5678", request_id="b"), source="mqtt")
    assert again.status is IntakeStatus.UNCHANGED and again.http_status == 200
    assert again.contact is not None and first.contact is not None
    assert again.contact.contact_id == first.contact.contact_id and again.request_id == "b"
    assert counts(engine) == (1, 1)


def test_dialer_intake_db_same_number_other_data_is_a_conflict(engine: Engine) -> None:
    make_campaign(engine, calling_hours=ALWAYS_OPEN)
    first = submit(engine, body())
    other = submit(engine, body(first_name="Someone else"))
    assert other.status is IntakeStatus.DUPLICATE and other.http_status == 409
    assert first.contact is not None and other.body()["contact_id"] == first.contact.contact_id
    assert [p.field for p in other.problems] == ["phone"]
    assert counts(engine) == (1, 1)


def test_dialer_intake_db_do_not_call_number_is_stored_marked(engine: Engine) -> None:
    make_campaign(engine, calling_hours=ALWAYS_OPEN)
    dnc.add(engine, NUMBER, "asked", T0 - timedelta(days=1))
    result = submit(engine, body(), source="mqtt")
    assert result.status is IntakeStatus.CREATED and result.contact is not None
    assert result.contact.do_not_call and not result.contact.dialable_now
    assert result.contact.next_attempt_at is None and result.body()["next_attempt_at"] is None
    assert "do-not-call" in result.message
    with Session(engine) as session:
        contact = session.scalars(select(Contact)).one()
        kinds = [(e.kind, e.detail) for e in session.scalars(select(ContactEvent).order_by(ContactEvent.id))]
    assert contact.dnc
    # Closed at once (issue 14): never leased, never reported expired at its deadline.
    assert (contact.state, contact.outcome, contact.outcome_at) == ("done", "do_not_call", T0)
    assert kinds == [
        (EventKind.IMPORTED, "intake mqtt"),
        (EventKind.DNC_MARKED, "intake mqtt; outcome do_not_call"),
    ]
    assert DialerStore(engine).lease("w1", T0) == []


def test_dialer_intake_db_outside_calling_hours_waits_for_them(engine: Engine) -> None:
    make_campaign(engine, calling_hours={"default": "09:00-21:00"})
    late = T0 + timedelta(hours=8)  # 22:00 in Shanghai
    result = submit(engine, body(), now=late)
    assert result.status is IntakeStatus.CREATED and result.contact is not None
    assert not result.contact.dialable_now
    assert result.contact.next_attempt_at == datetime(2025, 3, 4, 1, 0, tzinfo=UTC)  # 09:00 next morning
    assert DialerStore(engine).lease("w1", late) == []


def test_dialer_intake_db_paused_campaign_takes_contacts(engine: Engine) -> None:
    make_campaign(engine, state=CampaignState.PAUSED, calling_hours=ALWAYS_OPEN)
    result = submit(engine, body())
    assert result.status is IntakeStatus.CREATED and result.contact is not None
    assert result.contact.campaign_state == "paused" and not result.contact.dialable_now


@pytest.mark.parametrize("state", [CampaignState.DRAFT, CampaignState.FINISHED])
def test_dialer_intake_db_campaign_not_running_is_a_conflict(engine: Engine, state: CampaignState) -> None:
    make_campaign(engine, state=state)
    result = submit(engine, body())
    assert result.status is IntakeStatus.CAMPAIGN_NOT_RUNNING and result.http_status == 409
    assert state.value in result.message
    assert counts(engine) == (0, 0)


@pytest.mark.parametrize("name", ["april", "", "x" * 201, "mar\x00ch", "mar\nch", "\ud800"])
def test_dialer_intake_db_unknown_campaign_is_not_found(engine: Engine, name: str) -> None:
    make_campaign(engine)
    result = submit(engine, body(), campaign=name)
    assert result.status is IntakeStatus.CAMPAIGN_NOT_FOUND and result.http_status == 404
    assert "\x00" not in result.message and "\n" not in result.message
    assert counts(engine) == (0, 0)


def test_dialer_intake_db_row_checks_are_the_importers(engine: Engine) -> None:
    make_campaign(engine)
    cases = {
        "phone": body(phone="12345"),
        "cooling_off_end": body(cooling_off_end=...),
        "timezone": body(timezone="Mars/Olympus"),
        "priority": body(priority=2_000_000),
        "first_name": body(first_name="Li\x00"),
        "fields.note": body(fields={"note": "a\x1b[2Jb"}),
    }
    for field, payload in cases.items():
        result = submit(engine, payload)
        assert result.status is IntakeStatus.INVALID and result.http_status == 422, (field, result)
        assert [p.field for p in result.problems] == [field], result
    assert counts(engine) == (0, 0)


def test_dialer_intake_db_a_callback_that_can_never_be_placed_is_refused(engine: Engine) -> None:
    make_campaign(engine, calling_hours={"default": "09:00-10:00"})
    closed = submit(engine, body(cooling_off_end="2025-03-01T10:00:00+08:00"))  # window ended 2 Mar
    assert closed.status is IntakeStatus.INVALID
    assert closed.problems[0].field == "cooling_off_end" and "window closed" in closed.problems[0].reason
    with Session(engine) as session, session.begin():
        session.execute(update(Campaign).values(callback_window_s=3600))
    no_hours = submit(engine, body(cooling_off_end="2025-03-03T15:00:00+08:00"))  # 15:00-16:00 local
    assert no_hours.status is IntakeStatus.INVALID
    assert "no calling hours in Asia/Shanghai remain" in no_hours.problems[0].reason
    assert counts(engine) == (0, 0)


def test_dialer_intake_db_retention_campaign_that_ended_is_a_conflict(engine: Engine) -> None:
    make_campaign(engine, kind="retention", calling_hours=ALWAYS_OPEN)
    with Session(engine) as session, session.begin():
        session.execute(
            update(Campaign).values(starts_at=T0 - timedelta(days=2), ends_at=T0 - timedelta(hours=1))
        )
    result = submit(engine, body(cooling_off_end=...))
    assert result.status is IntakeStatus.CAMPAIGN_NOT_RUNNING and "ended at" in result.message
    assert counts(engine) == (0, 0)


def test_dialer_intake_db_retention_contact_gets_the_campaign_dates(engine: Engine) -> None:
    make_campaign(engine, kind="retention", calling_hours=ALWAYS_OPEN)
    starts, ends = T0 + timedelta(hours=2), T0 + timedelta(days=7)
    with Session(engine) as session, session.begin():
        session.execute(update(Campaign).values(starts_at=starts, ends_at=ends))
    result = submit(engine, body(cooling_off_end=...))
    assert result.status is IntakeStatus.CREATED and result.contact is not None
    assert result.contact.next_attempt_at == starts and result.contact.deadline == ends


def test_dialer_intake_db_simultaneous_requests_store_one_contact(engine: Engine) -> None:
    make_campaign(engine, calling_hours=ALWAYS_OPEN)
    results: list[IntakeAnswer] = []
    barrier = threading.Barrier(4)

    def send() -> None:
        barrier.wait()
        results.append(submit(engine, body()))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    statuses = sorted(r.status.value for r in results)
    assert statuses == ["created", "unchanged", "unchanged", "unchanged"], results
    assert counts(engine) == (1, 1)


def test_dialer_intake_db_numbers_never_reach_the_log(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    make_campaign(engine, calling_hours=ALWAYS_OPEN)
    caplog.set_level(logging.DEBUG)
    for payload in (body(), body(phone="13912345678x"), body(first_name="other")):
        log_answer(submit(engine, payload), source="http", campaign="march", client="127.0.0.1")
    logged = " ".join(f"{r.getMessage()} {getattr(r, 'fields', {})}" for r in caplog.records)
    assert "intake.created" in logged and "intake.refused" in logged
    for digits in ("13812345678", "13912345678", "1381234"):
        assert digits not in logged
    assert "+***********78" in logged


def test_dialer_intake_db_unreachable_database_is_503() -> None:
    dead = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    try:
        result = submit(dead, body())
    finally:
        dead.dispose()
    assert result.status is IntakeStatus.UNAVAILABLE and result.http_status == 503
    assert "nothing stored" in result.message
