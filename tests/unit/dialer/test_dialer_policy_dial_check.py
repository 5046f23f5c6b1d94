"""The check right before an INVITE (``dial_check``), the last start before a deadline and the
deadline-margin warning: pure rules, stepped by hand and by hypothesis."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.call_result import PolicyError
from dialer.calling_hours import CallingHours
from dialer.retry_policy import RetryPolicy
from dialer.scheduler import (
    CampaignPolicy,
    ContactSlot,
    ContactState,
    Reason,
    dial_check,
    expired,
    is_dialable,
    last_start,
    margin_shortfall,
)

NY = "America/New_York"
S = timedelta(seconds=1)
GUARD = 2 * S
HOURS = CallingHours.from_config({"default": "09:00-17:08"})
POLICY = CampaignPolicy(hours=HOURS)
# Wednesday 5 March 2025, 17:08 in New York (EST, UTC-5).
CLOSE = datetime(2025, 3, 5, 22, 8, tzinfo=UTC)


def contact(**kw: object) -> ContactSlot:
    base = ContactSlot(
        id=1,
        e164="+12025550143",
        tz=NY,
        window_start=CLOSE - timedelta(days=1),
        window_end=CLOSE + timedelta(days=1),
        state=ContactState.LEASED,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_the_issue_case_a_call_two_seconds_after_closing_is_refused() -> None:
    """Leased at 17:07:50 New York time, dialled at 17:08:02 (hours end 17:08): no INVITE."""
    leased = CLOSE - 10 * S
    assert is_dialable(replace(contact(), state=ContactState.PENDING), POLICY, leased).ok
    late = dial_check(contact(), POLICY, CLOSE + 2 * S, GUARD)
    assert (late.ok, late.reason) == (False, Reason.OUTSIDE_CALLING_HOURS)
    assert late.not_before == datetime(2025, 3, 6, 14, 0, tzinfo=UTC)  # 09:00 next morning


def test_hours_closing_within_the_guard_refuse_the_dial() -> None:
    assert dial_check(contact(), POLICY, CLOSE - 3 * S, GUARD).ok
    assert not dial_check(contact(), POLICY, CLOSE - 2 * S, GUARD).ok
    assert not dial_check(contact(), POLICY, CLOSE - 1 * S, GUARD).ok
    assert dial_check(contact(), POLICY, CLOSE - 1 * S).ok  # no guard: open until 17:08:00


def test_the_last_start_is_the_deadline_less_the_margin() -> None:
    policy = CampaignPolicy(hours=CallingHours.from_config({"default": "00:00-24:00"}))
    end = CLOSE + timedelta(hours=1)
    slot = contact(window_end=end)
    assert last_start(slot, policy) == end - timedelta(minutes=5)
    assert last_start(contact(window_end=None), policy) is None
    cutoff = end - timedelta(minutes=5)
    assert dial_check(slot, policy, cutoff - 3 * S, GUARD).ok
    refused = dial_check(slot, policy, cutoff - 1 * S, GUARD)
    assert (refused.reason, refused.not_before) == (Reason.EXPIRED, None)
    assert not expired(replace(slot, state=ContactState.PENDING), cutoff - S, policy)
    assert expired(replace(slot, state=ContactState.PENDING), cutoff, policy)
    assert not expired(replace(slot, state=ContactState.PENDING), cutoff)  # no policy: the deadline


def test_campaign_end_counts_as_the_deadline_too() -> None:
    ends = CLOSE - timedelta(hours=3)
    policy = CampaignPolicy(hours=HOURS, ends_at=ends)
    assert last_start(contact(), policy) == ends - timedelta(minutes=5)
    assert dial_check(contact(), policy, ends - timedelta(minutes=4), GUARD).reason is Reason.EXPIRED


def test_do_not_call_attempts_and_window_are_rechecked() -> None:
    at = CLOSE - timedelta(hours=1)
    assert dial_check(contact(dnc=True), POLICY, at, GUARD).reason is Reason.DO_NOT_CALL
    assert dial_check(contact(attempts=5), POLICY, at, GUARD).reason is Reason.NO_ATTEMPTS_LEFT
    early = dial_check(contact(window_start=at + timedelta(minutes=1)), POLICY, at, GUARD)
    assert (early.reason, early.not_before) == (Reason.WINDOW_NOT_OPEN, at + timedelta(minutes=1))
    assert dial_check(contact(state=ContactState.DONE), POLICY, at, GUARD).reason is Reason.NOT_PENDING
    with pytest.raises(PolicyError, match="negative"):
        dial_check(contact(), POLICY, at, -S)


def test_spring_forward_day_closing_time_is_local() -> None:
    """9 March 2025: New York moves to EDT (UTC-4); 17:08 local is 21:08 UTC that day."""
    close = datetime(2025, 3, 9, 21, 8, tzinfo=UTC)
    slot = contact(window_start=close - timedelta(days=2), window_end=close + timedelta(days=2))
    assert dial_check(slot, POLICY, close - 3 * S, GUARD).ok
    assert not dial_check(slot, POLICY, close - S, GUARD).ok
    assert not dial_check(slot, POLICY, close + timedelta(minutes=30), GUARD).ok  # 22:08 UTC: closed


def test_fall_back_night_hours_around_the_repeated_hour() -> None:
    """2 November 2025: 01:00-02:00 happens twice; hours 00:30-01:30 close at the first 01:30."""
    hours = CallingHours.from_config({"default": "00:30-01:30"})
    policy = CampaignPolicy(hours=hours)
    first_0130 = datetime(2025, 11, 2, 5, 30, tzinfo=UTC)  # EDT
    slot = contact(window_start=first_0130 - timedelta(days=1), window_end=first_0130 + timedelta(days=1))
    assert dial_check(slot, policy, first_0130 - 3 * S, GUARD).ok
    assert not dial_check(slot, policy, first_0130 - S, GUARD).ok
    assert not dial_check(slot, policy, first_0130 + timedelta(minutes=30), GUARD).ok  # 01:00 EST again


def test_margin_shortfall() -> None:
    policy = CampaignPolicy(retry=RetryPolicy(deadline_margin=timedelta(minutes=2)))
    assert margin_shortfall(policy, timedelta(minutes=3, seconds=30)) == timedelta(seconds=90)
    assert margin_shortfall(policy, timedelta(minutes=2)) is None


def _local_open(at: datetime, start: time, end: time) -> bool:
    wall = at.astimezone(ZoneInfo(NY)).time()
    return start <= wall < end


@settings(max_examples=300, deadline=None)
@given(
    offset_s=st.integers(-6 * 3600, 6 * 3600),
    day=st.sampled_from([datetime(2025, 3, 9, tzinfo=UTC), datetime(2025, 11, 2, tzinfo=UTC)]),
    start_h=st.integers(0, 22),
    length_min=st.integers(1, 300),
    deadline_s=st.integers(-3600, 36 * 3600),
    margin_s=st.integers(0, 3600),
    guard_s=st.integers(0, 5),
)
def test_property_a_passed_check_means_open_until_the_guard_and_before_the_last_start(
    *,
    offset_s: int,
    day: datetime,
    start_h: int,
    length_min: int,
    deadline_s: int,
    margin_s: int,
    guard_s: int,
) -> None:
    """Whatever the hours, DST day, deadline and margin: if the check passes at ``now``, the
    callee's wall clock is inside the hours at ``now`` and at ``now + guard``, and ``now + guard``
    is before the deadline less the margin."""
    start = time(start_h, 0)
    end_min = min(start_h * 60 + length_min, 23 * 60 + 59)
    end = time(end_min // 60, end_min % 60)
    hours = CallingHours.from_config({"default": f"{start:%H:%M}-{end:%H:%M}"})
    policy = CampaignPolicy(hours=hours, retry=RetryPolicy(deadline_margin=timedelta(seconds=margin_s)))
    now = day + timedelta(hours=12, seconds=offset_s)
    deadline = day + timedelta(seconds=deadline_s)
    slot = contact(window_start=day - timedelta(days=2), window_end=deadline)
    guard = timedelta(seconds=guard_s)
    verdict = dial_check(slot, policy, now, guard)
    if verdict.ok:
        assert _local_open(now, start, end) and _local_open(now + guard, start, end)
        assert now + guard < deadline - timedelta(seconds=margin_s)
    elif verdict.not_before is not None:
        assert verdict.not_before > now
