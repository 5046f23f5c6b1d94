"""When the front starts a dead worker again: doubling backoff, reset after a stable run, and a
per-minute cap that reports a crash loop. Time is stepped by hand."""

from __future__ import annotations

import pytest

from ivr.restart_backoff import RestartBackoff
from ivr.worker_pool import exit_signal


def crash_loop(backoff: RestartBackoff, deaths: int, lives_s: float) -> list[float]:
    """Delays chosen for a worker that dies ``lives_s`` after every (re)start, from t=0."""
    now, delays = 0.0, []
    for _ in range(deaths):
        decision = backoff.on_death(now)
        delays.append(decision.delay_s)
        now += decision.delay_s
        backoff.on_restart(now)
        now += lives_s
    return delays


def test_delay_doubles_from_one_second_up_to_thirty() -> None:
    backoff = RestartBackoff(per_minute=100)
    assert crash_loop(backoff, 7, lives_s=0.5) == [1, 2, 4, 8, 16, 30, 30]


def test_a_worker_that_ran_for_a_while_starts_over_at_one_second() -> None:
    backoff = RestartBackoff(per_minute=100)
    assert crash_loop(backoff, 4, lives_s=0.5) == [1, 2, 4, 8]
    backoff.on_restart(100.0)
    decision = backoff.on_death(100.0 + 61.0)  # up for longer than stable_after_s
    assert decision.delay_s == 1
    assert not decision.capped


def test_crash_loop_is_capped_per_minute_and_says_so() -> None:
    backoff = RestartBackoff(per_minute=4)
    for died, delay in ((0.0, 1), (1.5, 2), (4.0, 4), (8.5, 8)):  # up half a second each time
        decision = backoff.on_death(died)
        assert (decision.delay_s, decision.capped) == (delay, False)
        backoff.on_restart(died + delay)
    decision = backoff.on_death(17.0)  # restarts at 1, 3.5, 8, 16.5: four within the minute
    assert decision.capped
    assert decision.recent_restarts == 4
    assert decision.delay_s == pytest.approx(1.0 + 60.0 - 17.0)  # until the first leaves the window


def test_cap_does_not_bind_when_the_backoff_is_longer() -> None:
    backoff = RestartBackoff(initial_s=20.0, max_s=40.0, per_minute=2)
    backoff.on_death(0.0)
    backoff.on_restart(20.0)
    backoff.on_death(21.0)
    backoff.on_restart(61.0)
    decision = backoff.on_death(62.0)  # backoff 40 s: restart at 102, the window then holds one
    assert decision.delay_s == 40.0
    assert not decision.capped


def test_unreasonable_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="initial_s"):
        RestartBackoff(initial_s=0)
    with pytest.raises(ValueError, match="per_minute"):
        RestartBackoff(per_minute=0)


@pytest.mark.parametrize(
    ("code", "name"), [(-9, "SIGKILL"), (-11, "SIGSEGV"), (-6, "SIGABRT"), (0, ""), (1, "")]
)
def test_exit_codes_name_the_signal_that_killed_the_worker(code: int, name: str) -> None:
    assert exit_signal(code) == name
