"""One contact's share of its campaign's counters (:func:`dialer.hourly_counters.share`): the
distinct figures count the contact once per hour, live and cancelled attempts add nothing but
what the wallboard reads live, and the latest dialled / reached / succeeded times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dialer.hourly_counters import IN_CALL, outcome_label, share
from dialer.rates import AttemptFacts, Rates

H = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
S = timedelta(seconds=1)
SUCCESS = frozenset({"confirmed"})


def attempt(
    invite: datetime | None,
    result: str | None,
    *,
    ended: bool = True,
    answered_at: datetime | None = None,
    flow_started_at: datetime | None = None,
    flow_outcome: str | None = None,
) -> AttemptFacts:
    """An attempt of contact 7; ended a minute after its INVITE unless ``ended`` is False."""
    return AttemptFacts(
        contact_id=7,
        invite_at=invite,
        result=result,
        ended_at=invite + 60 * S if invite is not None and ended else None,
        answered_at=answered_at,
        flow_started_at=flow_started_at,
        flow_outcome=flow_outcome,
    )


def test_a_contact_counts_once_per_hour_and_its_latest_times_are_kept() -> None:
    busy = attempt(H + 60 * S, "busy")
    machine = attempt(H + 30 * 60 * S, "answered_machine")
    person = attempt(
        H + 70 * 60 * S,
        "answered_human",
        answered_at=H + 70 * 60 * S + 5 * S,
        flow_started_at=H + 70 * 60 * S + 6 * S,
        flow_outcome="confirmed",
    )
    cancelled = attempt(H + 80 * 60 * S, "cancelled")
    live = attempt(H + 90 * 60 * S, None, ended=False)
    never = attempt(None, "cancelled")
    part = share([busy, machine, person, cancelled, live, never], SUCCESS)
    assert part.hours == {
        H: Rates(2, 1, 0, 0, 1, 1, 0, 0),
        H + timedelta(hours=1): Rates(1, 1, 1, 1, 1, 0, 1, 0),
    }
    assert part.outcomes == {
        (H, "busy"): 1,
        (H, "answered_machine"): 1,
        (H + timedelta(hours=1), "confirmed"): 1,
    }
    assert (part.dialled_at, part.reached_at, part.succeeded_at) == (person.invite_at,) * 3


def test_a_late_flow_is_abandoned_and_a_machine_is_no_person() -> None:
    late = attempt(H, "answered", answered_at=H + S, flow_started_at=H + 3 * S + S / 1000)
    on_time = attempt(H + 10 * S, "answered_human", answered_at=H + 11 * S, flow_started_at=H + 13 * S)
    part = share([late, on_time, attempt(H + 20 * S, "answered_machine")], SUCCESS)
    assert part.hours[H] == Rates(3, 1, 1, 0, 3, 1, 2, 1)
    assert part.succeeded_at is None and part.reached_at == H + 10 * S and part.dialled_at == H + 20 * S


def test_nothing_dialled_adds_nothing() -> None:
    part = share([attempt(None, None, ended=False), attempt(H, "cancelled")], SUCCESS)
    assert (part.hours, part.outcomes, part.dialled_at) == ({}, {}, None)


def test_outcome_labels() -> None:
    assert outcome_label(None, None, ended=False) == IN_CALL
    assert outcome_label(None, None, ended=True) == "ended"
    assert outcome_label("busy", None, ended=True) == "busy"
    assert outcome_label("answered", "confirmed", ended=True) == "confirmed"
