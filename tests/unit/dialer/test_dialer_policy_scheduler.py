"""Scheduling rules stepped by hand: windows, hours, DNC, retries, deadlines, order."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dialer.call_result import PolicyError
from dialer.calling_hours import CallingHours
from dialer.retry_policy import RetryPolicy
from dialer.scheduler import (
    CampaignKind,
    CampaignPolicy,
    ContactSlot,
    ContactState,
    Reason,
    at_risk,
    expired,
    is_dialable,
    next_action_time,
    order_key,
    pick,
)

H = timedelta(hours=1)
SH = "Asia/Shanghai"
COOLING_OFF_END = datetime(2025, 6, 4, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
POLICY = CampaignPolicy()


def callback(
    cid: int = 1, tz: str = SH, cooling_off_end: datetime = COOLING_OFF_END, **kw: Any
) -> ContactSlot:
    start, end = POLICY.window_for(cooling_off_end)
    slot = ContactSlot(id=cid, e164="+8613800000000", tz=tz, window_start=start, window_end=end)
    return replace(slot, **kw)


def test_callback_window_is_cooling_off_end_plus_24h() -> None:
    assert POLICY.window_for(COOLING_OFF_END) == (COOLING_OFF_END, COOLING_OFF_END + 24 * H)
    short = CampaignPolicy(callback_window=6 * H)
    assert short.window_for(COOLING_OFF_END)[1] == COOLING_OFF_END + 6 * H
    with pytest.raises(PolicyError, match="needs cooling_off_end"):
        POLICY.window_for(None)


def test_window_not_open_before_cooling_off_end() -> None:
    contact = callback()
    early = is_dialable(contact, POLICY, COOLING_OFF_END - timedelta(seconds=1))
    assert not early
    assert early.reason is Reason.WINDOW_NOT_OPEN
    assert early.not_before == COOLING_OFF_END
    assert is_dialable(contact, POLICY, COOLING_OFF_END).ok


def test_window_opening_at_night_waits_for_local_morning() -> None:
    night = datetime(2025, 6, 4, 15, 0, tzinfo=UTC)  # 23:00 Shanghai
    contact = callback(cooling_off_end=night)
    eligibility = is_dialable(contact, POLICY, night + H)
    assert eligibility.reason is Reason.OUTSIDE_CALLING_HOURS
    assert eligibility.not_before == datetime(2025, 6, 5, 1, 0, tzinfo=UTC)  # 09:00 local
    assert next_action_time(contact, POLICY, night - H) == datetime(2025, 6, 5, 1, 0, tzinfo=UTC)


def test_never_dialled_outside_calling_hours_across_a_whole_window() -> None:
    hours = CallingHours()
    for tz in (SH, "America/New_York", "Europe/London", "Australia/Lord_Howe"):
        contact = callback(tz=tz)
        t = COOLING_OFF_END
        while t < COOLING_OFF_END + 24 * H:
            if is_dialable(contact, POLICY, t):
                assert hours.is_open(t, tz)
                local = t.astimezone(ZoneInfo(tz))
                assert 9 <= local.hour < 21
            t += timedelta(minutes=7)


def test_dnc_is_never_dialable() -> None:
    eligibility = is_dialable(callback(dnc=True), POLICY, COOLING_OFF_END + H)
    assert eligibility.reason is Reason.DO_NOT_CALL
    assert eligibility.not_before is None


def test_retry_not_due_until_next_attempt_at() -> None:
    contact = callback(attempts=1, next_attempt_at=COOLING_OFF_END + H)
    waiting = is_dialable(contact, POLICY, COOLING_OFF_END + 30 * timedelta(minutes=1))
    assert waiting.reason is Reason.RETRY_NOT_DUE
    assert waiting.not_before == COOLING_OFF_END + H
    assert is_dialable(contact, POLICY, COOLING_OFF_END + H).ok


def test_no_attempts_left() -> None:
    policy = CampaignPolicy(retry=RetryPolicy(max_attempts=2))
    assert is_dialable(callback(attempts=2), policy, COOLING_OFF_END + H).reason is Reason.NO_ATTEMPTS_LEFT
    assert is_dialable(callback(attempts=1), policy, COOLING_OFF_END + H).ok


@pytest.mark.parametrize("state", [ContactState.LEASED, ContactState.IN_CALL, ContactState.DONE, "done"])
def test_only_pending_contacts_are_dialable(state: str) -> None:
    assert is_dialable(callback(state=state), POLICY, COOLING_OFF_END + H).reason is Reason.NOT_PENDING


def test_deadline_expiry() -> None:
    contact = callback()
    deadline = COOLING_OFF_END + 24 * H
    assert not expired(contact, deadline - timedelta(seconds=1))
    assert expired(contact, deadline)
    assert is_dialable(contact, POLICY, deadline).reason is Reason.EXPIRED
    assert not expired(callback(state=ContactState.DONE), deadline + H)


def test_expired_early_when_no_calling_hours_remain_before_deadline() -> None:
    contact = callback()  # deadline 10:00 Shanghai the next day
    at_night = datetime(2025, 6, 4, 14, 0, tzinfo=UTC)  # 22:00 local: still an hour tomorrow 09-10
    assert not expired(contact, at_night, POLICY)
    assert next_action_time(contact, POLICY, at_night) == datetime(2025, 6, 5, 1, 0, tzinfo=UTC)
    strict = CampaignPolicy(hours=CallingHours.from_config({"default": "11:00-21:00"}))
    assert expired(contact, at_night, strict)
    assert next_action_time(contact, strict, at_night) is None
    assert not expired(contact, at_night)  # without the policy only the deadline counts


def test_at_risk_within_horizon() -> None:
    contact = callback()
    deadline = COOLING_OFF_END + 24 * H
    assert not at_risk(contact, POLICY, deadline - 3 * H)
    assert at_risk(contact, POLICY, deadline - H)
    assert not at_risk(contact, POLICY, deadline)
    assert not at_risk(callback(state=ContactState.DONE), POLICY, deadline - H)


def test_order_earliest_deadline_then_priority_then_attempts() -> None:
    a = callback(1, cooling_off_end=COOLING_OFF_END + H)
    b = callback(2, priority=5)
    c = callback(3, priority=5, attempts=2)
    d = callback(4, priority=1)
    e = replace(callback(5), window_end=None, window_start=None)
    assert [x.id for x in sorted([a, b, c, d, e], key=order_key)] == [2, 3, 4, 1, 5]


def test_pick_filters_and_orders() -> None:
    now = COOLING_OFF_END + 2 * H
    contacts = [
        callback(1, cooling_off_end=COOLING_OFF_END + H),
        callback(2, dnc=True),
        callback(3, next_attempt_at=now + H),
        callback(4, priority=3),
        callback(5),
        callback(6, tz="America/New_York"),  # 22:00 there: closed
    ]
    assert [c.id for c in pick(contacts, POLICY, now, 10)] == [4, 5, 1]
    assert [c.id for c in pick(contacts, POLICY, now, 1)] == [4]


def test_retention_uses_campaign_dates() -> None:
    starts = datetime(2025, 7, 1, 0, 0, tzinfo=UTC)
    ends = datetime(2025, 7, 8, 0, 0, tzinfo=UTC)
    policy = CampaignPolicy(kind=CampaignKind.RETENTION, starts_at=starts, ends_at=ends)
    start, end = policy.window_for(None)
    contact = ContactSlot(id=9, e164="+8613800000001", tz=SH, window_start=start, window_end=end)
    assert is_dialable(contact, policy, starts - H).reason is Reason.WINDOW_NOT_OPEN
    assert is_dialable(contact, policy, starts + 2 * H).ok  # 10:00 Shanghai
    assert is_dialable(contact, policy, ends).reason is Reason.EXPIRED
    # The campaign's end bounds a contact imported without a window too.
    bare = ContactSlot(id=10, e164="+8613800000002", tz=SH)
    assert is_dialable(bare, policy, ends + H).reason is Reason.EXPIRED
    assert expired(bare, ends, policy)


def test_policy_from_config_like_a_campaign_row() -> None:
    policy = CampaignPolicy.from_config({
        "kind": "retention", "calling_hours": {"default": "10:00-18:00"},
        "retry": {"max_attempts": 2, "busy": "10m"}, "callback_window": 3600,
        "starts_at": "2025-07-01T09:00:00+08:00", "ends_at": None})
    assert policy.kind is CampaignKind.RETENTION
    assert policy.retry.max_attempts == 2
    assert policy.callback_window == H
    assert policy.starts_at == datetime(2025, 7, 1, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(("config", "message"), [
    ({"kind": "survey"}, "campaign.kind: 'survey' is not one of"),
    ({"hours": {}}, "campaign.hours: unknown key"),
    ({"starts_at": "2025-07-01 09:00"}, "campaign.starts_at: '2025-07-01 09:00' has no UTC offset"),
    ({"ends_at": "tomorrow"}, "campaign.ends_at: 'tomorrow' is not an ISO 8601 time"),
    ({"calling_hours": {"monday": "9-5"}}, "campaign.calling_hours.monday"),
    ({"retry": {"busy": "soon"}}, "campaign.retry.busy"),
    ({"callback_window": 0}, "callback_window 0:00:00 must be positive"),
    ({"starts_at": "2025-07-02T00:00:00Z", "ends_at": "2025-07-01T00:00:00Z"}, "is not after starts_at"),
])
def test_bad_campaign_config_names_the_key(config: dict[str, object], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        CampaignPolicy.from_config(config)


@pytest.mark.parametrize(("cooling_off_end", "first_local_nine"), [
    (datetime(2025, 3, 9, 5, 0, tzinfo=UTC), datetime(2025, 3, 9, 13, 0, tzinfo=UTC)),  # spring forward
    (datetime(2025, 11, 2, 4, 0, tzinfo=UTC), datetime(2025, 11, 2, 14, 0, tzinfo=UTC)),  # fall back
])
def test_first_dial_on_dst_days_is_nine_local(cooling_off_end: datetime, first_local_nine: datetime) -> None:
    contact = callback(tz="America/New_York", cooling_off_end=cooling_off_end)
    assert next_action_time(contact, POLICY, cooling_off_end) == first_local_nine
    t = cooling_off_end
    while t < first_local_nine:
        assert not is_dialable(contact, POLICY, t)
        t += timedelta(minutes=5)
    assert is_dialable(contact, POLICY, first_local_nine)
