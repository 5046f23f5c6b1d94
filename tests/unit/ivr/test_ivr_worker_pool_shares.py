"""How ``serve --workers N --dial`` splits one trunk's limits between the worker processes."""

from __future__ import annotations

import pytest

from ivr.worker_pool import trunk_shares


@pytest.mark.parametrize(("total", "workers"), [(10, 3), (4, 4), (2, 3), (1, 1), (7, 2)])
def test_shares_never_exceed_the_trunk_together(total: int, workers: int) -> None:
    shares = trunk_shares(total, 2.0, workers)
    assert len(shares) == workers
    assert sum(calls for calls, _ in shares) == total
    assert max(c for c, _ in shares) - min(c for c, _ in shares) <= 1  # as even as it can be
    assert sum(rate for _, rate in shares) == pytest.approx(2.0)


def test_a_worker_with_no_share_gets_zero_calls() -> None:
    assert [calls for calls, _ in trunk_shares(2, 1.0, 3)] == [1, 1, 0]
