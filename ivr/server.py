"""``serve``: the inbound IVR process: a :class:`CallHub` answering calls until told to stop.

On start it seals recordings a dead process left unfinished; on SIGINT/SIGTERM it hangs up
every live call politely (BYE), waits for the recordings to close, and returns 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from config.settings import Settings
from ivr.call_hub import CallHub, HubStats
from ivr.call_services import CallServices
from ivr.call_session import CallSession
from ivr.logs import log_event
from ivr.sip_events import CallOffered
from recordings import recover_unfinished

_log = logging.getLogger("ivr.server")
_SHUTDOWN_GRACE_S = 8.0
_COMPANION_GRACE_S = 30.0

Companion = Callable[[CallHub, asyncio.Event], Awaitable[Any]]
"""Work that shares the process's one SIP endpoint (the dialer under ``serve --dial``): it is
started once the hub listens and must return soon after the stop event is set."""


class IvrServer:
    """Answers calls until :meth:`request_stop`; see the module docstring."""

    def __init__(
        self, settings: Settings, services: CallServices, companion: Companion | None = None
    ) -> None:
        self.settings = settings
        self.services = services
        self._companion = companion
        self.hub = CallHub(settings.sip, services, inbound=self._new_session)
        self._stop = asyncio.Event()
        self.ready = asyncio.Event()

    @property
    def stats(self) -> HubStats:
        return self.hub.stats

    def _new_session(self, offered: CallOffered) -> CallSession:
        return CallSession(offered, self.services, self.hub.agent, self.hub.wall_offset, transfers=self.hub)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        report = await asyncio.to_thread(recover_unfinished, self.settings.recordings_path)
        for path in report.recovered:
            log_event("recording.recovered", logging.WARNING, _log, sidecar=str(path))
        for problem in report.problems:
            log_event("recording.unrecoverable", logging.ERROR, _log, problem=problem)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_stop)
        self.hub.start()
        reload_task = asyncio.create_task(self.services.watch_flows(self._stop), name="flow-hot-reload")
        log_event(
            "serve.ready",
            logger=_log,
            port=self.hub.agent.bound_port,
            flow=str(self.settings.flow_path),
            max_calls=self.settings.sip.max_concurrent_calls,
            data_dir=str(self.settings.data_path),
        )
        companion = (
            asyncio.create_task(self._run_companion(self._companion), name="serve-companion")
            if self._companion is not None
            else None
        )
        self.ready.set()
        try:
            await self._stop.wait()
        finally:
            # The companion sees the same stop event, so it takes on no new work; the hub then
            # hangs up every live call in both directions, and the companion records how they ended.
            await self.hub.stop(_SHUTDOWN_GRACE_S)
            if companion is not None:
                _done, pending = await asyncio.wait([companion], timeout=_COMPANION_GRACE_S)
                for task in pending:
                    task.cancel()
            reload_task.cancel()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
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

    async def _run_companion(self, companion: Companion) -> None:
        try:
            await companion(self.hub, self._stop)
        except Exception:
            # Inbound calls must keep being answered whatever happens to the dialer.
            _log.exception("serve.companion_failed")

    def request_stop(self) -> None:
        if not self._stop.is_set():
            log_event("serve.stopping", logger=_log, live_calls=len(self.hub.sessions))
            self._stop.set()
