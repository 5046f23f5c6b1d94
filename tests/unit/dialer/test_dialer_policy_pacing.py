"""Pacing steps time by hand: calls per second, concurrency, pause and resume."""

from __future__ import annotations

import pytest

from dialer.call_result import PolicyError
from dialer.pacing import Pacer


def test_rate_limit_admits_calls_per_second() -> None:
    pacer = Pacer(max_concurrent=100, calls_per_second=2.0)
    admitted = [t / 10 for t in range(0, 100) if pacer.try_acquire(t / 10)]
    # 10 s at 2 cps with a burst of 1: one every 0.5 s.
    assert admitted == [i * 0.5 for i in range(20)]


def test_burst_then_steady_rate() -> None:
    pacer = Pacer(max_concurrent=100, calls_per_second=1.0, burst=3)
    assert [pacer.try_acquire(0.0) for _ in range(4)] == [True, True, True, False]
    assert pacer.next_slot_time(0.0) == pytest.approx(1.0)
    assert not pacer.try_acquire(0.99)
    assert pacer.try_acquire(1.0)


def test_concurrency_cap_waits_for_release() -> None:
    pacer = Pacer(max_concurrent=2, calls_per_second=100.0)
    assert pacer.try_acquire(0.0)
    assert pacer.try_acquire(1.0)
    assert not pacer.try_acquire(2.0)
    assert pacer.next_slot_time(2.0) is None
    pacer.release(3.0)
    assert pacer.active == 1
    assert pacer.next_slot_time(3.0) == 3.0
    assert pacer.try_acquire(3.0)
    assert pacer.active == 2


def test_pause_stops_new_calls_at_once_and_resume_restarts() -> None:
    pacer = Pacer(max_concurrent=5, calls_per_second=10.0)
    assert pacer.try_acquire(0.0)
    pacer.pause()
    assert not pacer.try_acquire(5.0)
    assert pacer.next_slot_time(5.0) is None
    pacer.release(6.0)  # the call in progress still ends normally
    pacer.resume()
    assert pacer.try_acquire(6.0)


def test_clock_stepping_back_earns_no_tokens() -> None:
    pacer = Pacer(max_concurrent=5, calls_per_second=1.0)
    assert pacer.try_acquire(10.0)
    assert not pacer.try_acquire(5.0)
    assert not pacer.try_acquire(10.5)
    assert pacer.try_acquire(11.0)


def test_release_without_acquire_is_an_error() -> None:
    pacer = Pacer(max_concurrent=1, calls_per_second=1.0)
    with pytest.raises(PolicyError, match="release without a matching try_acquire"):
        pacer.release(0.0)


def test_live_limit_change() -> None:
    pacer = Pacer(max_concurrent=1, calls_per_second=1.0)
    assert pacer.try_acquire(0.0)
    assert not pacer.try_acquire(5.0)
    pacer.set_limits(max_concurrent=2, calls_per_second=1.0)
    assert pacer.try_acquire(5.0)


@pytest.mark.parametrize(("conc", "cps", "burst", "what"), [
    (0, 1.0, 1.0, "max_concurrent"), (1, 0.0, 1.0, "calls_per_second"), (1, 1.0, 0.5, "burst")])
def test_bad_limits_are_rejected(conc: int, cps: float, burst: float, what: str) -> None:
    with pytest.raises(PolicyError, match=what):
        Pacer(conc, cps, burst)
