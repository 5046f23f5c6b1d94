"""The OPTIONS answer a balancer's probe gets: 200 only while the node would serve an INVITE."""

from __future__ import annotations

from ivr.node_health import HealthReport, NodeLoad, accepts_calls


def load(active: int = 0, pending: int = 0, closing: bool = False) -> NodeLoad:
    return NodeLoad(
        active_calls=active, pending_invites=pending, capacity=4, max_pending_invites=2, closing=closing
    )


def test_a_node_with_room_accepts_and_a_full_draining_or_flooded_one_does_not() -> None:
    assert accepts_calls(load())
    assert accepts_calls(load(active=3, pending=1))
    assert not accepts_calls(load(active=4))
    assert not accepts_calls(load(active=1, pending=2))
    assert not accepts_calls(load(closing=True))


def test_the_report_publishes_only_changes_replayed_over_a_node_s_day() -> None:
    report = HealthReport()
    timeline = [load(), load(active=1), load(active=4), load(active=4), load(active=3), load(closing=True)]
    assert [report.update(state) for state in timeline] == [True, None, False, None, True, False]
    assert report.online is False


def test_a_report_that_starts_offline_publishes_the_first_online() -> None:
    report = HealthReport(online=False)
    assert report.update(load()) is True
