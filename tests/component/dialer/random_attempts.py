"""One seeded random generator of dialer attempts for the rate tests (status SQL and hourly
counters), so both draw INVITE times and endings the same way; each test passes its own
shares and edges, and the draws stay in the order they always had, so a seed gives the same
rows as before."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tests.component.dialer.dialer_data_helpers import T0

NOW = T0 + timedelta(minutes=37, seconds=11, microseconds=123_456)
OUTCOMES = [None, "confirmed", "retained", "declined", "success", "completed", "callback"]
# Attempt results both random tests draw from, in this order (each adds one of its own last).
RESULTS: list[str | None] = [
    None, "cancelled", "answered", "answered_human", "answered_machine", "busy", "no_answer",
]  # fmt: skip
US = timedelta(microseconds=1)


@dataclass(frozen=True)
class RandomAttempts:
    """How one test's attempts are drawn: INVITE times near ``NOW`` and how each attempt ended."""

    results: Sequence[str | None]  # the results to pick from
    edges: Callable[[random.Random], Sequence[datetime]]  # the edge times (may draw from the rng)
    edge_below: float  # a roll under this (and not under 0.08, no INVITE) puts the INVITE on an edge
    unended: float  # the share of finished attempts with no end time
    rounded: float = 0.0  # the share of answer times moved to fractions SQLite rounds up; 0: no draw

    def invite(self, rng: random.Random) -> datetime | None:
        """An INVITE time: none, on an edge (or a microsecond either side), or in the last ~50 h."""
        roll = rng.random()
        if roll < 0.08:
            return None
        if roll < self.edge_below:
            edge = rng.choice(self.edges(rng))
            return edge + rng.choice([-US, timedelta(0), US])
        return NOW - timedelta(seconds=rng.uniform(-3600, 50 * 3600))

    def final(self, rng: random.Random, invite: datetime | None) -> dict[str, Any]:
        """How an attempt ends: result, answer and flow times (exactly 2 s and either side of it)."""
        answered = (
            None if invite is None or rng.random() < 0.2 else invite + timedelta(seconds=rng.uniform(0, 30))
        )
        if self.rounded and answered is not None and rng.random() < self.rounded:
            answered = answered.replace(microsecond=rng.choice([999_999, 999_500, 999_499, 0]))
        flow = None
        if answered is not None and rng.random() < 0.85:
            wait = rng.choice([2_000_000, 2_000_001, 1_999_999, rng.randint(0, 5_000_000)])
            flow = answered + wait * US
        ended = (
            None if rng.random() < self.unended else (invite or NOW) + timedelta(seconds=rng.uniform(1, 300))
        )
        return {
            "result": rng.choice(self.results),
            "answered_at": answered,
            "flow_started_at": flow,
            "ended_at": ended,
            "flow_outcome": rng.choice(OUTCOMES),
        }
