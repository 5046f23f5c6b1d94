"""The reconnect backoff shared by the MQTT publisher and the MQTT intake."""

from __future__ import annotations

import asyncio
import time

import pytest

from config.backoff import Backoff
from config.errors import ConfigError


def test_the_delay_doubles_up_to_the_cap_and_a_success_starts_it_over() -> None:
    backoff = Backoff(0.5, 3.0)
    assert [backoff.advance() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.delay == 0.5


@pytest.mark.parametrize(("initial", "maximum"), [(0.0, 1.0), (2.0, 1.0)])
def test_a_backoff_that_cannot_work_is_refused(initial: float, maximum: float) -> None:
    with pytest.raises(ConfigError, match="backoff"):
        Backoff(initial, maximum)


def test_closing_cuts_the_wait_short() -> None:
    async def scenario() -> float:
        closing = asyncio.Event()
        backoff = Backoff(30.0, 60.0)
        asyncio.get_running_loop().call_later(0.05, closing.set)
        started = time.monotonic()
        await backoff.wait(closing)
        assert backoff.delay == 60.0
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 5.0
