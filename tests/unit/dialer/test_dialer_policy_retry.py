"""Retry decisions per result, caps, calling hours and deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dialer.call_result import CallResult, Outcome, PolicyError
from dialer.calling_hours import CallingHours
from dialer.retry_policy import Final, RetryAt, RetryPolicy, parse_duration

NOW = datetime(2025, 6, 4, 12, 0, tzinfo=UTC)  # a Wednesday
MIN = timedelta(minutes=1)


@pytest.mark.parametrize(("result", "delay"), [
    (CallResult.BUSY, 5 * MIN),
    (CallResult.NO_ANSWER, 30 * MIN),
    (CallResult.ANSWERED_MACHINE, 60 * MIN),
    (CallResult.NETWORK_FAILURE, 2 * MIN),
    (CallResult.REJECTED, 60 * MIN),
    (CallResult.CANCELLED, timedelta(0)),
])
def test_default_delay_per_result(result: CallResult, delay: timedelta) -> None:
    decision = RetryPolicy().decide(result, 1, NOW)
    assert isinstance(decision, RetryAt)
    assert decision.when == NOW + delay


@pytest.mark.parametrize(("result", "outcome"), [
    (CallResult.ANSWERED_HUMAN, Outcome.ANSWERED),
    (CallResult.ANSWERED, Outcome.ANSWERED),
    (CallResult.INVALID_NUMBER, Outcome.INVALID_NUMBER),
])
def test_final_results(result: CallResult, outcome: Outcome) -> None:
    decision = RetryPolicy().decide(result, 1, NOW)
    assert isinstance(decision, Final)
    assert decision.outcome is outcome


def test_rejected_is_retried_once_then_final() -> None:
    policy = RetryPolicy()
    assert isinstance(policy.decide(CallResult.REJECTED, 1, NOW, same_result_count=1), RetryAt)
    decision = policy.decide(CallResult.REJECTED, 3, NOW, same_result_count=2)
    assert decision == Final(Outcome.REJECTED, "2 attempts ended rejected")


def test_total_attempt_cap() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert isinstance(policy.decide(CallResult.BUSY, 2, NOW, same_result_count=2), RetryAt)
    decision = policy.decide(CallResult.BUSY, 3, NOW, same_result_count=3)
    assert isinstance(decision, Final)
    assert decision.outcome is Outcome.MAX_ATTEMPTS


def test_backoff_grows_the_delay() -> None:
    policy = RetryPolicy.from_config({"busy": {"delay": "5m", "backoff": 2}})
    decision = policy.decide(CallResult.BUSY, 3, NOW, same_result_count=3)
    assert isinstance(decision, RetryAt)
    assert decision.when == NOW + 20 * MIN


def test_retry_moves_into_callee_calling_hours() -> None:
    late = datetime(2025, 6, 4, 0, 50, tzinfo=UTC)  # 20:50 in New York
    ny = "America/New_York"
    decision = RetryPolicy().decide(CallResult.NO_ANSWER, 1, late, hours=CallingHours(), tz=ny)
    assert isinstance(decision, RetryAt)
    assert decision.when == datetime(2025, 6, 4, 13, 0, tzinfo=UTC)  # 09:00 EDT next morning


def test_retry_squeezed_before_deadline() -> None:
    deadline = NOW + 20 * MIN
    decision = RetryPolicy().decide(CallResult.NO_ANSWER, 1, NOW, deadline=deadline)
    assert isinstance(decision, RetryAt)
    assert decision.when == deadline - 5 * MIN  # latest start that leaves the margin


def test_squeeze_respects_min_delay() -> None:
    deadline = NOW + 8 * MIN
    decision = RetryPolicy().decide(CallResult.NO_ANSWER, 1, NOW, deadline=deadline)
    assert decision == RetryAt(NOW + 3 * MIN, "no_answer: last try before the deadline")


def test_no_retry_fits_before_deadline_expires() -> None:
    decision = RetryPolicy().decide(CallResult.BUSY, 1, NOW, deadline=NOW + 6 * MIN)
    assert decision == Final(Outcome.EXPIRED, "busy: no retry fits before the deadline")


def test_calling_hours_close_before_deadline() -> None:
    deadline = datetime(2025, 6, 4, 8, 0, tzinfo=UTC)  # 04:00 New York, before hours reopen
    policy, hours, ny = RetryPolicy(), CallingHours(), "America/New_York"
    at = datetime(2025, 6, 4, 0, 57, tzinfo=UTC)  # 20:57: busy's 5 min lands after 21:00
    squeezed = policy.decide(CallResult.BUSY, 1, at, deadline=deadline, hours=hours, tz=ny)
    assert squeezed == RetryAt(at + 2 * MIN, "busy: last try before the deadline")
    late = datetime(2025, 6, 4, 0, 59, 30, tzinfo=UTC)  # even 2 min from now is closed
    decision = policy.decide(CallResult.BUSY, 1, late, deadline=deadline, hours=hours, tz=ny)
    assert isinstance(decision, Final)
    assert decision.outcome is Outcome.EXPIRED


def test_message_left_final_when_configured() -> None:
    assert isinstance(RetryPolicy().decide(CallResult.ANSWERED_MACHINE, 1, NOW, message_left=True), RetryAt)
    policy = RetryPolicy(message_left_final=True)
    decision = policy.decide(CallResult.ANSWERED_MACHINE, 1, NOW, message_left=True)
    assert isinstance(decision, Final)
    assert decision.outcome is Outcome.MESSAGE_LEFT


def test_from_config_overrides_and_final() -> None:
    policy = RetryPolicy.from_config({"max_attempts": 4, "busy": "10m", "no_answer": 900,
                                      "rejected": "final", "answered_machine": "final"})
    assert policy.max_attempts == 4
    assert policy.decide(CallResult.BUSY, 1, NOW) == RetryAt(NOW + 10 * MIN, "busy: retry after 0:10:00")
    assert policy.decide(CallResult.NO_ANSWER, 1, NOW) == RetryAt(NOW + 15 * MIN,
                                                                  "no_answer: retry after 0:15:00")
    rejected = policy.decide(CallResult.REJECTED, 1, NOW)
    assert isinstance(rejected, Final)
    assert rejected.outcome is Outcome.REJECTED
    machine = policy.decide(CallResult.ANSWERED_MACHINE, 1, NOW)
    assert isinstance(machine, Final)
    assert machine.outcome is Outcome.UNREACHED


@pytest.mark.parametrize(("config", "message"), [
    ({"bussy": "5m"}, "retry.bussy: unknown key"),
    ({"busy": "5 minutes"}, "retry.busy: expected a duration"),
    ({"busy": {"delay": "5m", "tries": 2}}, "retry.busy.tries: unknown key"),
    ({"busy": {"max_attempts": 0}}, "retry.busy.max_attempts: expected a whole number"),
    ({"busy": {"backoff": 0.5}}, "retry.busy.backoff: expected a number of at least 1"),
    ({"max_attempts": "3"}, "retry.max_attempts: expected a whole number"),
    ({"busy": -5}, "retry.busy: duration -5 is negative"),
    ({"message_left_final": "yes"}, "retry.message_left_final: expected true or false"),
    ({"outcomes": ["no_decision"]}, "retry.outcomes: expected a mapping"),
    ({"outcomes": {"No Decision": "5m"}}, "retry.outcomes.No Decision: not a flow outcome name"),
    ({"outcomes": {"no_decision": "soon"}}, "retry.outcomes.no_decision: expected a duration"),
    ({"outcomes": {"do_not_call": "1d"}}, "retry.outcomes.do_not_call: a callee who asked"),
])
def test_bad_config_names_the_key(config: dict[str, object], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        RetryPolicy.from_config(config)


def test_parse_duration_units() -> None:
    assert parse_duration("90s", "x") == timedelta(seconds=90)
    assert parse_duration("2h", "x") == timedelta(hours=2)
    assert parse_duration("1d", "x") == timedelta(days=1)
    assert parse_duration(1.5, "x") == timedelta(seconds=1.5)


def test_inputs_are_checked() -> None:
    with pytest.raises(PolicyError, match="has no time zone"):
        RetryPolicy().decide(CallResult.BUSY, 1, datetime(2025, 1, 1))
    with pytest.raises(PolicyError, match="without the callee's time zone"):
        RetryPolicy().decide(CallResult.BUSY, 1, NOW, hours=CallingHours())


def test_a_retried_flow_outcome_calls_again_then_keeps_the_flow_outcome() -> None:
    policy = RetryPolicy.from_config({"outcomes": {"no_decision": {"delay": "30m", "max_attempts": 2}}})
    first = policy.decide(CallResult.ANSWERED_HUMAN, 1, NOW, flow_outcome="no_decision")
    assert first == RetryAt(NOW + 30 * MIN, "no_decision: retry after 0:30:00")
    second = policy.decide(CallResult.ANSWERED_HUMAN, 2, NOW, flow_outcome="no_decision", same_result_count=2)
    assert isinstance(second, Final) and second.reason == "2 attempts ended no_decision"
    # Any other flow outcome of an answered call is final, as before.
    confirmed = policy.decide(CallResult.ANSWERED_HUMAN, 1, NOW, flow_outcome="confirmed")
    assert isinstance(confirmed, Final) and confirmed.outcome is Outcome.ANSWERED


def test_a_retried_flow_outcome_respects_the_deadline_and_the_total_cap() -> None:
    policy = RetryPolicy.from_config({"max_attempts": 3, "outcomes": {"no_decision": "2h"}})
    squeezed = policy.decide(
        CallResult.ANSWERED_HUMAN, 1, NOW, flow_outcome="no_decision", deadline=NOW + 60 * MIN
    )
    assert squeezed == RetryAt(NOW + 55 * MIN, "no_decision: last try before the deadline")
    capped = policy.decide(CallResult.ANSWERED_HUMAN, 3, NOW, flow_outcome="no_decision")
    assert isinstance(capped, Final) and capped.outcome is Outcome.MAX_ATTEMPTS


def test_a_flow_outcome_on_a_machine_is_not_a_flow_outcome_retry() -> None:
    policy = RetryPolicy.from_config({"outcomes": {"no_decision": "5m"}, "answered_machine": "final"})
    machine = policy.decide(CallResult.ANSWERED_MACHINE, 1, NOW, flow_outcome="no_decision")
    assert isinstance(machine, Final) and machine.outcome is Outcome.UNREACHED


def test_final_drops_a_flow_outcome_retry() -> None:
    assert RetryPolicy.from_config({"outcomes": {"no_decision": "final"}}).outcome_rules == {}


def test_a_requested_call_back_is_placed_at_the_time_asked_for() -> None:
    asked = NOW + timedelta(hours=20)
    decision = RetryPolicy().decide(
        CallResult.ANSWERED_HUMAN, 5, NOW, flow_outcome="callback_requested", requested_at=asked
    )
    # Even at the total attempt cap: the callee asked for it, it is not a failed attempt.
    assert decision == RetryAt(asked, f"call-back requested for {asked.isoformat()}")


def test_a_call_back_asked_for_in_the_past_or_outside_hours_is_moved() -> None:
    policy = RetryPolicy()
    soon = policy.decide(
        CallResult.ANSWERED_HUMAN, 1, NOW, flow_outcome="callback_requested", requested_at=NOW - 60 * MIN
    )
    assert isinstance(soon, RetryAt) and soon.when == NOW + policy.min_delay
    hours = CallingHours.from_config({"default": "09:00-21:00"})
    night = datetime(2025, 6, 4, 23, 30, tzinfo=UTC)
    moved = policy.decide(
        CallResult.ANSWERED_HUMAN, 1, NOW, flow_outcome="callback_requested", requested_at=night,
        hours=hours, tz="UTC",
    )
    assert isinstance(moved, RetryAt) and moved.when == datetime(2025, 6, 5, 9, 0, tzinfo=UTC)


def test_a_call_back_after_the_deadline_is_squeezed_before_it_or_expires() -> None:
    policy = RetryPolicy()
    deadline = NOW + timedelta(hours=3)
    squeezed = policy.decide(
        CallResult.ANSWERED_HUMAN, 1, NOW, flow_outcome="callback_requested",
        requested_at=NOW + timedelta(days=2), deadline=deadline,
    )
    assert squeezed == RetryAt(deadline - policy.deadline_margin, "call-back: last try before the deadline")
    too_late = policy.decide(
        CallResult.ANSWERED_HUMAN, 1, NOW, flow_outcome="callback_requested",
        requested_at=NOW + timedelta(days=2), deadline=NOW + timedelta(minutes=4),
    )
    assert isinstance(too_late, Final) and too_late.outcome is Outcome.EXPIRED


def test_call_back_requests_are_honoured_up_to_the_limit() -> None:
    policy = RetryPolicy.from_config({"max_callback_requests": 1})
    asked = NOW + timedelta(hours=2)
    assert isinstance(policy.decide(CallResult.ANSWERED_HUMAN, 1, NOW, flow_outcome="callback_requested",
                                    requested_at=asked), RetryAt)
    second = policy.decide(CallResult.ANSWERED_HUMAN, 2, NOW, flow_outcome="callback_requested",
                           requested_at=asked, same_result_count=2)
    assert isinstance(second, Final) and second.reason == "2 call-backs requested, 1 are honoured"
    # Without a time the request is an ordinary final outcome of an answered call.
    untimed = policy.decide(CallResult.ANSWERED_HUMAN, 1, NOW, flow_outcome="callback_requested")
    assert isinstance(untimed, Final) and untimed.outcome is Outcome.ANSWERED
