"""What a campaign's wallboard shows, read in one go: :func:`dialer.status.campaign_status`
plus the outcomes of each hour's attempts and the retries scheduled, with the two charts.

Runs in a worker thread (the pages call it through ``run_in_threadpool``). The rates and the
outcomes per hour come from the counters the dialer keeps as attempts end
(:mod:`dialer.hourly_counters`), the per-state and per-outcome counts from indexes: a refresh
reads a few hundred rows, not the campaign's 100,000 attempts (``dialer.rates_sql`` recounts
them and is the counters' check).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from console.charts import Series, stacked_bars
from dialer.db import CampaignNotFoundError
from dialer.hourly_counters import hourly_outcomes, outcome_label
from dialer.models import Campaign, Contact, ContactState
from dialer.rates import hour_of
from dialer.status import CampaignStatus, campaign_status

__all__ = ["Board", "BoardCache", "outcome_label", "outcome_series", "read_board"]

T = TypeVar("T")
OUTCOMES_SHOWN = 6
"""Outcome kinds with their own colour; the rest are summed as "other"."""


@dataclass(frozen=True)
class Board:
    status: CampaignStatus
    retries_scheduled: int
    next_retry: datetime | None
    attempts_chart: str
    outcomes_chart: str


def _hours(now: datetime, hours: int) -> list[datetime]:
    first = hour_of(now) - timedelta(hours=hours - 1)
    return [first + timedelta(hours=i) for i in range(hours)]


def outcome_series(rows: list[tuple[datetime, str, int]], hours: list[datetime]) -> list[Series]:
    """Per-hour counts of each label (the most common ``OUTCOMES_SHOWN``, then "other") from
    ``(time, label, count)`` rows."""
    totals: Counter[str] = Counter()
    for _, label, n in rows:
        totals[label] += n
    shown = [label for label, _ in totals.most_common(OUTCOMES_SHOWN)]
    index = {hour: i for i, hour in enumerate(hours)}
    counts = {label: [0] * len(hours) for label in [*shown, "other"]}
    for at, label, n in rows:
        slot = index.get(hour_of(at))
        if slot is not None:
            counts[label if label in shown else "other"][slot] += n
    return [Series(label, values) for label, values in counts.items() if any(values)]


def read_board(engine: Engine, name: str, now: datetime, hours: int = 12) -> Board:
    status = campaign_status(engine, name, now, hours=hours, counters=True)
    slots = _hours(now, hours)
    with Session(engine) as session:
        camp_id = session.scalar(select(Campaign.id).where(Campaign.name == name))
        if camp_id is None:  # deleted since the status was read
            raise CampaignNotFoundError(name)
        retrying = select(func.count(), func.min(Contact.next_attempt_at)).where(
            Contact.campaign_id == camp_id,
            Contact.state == ContactState.PENDING.value,
            Contact.attempts > 0,
            Contact.dnc.is_(False),
        )
        scheduled, next_retry = session.execute(retrying).one()
        rows = hourly_outcomes(session, camp_id, slots[0])
    by_hour = {hour: rates for hour, rates in status.hourly}
    labels = [f"{hour:%H}h" for hour in slots]

    def per_hour(pick: str) -> list[int]:
        return [int(getattr(by_hour[h], pick)) if h in by_hour else 0 for h in slots]

    answered = per_hour("answered")
    machine = per_hour("machine")
    attempts = per_hour("attempts")
    attempts_chart = stacked_bars(
        "Attempts per hour (UTC)",
        labels,
        [
            Series("person", [a - m for a, m in zip(answered, machine, strict=True)]),
            Series("machine", machine),
            Series("not answered", [t - a for t, a in zip(attempts, answered, strict=True)]),
        ],
    )
    outcomes_chart = stacked_bars("Outcomes per hour (UTC)", labels, outcome_series(rows, slots))
    return Board(status, int(scheduled or 0), next_retry, attempts_chart, outcomes_chart)


class BoardCache(Generic[T]):
    """One board computation per campaign at a time, shared by every viewer and reused while
    fresh: for ``refresh_s`` plus as long as the last computation took, so a board that takes
    seconds to read (a huge campaign on a busy database) is read less often, not by each viewer.
    ``refresh_s`` 0 turns the cache off."""

    def __init__(self, refresh_s: float) -> None:
        self.refresh_s = refresh_s
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._boards: dict[str, tuple[float, float, T]] = {}

    def get(self, name: str, compute: Callable[[], T], clock: Callable[[], float] = time.monotonic) -> T:
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            cached = self._boards.get(name)
            if cached is not None and self.refresh_s > 0:
                done_at, took, board = cached
                if clock() - done_at < self.refresh_s + took:
                    return board
            started = clock()
            board = compute()
            finished = clock()
            self._boards[name] = (finished, finished - started, board)
            return board

    def forget(self, name: str) -> None:
        """After a change made here (start, pause): the next look reads afresh."""
        with self._guard:
            self._boards.pop(name, None)
