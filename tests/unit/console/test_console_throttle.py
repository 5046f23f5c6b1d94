from __future__ import annotations

from console.throttle import LoginThrottle

KEYS = ("user:alice", "addr:10.0.0.1")


def test_five_failures_are_free_then_the_lockout_doubles() -> None:
    throttle = LoginThrottle(free_failures=5, base_lockout_s=30, max_lockout_s=3600)
    for i in range(4):
        assert throttle.failed(KEYS, now=float(i)) == 0.0
        assert throttle.locked_for(KEYS, now=float(i)) == 0.0
    assert throttle.failed(KEYS, now=10.0) == 30.0
    assert throttle.locked_for(KEYS, now=20.0) == 20.0
    assert throttle.locked_for(KEYS, now=40.0) == 0.0
    assert throttle.failed(KEYS, now=40.0) == 60.0
    assert throttle.failed(KEYS, now=101.0) == 120.0
    for step in range(10):
        last = throttle.failed(KEYS, now=1000.0 + step)
    assert last == 3600.0


def test_user_and_address_count_separately() -> None:
    throttle = LoginThrottle(free_failures=2, base_lockout_s=10)
    throttle.failed(("user:a", "addr:1"), 0.0)
    throttle.failed(("user:b", "addr:1"), 0.0)  # the address reaches 2, each user only 1
    assert throttle.locked_for(("user:c", "addr:1"), 1.0) == 9.0
    assert throttle.locked_for(("user:a", "addr:2"), 1.0) == 0.0


def test_success_clears_the_user_but_not_the_address() -> None:
    throttle = LoginThrottle(free_failures=1, base_lockout_s=10)
    throttle.failed(KEYS, 0.0)
    throttle.succeeded("user:alice")
    assert throttle.locked_for(("user:alice",), 1.0) == 0.0
    assert throttle.locked_for(("addr:10.0.0.1",), 1.0) == 9.0


def test_old_failures_are_forgotten_and_memory_is_bounded() -> None:
    throttle = LoginThrottle(free_failures=2, base_lockout_s=10, forget_after_s=100, max_keys=3)
    throttle.failed(("user:x",), 0.0)
    assert throttle.failed(("user:x",), 500.0) == 0.0  # the first failure was forgotten
    for n in range(10):
        throttle.failed((f"user:{n}",), 600.0 + n)
    assert len(throttle._records) == 3
