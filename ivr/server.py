"""``serve``: the inbound IVR process: a :class:`CallHub` answering calls until told to stop.

On start it seals recordings a dead process left unfinished (a worker restarted after a crash
seals its own predecessor's this way); on SIGINT/SIGTERM it hangs up every live call politely
(BYE), waits for the recordings to close, and returns 0. On SIGUSR1 it drains: new callers get
``503 Service Unavailable`` with ``Retry-After``, live calls go on to their natural end (or
``sip.drain_timeout_s``), and then it stops as after SIGTERM, so a deploy drops no call.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from config.logs import log_event
from config.settings import Settings
from ivr.call_hub import CallHub, CallLeg, HubStats
from ivr.call_services import CallServices
from ivr.call_session import CallSession
from ivr.drain import DRAIN_SIGNAL, drain_requested_early, drain_timeout, hold_drain_requests
from ivr.sip_events import CallOffered
from ivr.supervisor_control import SupervisorControl
from ivr.supervisor_dialin import dialin_leg
from recordings import recover_unfinished

_log = logging.getLogger("ivr.server")
_SHUTDOWN_GRACE_S = 8.0
_COMPANION_GRACE_S = 30.0
_DRAIN_POLL_S = 0.25

Companion = Callable[[CallHub, asyncio.Event], Awaitable[Any]]
"""Work that shares the process's one SIP endpoint (the dialer under ``serve --dial``): it is
started once the hub listens, takes on no new work once the event is set (drain or stop), and
must return soon after, when its calls in progress have ended."""


class IvrServer:
    """Answers calls until :meth:`request_stop` (or a drain ends); see the module docstring."""

    def __init__(
        self, settings: Settings, services: CallServices, companion: Companion | None = None
    ) -> None:
        self.settings = settings
        self.services = services
        self._companion = companion
        self.hub = CallHub(settings.sip, services, inbound=self._new_session)
        self._stop = asyncio.Event()
        self._no_new_work = asyncio.Event()
        self._draining = False
        self._drain_task: asyncio.Task[None] | None = None
        self._companion_task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        self._control: SupervisorControl | None = None

    @property
    def stats(self) -> HubStats:
        return self.hub.stats

    def _new_session(self, offered: CallOffered) -> CallLeg:
        if self._control is not None:  # a supervisor dialling *77<short id>: docs/supervision.md
            dialin = dialin_leg(offered, self._control, self.hub, self.settings.supervision)
            if dialin is not None:
                return dialin
        return CallSession(offered, self.services, self.hub.agent, self.hub.wall_offset, transfers=self.hub)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        await self._recover()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_stop)
        loop.add_signal_handler(DRAIN_SIGNAL, self.request_drain)
        control = SupervisorControl(self.settings, self.hub)  # supervise: docs/supervision.md
        await control.start()
        self._control = control
        self.hub.start()
        reload_task = asyncio.create_task(self.services.watch_flows(self._stop), name="flow-hot-reload")
        log_event(
            "serve.ready",
            logger=_log,
            port=self.hub.agent.bound_port,
            pid=os.getpid(),
            flow=str(self.settings.flow_path),
            max_calls=self.settings.sip.max_concurrent_calls,
            data_dir=str(self.settings.data_path),
        )
        if self._companion is not None:
            self._companion_task = asyncio.create_task(
                self._run_companion(self._companion), name="serve-companion"
            )
        self.ready.set()
        if drain_requested_early():
            self.request_drain()
        try:
            await self._stop.wait()
        finally:
            # The companion sees its no-new-work event, so it takes on no new work; the hub then
            # hangs up every live call in both directions, and the companion records how they ended.
            self._no_new_work.set()
            await self.hub.stop(_SHUTDOWN_GRACE_S)
            if self._companion_task is not None:
                _done, pending = await asyncio.wait([self._companion_task], timeout=_COMPANION_GRACE_S)
                for task in pending:
                    task.cancel()
            reload_task.cancel()
            await control.aclose()
            if self._drain_task is not None:
                self._drain_task.cancel()
            for sig in (signal.SIGINT, signal.SIGTERM, DRAIN_SIGNAL):
                loop.remove_signal_handler(sig)
            hold_drain_requests()  # SIGUSR1 during the last moments must not kill the process
        s = self.stats
        log_event(
            "serve.stopped",
            logger=_log,
            offered=s.offered,
            refused=s.refused,
            completed=s.completed,
            failed=s.failed,
        )
        return 0

    async def _recover(self) -> None:
        """Seal what a dead process (this worker's crashed predecessor, say) left recording."""
        report = await asyncio.to_thread(
            recover_unfinished,
            self.settings.recordings_path,
            signing_key_file=self.settings.recordings_signing_key_path,
        )
        for path in report.recovered:
            log_event("recording.recovered", logging.WARNING, _log, sidecar=str(path))
        for problem in report.problems:
            log_event("recording.unrecoverable", logging.ERROR, _log, problem=problem)
        log_event(
            "recording.recovery_done",
            logger=_log,
            recovered=len(report.recovered),
            still_recording=len(report.live),
            unrecoverable=len(report.problems),
        )

    async def _run_companion(self, companion: Companion) -> None:
        try:
            await companion(self.hub, self._no_new_work)
        except Exception:
            # Inbound calls must keep being answered whatever happens to the dialer.
            _log.exception("serve.companion_failed")

    def request_stop(self, reason: str = "signal") -> None:
        if not self._stop.is_set():
            log_event("serve.stopping", logger=_log, reason=reason, live_calls=len(self.hub.sessions))
            self._no_new_work.set()
            self._stop.set()

    def request_drain(self) -> None:
        """SIGUSR1: refuse new calls (503 + Retry-After), stop once the live ones have ended.

        Runs as a signal handler, so it never raises: a failed drain is logged and the
        process goes on serving (stopping instead would drop the very calls a drain protects).
        """
        try:
            if self._draining or self._stop.is_set():
                return
            self.hub.agent.drain()
            self._draining = True
            self._no_new_work.set()
            log_event(
                "serve.draining",
                logger=_log,
                live_calls=len(self.hub.sessions),
                timeout_s=self.settings.sip.drain_timeout_s,
            )
            self._drain_task = asyncio.get_running_loop().create_task(
                self._finish_drain(), name="serve-drain"
            )
        except Exception:
            _log.exception("serve.drain_failed")

    async def _finish_drain(self) -> None:
        loop = asyncio.get_running_loop()
        timeout = drain_timeout(self.settings.sip.drain_timeout_s)
        deadline = None if timeout is None else loop.time() + timeout
        while not self._stop.is_set() and self._busy():
            if deadline is not None and loop.time() >= deadline:
                log_event("serve.drain_timed_out", logging.WARNING, _log, live_calls=len(self.hub.sessions))
                break
            await asyncio.sleep(_DRAIN_POLL_S)
        self.request_stop("drained")

    def _busy(self) -> bool:
        companion = self._companion_task
        return bool(self.hub.sessions) or (companion is not None and not companion.done())
