"""The front of ``serve --workers N``: one public SIP port in front of the workers.

With Kamailio installed (``balancer.front: auto`` or ``kamailio``), Kamailio listens there and
dispatches every call to a healthy worker (:mod:`ivr.balancer_process`, as ``run_ivr.py balancer``
does across machines): no redirect for the trunk to follow. Without it, the fallback below.

The fallback answers every INVITE with ``302 Moved Temporarily`` to the worker the
:class:`~ivr.worker_pool.WorkerPool` picks (``486 Busy Here`` when all are full), as a SIP
redirect server does, so a caller's media never passes through it. SIGTERM stops every worker
(each hangs its calls up politely). SIGUSR1 drains: new callers get ``503`` with
``Retry-After``, every worker finishes its live calls and exits, then the front exits 0.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal

from config.logs import log_event
from config.settings import Settings
from ivr.balancer_config import front_mode, front_plan
from ivr.balancer_process import KamailioFront, find_kamailio
from ivr.call_services import speech_engine
from ivr.drain import DRAIN_SIGNAL, drain_requested_early, drain_timeout, hold_drain_requests
from ivr.sip_agent import SipAgent
from ivr.sip_events import CallRefused, SipEvent
from ivr.worker_pool import DialPassthrough, WorkerPool

_log = logging.getLogger("ivr.front")
_DRAIN_MARGIN_S = 60.0


async def run_front(
    settings: Settings, workers: int, config_file: str | None = None, dial: DialPassthrough | None = None
) -> int:
    """The front process: redirect callers to ``workers`` worker processes until SIGTERM, or
    until a drain (SIGUSR1) has let every worker finish its calls."""
    # One speech service for every call process of the machine: models load once per core.
    speech = None
    if settings.media.speech_workers != 0 and not settings.media.speech_service_dir:
        _engine, speech = await asyncio.to_thread(speech_engine, settings)
        media = (
            dataclasses.replace(settings.media, speech_service_dir=str(speech.directory)) if speech else None
        )
        settings = dataclasses.replace(settings, media=media) if media else settings
    pool = WorkerPool(settings, workers, str(settings.flow_path), config_file, dial)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    drains: list[asyncio.Task[None]] = []

    def on_event(event: SipEvent) -> None:
        if isinstance(event, CallRefused):
            log_event(
                "call.redirected" if event.status_code == 302 else "call.refused",
                logger=_log,
                sip_call_id=event.sip_call_id,
                status=event.status_code,
                reason=event.reason,
            )

    front_sip = dataclasses.replace(settings.sip, max_concurrent_calls=settings.sip.engine_call_limit)
    agent: SipAgent | KamailioFront
    if front_mode(settings.balancer.front, find_kamailio() is not None) == "kamailio":
        ports = tuple(settings.sip.port + 1 + index for index in range(workers))  # as pool.start does
        agent = KamailioFront(front_plan(settings, pool.host, ports))
    else:
        agent = SipAgent(front_sip, on_event, redirect=pool.choose)

    async def finish_drain() -> None:
        timeout = drain_timeout(settings.sip.drain_timeout_s)
        # Each worker hangs up what is left at its own drain timeout; give it time to close.
        limit = None if timeout is None else timeout + _DRAIN_MARGIN_S
        if not await asyncio.to_thread(pool.wait_exited, limit):
            log_event("serve.drain_timed_out", logging.WARNING, _log)
        stop.set()

    def request_drain() -> None:
        # A signal handler: never raises; a failed drain is logged and serving goes on.
        try:
            if drains or stop.is_set():
                return
            agent.drain()
            pool.drain()
            log_event(
                "serve.draining",
                logger=_log,
                workers=workers,
                live_calls=pool.live_calls(),
                timeout_s=settings.sip.drain_timeout_s,
            )
            drains.append(loop.create_task(finish_drain(), name="front-drain"))
        except Exception:
            _log.exception("serve.drain_failed")

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        # SIGTERM while the workers start up still stops them all: none is left running alone.
        await asyncio.to_thread(pool.start)
        if not stop.is_set():
            loop.add_signal_handler(DRAIN_SIGNAL, request_drain)
            agent.start(loop)
            log_event(
                "serve.ready",
                logger=_log,
                port=agent.bound_port,
                pid=os.getpid(),
                workers=workers,
                capacity=workers * pool.capacity,
                data_dir=str(settings.data_path),
            )
            if drain_requested_early():
                request_drain()
            await stop.wait()
    finally:
        await asyncio.to_thread(agent.stop)
        codes = await asyncio.to_thread(pool.stop)
        if speech is not None:
            await asyncio.to_thread(speech.stop)
        for task in drains:
            task.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM, DRAIN_SIGNAL):
            loop.remove_signal_handler(sig)
        hold_drain_requests()
    log_event("serve.stopped", logger=_log, workers=workers, worker_exit_codes=",".join(map(str, codes)))
    return 0 if all(code == 0 for code in codes) else 1
