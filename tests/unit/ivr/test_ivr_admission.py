"""Admission policy: who may call, per-source rate limits, overload; stepped time, no sockets."""

from __future__ import annotations

import dataclasses

from config.settings import SipSettings
from ivr.admission import Admission, Load, Refusal

IDLE = Load(active_calls=0, pending_invites=0, capacity=10)


def admission(**overrides: object) -> Admission:
    return Admission(dataclasses.replace(SipSettings(), **overrides))  # type: ignore[arg-type]


def test_an_idle_engine_serves_an_invite() -> None:
    assert admission().decide("127.0.0.1", IDLE, now=0.0) is None


def test_sources_outside_the_allowed_networks_are_forbidden() -> None:
    policy = admission(allowed_networks=("10.0.0.0/8", "192.0.2.7"))
    assert policy.decide("10.1.2.3", IDLE, 0.0) is None
    assert policy.decide("192.0.2.7", IDLE, 0.0) is None
    assert policy.decide("192.0.2.8", IDLE, 0.0) == Refusal(403, "Forbidden")
    assert policy.decide("not-an-ip", IDLE, 0.0) == Refusal(403, "Forbidden")


def test_a_full_process_answers_busy_and_too_many_pending_invites_answer_503() -> None:
    policy = admission(max_pending_invites=3, retry_after_s=7)
    assert policy.decide("127.0.0.1", Load(10, 0, 10), 0.0) == Refusal(486, "Busy Here")
    refusal = policy.decide("127.0.0.1", Load(3, 3, 10), 0.0)
    assert refusal == Refusal(503, "Service Unavailable", 7)


def test_draining_refuses_with_retry_after() -> None:
    refusal = admission(retry_after_s=9).decide("127.0.0.1", dataclasses.replace(IDLE, draining=True), 0.0)
    assert refusal is not None and refusal.status == 503 and refusal.retry_after_s == 9


def test_one_source_is_limited_to_its_burst_then_its_rate_others_unaffected() -> None:
    policy = admission(invites_per_source_per_s=10.0, invite_burst_per_source=5)
    answers = [policy.decide("198.51.100.1", IDLE, 0.0) for _ in range(8)]
    assert answers[:5] == [None] * 5
    assert all(a is not None and a.status == 503 for a in answers[5:])
    assert policy.decide("198.51.100.2", IDLE, 0.0) is None  # another source has its own bucket
    refused = policy.decide("198.51.100.1", IDLE, 0.05)  # half a token back: still refused
    assert refused is not None and refused.status == 503
    assert policy.decide("198.51.100.1", IDLE, 0.30) is None  # 10/s: 2.5 more tokens by now
    assert policy.decide("198.51.100.1", IDLE, 10.0) is None


def test_many_spoofed_sources_do_not_grow_memory_without_bound() -> None:
    policy = admission()
    for n in range(10_000):
        policy.decide(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", IDLE, n * 0.001)
    assert len(policy._buckets) <= 4096
