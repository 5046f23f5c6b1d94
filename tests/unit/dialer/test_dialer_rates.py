"""Campaign rates on constructed rows, against figures computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dialer.rates import (
    SUCCESS_OUTCOMES,
    AttemptFacts,
    ContactFacts,
    hourly,
    rates,
    success_outcomes,
)
from flows.loader import load_flow

T = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
S = timedelta(seconds=1)
LIBRARY = Path(__file__).resolve().parents[3] / "flows" / "library"


def person(
    contact: int, at: datetime, flow_after: timedelta | None, outcome: str | None = None
) -> AttemptFacts:
    """A call a person answered 5 s after the INVITE; the flow started ``flow_after`` later."""
    answered = at + 5 * S
    return AttemptFacts(
        contact_id=contact,
        result="answered_human",
        invite_at=at,
        answered_at=answered,
        flow_started_at=None if flow_after is None else answered + flow_after,
        ended_at=answered + 60 * S,
        flow_outcome=outcome,
    )


def plain(contact: int, result: str, at: datetime | None) -> AttemptFacts:
    return AttemptFacts(contact_id=contact, result=result, invite_at=at, ended_at=at and at + 30 * S)


# Ten contacts of a compliance callback campaign:
#   1 confirmed at the first call                      reached, success
#   2 busy, then a machine, then confirmed             reached, success
#   3 declined (flow started 3 s after the answer)     reached, abandoned
#   4 machine twice                                    dialled, not reached
#   5 no answer                                        dialled, not reached
#   6 person, no flow at all (hung up in dead air)     reached, abandoned
#   7 on the do-not-call list, never dialled           excluded
#   8 only a cancelled attempt (we hung up first)      excluded
#   9 a check at dial time cancelled it (no INVITE)    excluded
#  10 never dialled yet                                excluded
CONTACTS = [
    ContactFacts(1, "confirmed"),
    ContactFacts(2, "confirmed"),
    ContactFacts(3, "declined"),
    ContactFacts(4, None),
    ContactFacts(5, None),
    ContactFacts(6, "no_decision"),
    ContactFacts(7, "do_not_call", dnc=True),
    ContactFacts(8, None),
    ContactFacts(9, None),
    ContactFacts(10, None),
]
ATTEMPTS = [
    person(1, T, 1 * S, "confirmed"),
    plain(2, "busy", T + 10 * S),
    plain(2, "answered_machine", T + timedelta(minutes=30)),
    person(2, T + timedelta(hours=1, minutes=5), 2 * S, "confirmed"),  # exactly 2 s: not abandoned
    person(3, T + timedelta(minutes=10), 3 * S, "declined"),
    plain(4, "answered_machine", T + timedelta(minutes=20)),
    plain(4, "answered_machine", T + timedelta(hours=1, minutes=20)),
    plain(5, "no_answer", T + timedelta(minutes=40)),
    person(6, T + timedelta(hours=1, minutes=30), None, "no_decision"),
    AttemptFacts(8, "cancelled", invite_at=T + timedelta(minutes=50), ended_at=T + timedelta(minutes=51)),
    AttemptFacts(9, "cancelled", invite_at=None),
]
SUCCESS = frozenset({"confirmed"})


def test_campaign_rates_match_the_hand_computed_figures() -> None:
    r = rates(CONTACTS, ATTEMPTS, SUCCESS)
    assert r.attempts == 9  # 11 rows less the two cancelled ones
    assert (r.contacts_dialled, r.contacts_reached, r.contacts_succeeded) == (6, 4, 2)
    assert r.connect_rate == pytest.approx(4 / 6)  # machines (contact 4) are not people
    assert r.success_rate == pytest.approx(2 / 4)  # over connected contacts, not every contact
    assert (r.machine, r.answered) == (3, 7)
    assert r.machine_rate == pytest.approx(3 / 7)
    assert (r.abandoned, r.person_answered) == (2, 4)
    assert r.abandonment_rate == pytest.approx(0.5)


def test_rates_since_a_moment_take_only_later_calls() -> None:
    r = rates(CONTACTS, ATTEMPTS, SUCCESS, since=T + timedelta(hours=1))
    # Contacts 2 (confirmed), 4 (machine) and 6 (dead air) were dialled after T + 1 h.
    assert (r.attempts, r.contacts_dialled, r.contacts_reached, r.contacts_succeeded) == (3, 3, 2, 1)
    assert (r.abandoned, r.person_answered) == (1, 2)


def test_hourly_buckets_by_invite_hour() -> None:
    rows = hourly(ATTEMPTS, SUCCESS)
    assert [hour for hour, _ in rows] == [T, T + timedelta(hours=1)]
    first, second = rows[0][1], rows[1][1]
    # 09:xx: contacts 1, 2 (busy, machine), 3, 4, 5 dialled; 1 and 3 reached; 1 confirmed.
    assert (first.attempts, first.contacts_dialled, first.contacts_reached) == (6, 5, 2)
    assert first.success_rate == pytest.approx(0.5)
    assert (first.machine, first.answered, first.abandoned, first.person_answered) == (2, 4, 1, 2)
    # 10:xx: contacts 2 (confirmed), 4 (machine), 6 (dead air).
    assert (second.attempts, second.contacts_dialled, second.contacts_reached) == (3, 3, 2)
    assert second.connect_rate == pytest.approx(2 / 3) and second.success_rate == pytest.approx(0.5)


def test_no_calls_means_no_rate_rather_than_zero() -> None:
    r = rates(CONTACTS, [AttemptFacts(1, "cancelled", invite_at=T)], SUCCESS)
    assert r.attempts == 0
    assert (r.connect_rate, r.success_rate, r.machine_rate, r.abandonment_rate) == (None, None, None, None)
    assert hourly([], SUCCESS) == []


def test_a_call_in_progress_counts_once_it_has_a_result() -> None:
    live = AttemptFacts(1, None, invite_at=T, answered_at=T + S)
    assert rates([ContactFacts(1)], [live], SUCCESS).contacts_dialled == 0
    assert rates([ContactFacts(1)], [live, plain(1, "busy", T - 60 * S)], SUCCESS).contacts_dialled == 1


def test_a_person_answer_without_a_known_answer_time_is_not_judged_for_abandonment() -> None:
    unknown = AttemptFacts(1, "answered", invite_at=T, answered_at=None, flow_started_at=None)
    r = rates([ContactFacts(1)], [unknown], SUCCESS)
    assert (r.contacts_reached, r.person_answered, r.abandonment_rate) == (1, 0, None)


def test_a_contact_put_on_the_list_after_it_was_reached_keeps_its_call() -> None:
    called = person(1, T, 1 * S, "do_not_call")
    r = rates([ContactFacts(1, "do_not_call", dnc=True)], [called], SUCCESS)
    assert (r.contacts_dialled, r.contacts_reached, r.contacts_succeeded) == (1, 1, 0)


def test_success_outcomes_are_outcomes_the_kind_s_library_flow_can_end_with() -> None:
    for kind, outcomes in SUCCESS_OUTCOMES.items():
        flow = load_flow(LIBRARY / f"{kind}.yaml")
        ended_with = {step.outcome for step in flow.steps.values() if step.outcome}
        assert outcomes <= ended_with, (kind, outcomes, ended_with)
    assert success_outcomes("compliance_callback") == {"confirmed"}
    assert success_outcomes("retention", ["renewed"]) == {"retained", "renewed"}
