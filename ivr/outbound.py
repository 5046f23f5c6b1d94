"""The dialer's call placer over SIP: originate through the trunk, screen for answering
machines, run the campaign's flow with the contact's fields, and report how it went.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import UTC, datetime

from config.logs import log_event, mask_number
from config.settings import Settings
from dialer.call_result import CallResult
from dialer.worker import CallReport, CallRequest
from flows import Flow, FlowRepository
from ivr.call_hub import CallHub
from ivr.call_services import CallServices
from ivr.call_session import CallSession
from ivr.machine_screening import MachineScreening
from ivr.sip_events import CallOffered
from ivr.sip_status import classify_sip_status
from media.amd import AmdConfig, Verdict

_log = logging.getLogger("ivr.outbound")
_SHUTDOWN_GRACE_S = 8.0


class SipCallPlacer:
    """Implements :class:`dialer.worker.CallPlacer`.

    Standalone (``dial``), it starts its own SIP agent on first use, bound to
    ``sip.bind_address`` on ``dialer.sip_port`` (0: a free port; ``sip.port`` is ``serve``'s).
    Either way, when every line is taken it waits for one (:meth:`CallHub.wait_for_slot`)
    rather than fail the attempt. Given a running ``hub`` (``serve --dial``), it
    places calls through that process's one endpoint, next to the inbound calls, and leaves
    the hub's lifetime to its owner. Trunk credentials come from ``dialer.*`` either way.
    """

    def __init__(
        self,
        settings: Settings,
        amd: AmdConfig | None = None,
        *,
        hub: CallHub | None = None,
    ) -> None:
        self.settings = settings
        self.amd = amd or AmdConfig()
        self._hub = hub
        self._services = hub.services if hub is not None else None
        self._owns_hub = hub is None
        self._credentials_set = False
        self._flows: dict[str, FlowRepository] = {}
        self._start_lock = asyncio.Lock()

    async def _started(self) -> tuple[CallHub, CallServices]:
        async with self._start_lock:
            if self._hub is None or self._services is None:
                services = await asyncio.to_thread(CallServices.load, self.settings, False)
                services.start()
                sip = dataclasses.replace(self.settings.sip, port=self.settings.dialer.sip_port)
                hub = CallHub(sip, services)
                hub.start()
                self._hub, self._services = hub, services
            if not self._credentials_set:
                d = self.settings.dialer
                if d.trunk_username:
                    self._hub.agent.set_trunk_credentials(
                        f"sip:{d.trunk_username}@{_trunk_host(d.trunk_uri)}",
                        d.trunk_username,
                        d.trunk_password,
                    )
                self._credentials_set = True
            return self._hub, self._services

    async def _flow(self, services: CallServices, path: str) -> Flow:
        repository = self._flows.get(path)
        if repository is None:
            repository = await asyncio.to_thread(FlowRepository, path)
            await asyncio.to_thread(services.prerender, repository.flow)
            self._flows[path] = repository
        return await asyncio.to_thread(repository.current)

    async def place(self, request: CallRequest) -> CallReport:
        hub, services = await self._started()
        flow = await self._flow(services, request.flow)
        message = self.settings.dialer.machine_message if request.machine_policy == "leave_message" else ""
        screening = MachineScreening(self.amd, message)
        variables = {"contact": dict(request.variables), "campaign": {"name": request.campaign}}

        def new_session(offered: CallOffered) -> CallSession:
            return CallSession(
                offered,
                services,
                hub.agent,
                hub.wall_offset,
                flow=flow,
                variables=variables,
                screening=screening,
                transfers=hub,
            )

        await hub.wait_for_slot()
        started = datetime.now(UTC)
        log_event(
            "outbound.dialing",
            logger=_log,
            contact_id=request.contact_id,
            campaign=request.campaign,
            number=mask_number(request.number),
        )
        try:
            session = await hub.place(request.sip_uri, request.ring_timeout_s, new_session)
        except OSError as exc:
            log_event(
                "outbound.not_placed", logging.WARNING, _log, contact_id=request.contact_id, reason=str(exc)
            )
            return CallReport(CallResult.NETWORK_FAILURE, started, datetime.now(UTC))
        return self._report(session, started)

    @staticmethod
    def _report(session: CallSession, started: datetime) -> CallReport:
        ended = session.ended
        ended_at = datetime.now(UTC)
        if session.recording is None:  # never answered
            status = ended.status_code if ended else None
            result = classify_sip_status(status, ended.ring_timed_out if ended else False)
            return CallReport(result, started, ended_at, sip_status=status)
        machine = session.answered_by is Verdict.MACHINE
        return CallReport(
            CallResult.ANSWERED_MACHINE if machine else CallResult.ANSWERED_HUMAN,
            started,
            ended_at,
            sip_status=200,
            flow_outcome=None if machine else (session.outcome or None),
            recording_id=session.recording.call_id,
            message_left=session.message_left,
            callback_at=None if machine else str(session.flow_variables.get("callback_at") or "") or None,
        )

    async def aclose(self) -> None:
        if not self._owns_hub:
            return  # the shared hub belongs to serve, which stops it
        if self._hub is not None:
            await self._hub.stop(_SHUTDOWN_GRACE_S)
        if self._services is not None:
            await self._services.aclose()
        self._hub = self._services = None


def _trunk_host(trunk_uri: str) -> str:
    return trunk_uri.split("@", 1)[-1].split(";", 1)[0].split(">", 1)[0]
