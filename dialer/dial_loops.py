"""The worker loops one dialer process runs, wired from settings: one pacer for the process,
the trunk's lines and call rate shared with every other process through the database.

``run_dialer`` (``dial``, ``serve --dial``) builds its loops here::

    loops = make_loops(settings, engine, placer, events, campaign=campaign, workers=workers)
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from sqlalchemy import Engine

from config.settings import Settings
from dialer.pacing import Pacer
from dialer.store import DialerStore
from dialer.trunk_lines import TrunkLines, trunk_key
from dialer.worker import CallPlacer, Clock, DialerWorker, SystemClock, WorkerConfig
from ivr.event_publisher import EventPublisher


def trunk_lines(settings: Settings, engine: Engine) -> TrunkLines:
    """The trunk's shared limits: ``dialer.trunk_lines`` lines (0: ``max_concurrent_calls``)
    and ``dialer.calls_per_second``, for every process dialling through the same trunk host."""
    d = settings.dialer
    return TrunkLines(
        engine,
        trunk_key(d.trunk_uri),
        d.trunk_lines or d.max_concurrent_calls,
        calls_per_second=d.calls_per_second,
    )


def intake_enabled(settings: Settings) -> bool:
    """Real-time intake (HTTP or MQTT) can add contacts to running campaigns."""
    return settings.intake.http_port > 0 or settings.intake.mqtt


def make_loops(
    settings: Settings,
    engine: Engine,
    placer: CallPlacer,
    events: EventPublisher,
    *,
    campaign: str | None = None,
    workers: int = 1,
    clock: Clock | None = None,
    owner_base: str | None = None,
) -> list[DialerWorker]:
    """``workers`` loops sharing one store, one process pacer and the trunk's shared lines."""
    d = settings.dialer
    store = DialerStore(engine, lease_duration=timedelta(seconds=d.lease_s))
    # One process's SIP endpoint holds at most sip.engine_call_limit calls (see config/ivr.yaml).
    pacer = Pacer(min(d.max_concurrent_calls, settings.sip.engine_call_limit), d.calls_per_second)
    lines = trunk_lines(settings, engine)
    base = owner_base or f"{socket.gethostname()}:{os.getpid()}"
    return [
        DialerWorker(
            store,
            pacer,
            placer,
            clock or SystemClock(),
            WorkerConfig(
                owner=f"{base}:{n}",
                trunk_uri=d.trunk_uri,
                ring_timeout_s=d.ring_timeout_s,
                campaign=campaign,
                expected_call_s=d.expected_call_s,
                finish_empty_campaigns=not intake_enabled(settings),
            ),
            events=events,
            lines=lines,
        )
        for n in range(workers)
    ]
