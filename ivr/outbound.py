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
from dialer.worker_types import CampaignSetupError
from flows import Flow, FlowRepository
from flows.errors import FlowError
from ivr.call_hub import CallHub
from ivr.call_services import CallServices
from ivr.call_session import CallSession
from ivr.machine_screening import MachineScreening
from ivr.sip_events import CallOffered
from ivr.sip_status import classify_sip_status
from media.amd import AmdConfig, Verdict
from recordings.errors import SidecarError
from recordings.sidecar import read_sidecar

_log = logging.getLogger("ivr.outbound")
_SHUTDOWN_GRACE_S = 8.0


class SipCallPlacer:
    """Implements :class:`dialer.worker.CallPlacer`; checks the rules right before each INVITE
    (``request.ready_to_dial``) and reports the real call events (INVITE, answer, first prompt).

    Standalone (``dial``), it starts its own SIP agent in :meth:`start` (or on first use), bound to
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
        self.amd = amd or AmdConfig.from_config(settings.dialer.amd, "dialer.amd")
        self._hub = hub
        self._services = hub.services if hub is not None else None
        self._owns_hub = hub is None
        self._credentials_set = False
        self._flows: dict[str, FlowRepository] = {}
        self._start_lock = asyncio.Lock()

    checks_before_invite = True
    """This placer awaits ``request.ready_to_dial()`` right before the INVITE itself."""

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
            try:
                repository = await asyncio.to_thread(FlowRepository, path)
            except (FlowError, OSError) as exc:  # no contact of this campaign can be called
                raise CampaignSetupError(f"flow {path}: {exc}") from exc
            await asyncio.to_thread(services.prerender, repository.flow)
            self._flows[path] = repository
        return await asyncio.to_thread(repository.current)

    async def start(self) -> None:
        """Start the SIP endpoint and the speech services now, before the dialer leases any
        contact (``dial`` awaits this first): a call's checks are not delayed by start-up."""
        await self._started()

    async def place(self, request: CallRequest) -> CallReport:
        started = datetime.now(UTC)
        hub, services = await self._started()
        flow = await self._flow(services, request.flow)
        message = self.settings.dialer.machine_message if request.machine_policy == "leave_message" else ""
        screening = MachineScreening(self.amd, message)
        campaign = {"name": request.campaign, "contact_id": str(request.contact_id)}
        variables = {"contact": dict(request.variables), "campaign": campaign}
        offered: list[CallOffered] = []

        def new_session(event: CallOffered) -> CallSession:
            offered.append(event)  # the INVITE left: pjsua accepted the call
            return CallSession(
                event,
                services,
                hub.agent,
                hub.wall_offset,
                flow=flow,
                variables=variables,
                screening=screening,
                transfers=hub,
            )

        await hub.wait_for_slot()
        # The rules are checked again now, right before the INVITE; nothing awaits between the
        # check and hub.place, so nothing can change in between on this side.
        if request.ready_to_dial is not None and not await request.ready_to_dial():
            return _not_dialled(started, "the check before the INVITE refused it")
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
            if not offered:  # no INVITE left (shutting down, no free line, pjsua refused it)
                return _not_dialled(started, str(exc))
            invite_at = _wall(offered[0].at, hub.wall_offset)
            return CallReport(
                CallResult.NETWORK_FAILURE, started, datetime.now(UTC), invite_at=invite_at, detail=str(exc)
            )
        report = self._report(session, started, _wall(offered[0].at, hub.wall_offset) if offered else None)
        if session.recording is None:
            return report
        return await asyncio.to_thread(_with_sidecar, report, session)

    def _report(self, session: CallSession, started: datetime, invite_at: datetime | None) -> CallReport:
        ended = session.ended
        hub = self._hub
        offset = hub.wall_offset if hub is not None else 0.0
        # When the call really ended (the BYE or final response), not when its recording closed.
        ended_at = _wall(ended.at, offset) if ended is not None and hub is not None else datetime.now(UTC)
        answered_at = (
            _wall(ended.at - ended.connected_s, offset) if ended is not None and ended.connected else None
        )
        if session.recording is None:  # never answered
            status = (ended.status_code or None) if ended else None
            detail = ""
            if ended is not None and ended.hung_up_by == "local" and not ended.ring_timed_out:
                result, detail = CallResult.CANCELLED, "we hung up before an answer (shutting down)"
            else:
                result = classify_sip_status(status, ended.ring_timed_out if ended else False)
            return CallReport(
                result,
                started,
                ended_at,
                sip_status=status,
                invite_at=invite_at,
                answered_at=answered_at,
                detail=detail,
            )
        machine = session.answered_by is Verdict.MACHINE
        summary = session.summary
        flow_started = summary.flow_started_at if summary is not None else None
        return CallReport(
            CallResult.ANSWERED_MACHINE if machine else CallResult.ANSWERED_HUMAN,
            started,
            ended_at,
            sip_status=200,
            flow_outcome=None if machine else (session.outcome or None),
            recording_id=session.recording.call_id,
            message_left=session.message_left,
            callback_at=None if machine else str(session.flow_variables.get("callback_at") or "") or None,
            invite_at=invite_at,
            answered_at=answered_at,
            flow_started_at=_wall(flow_started, offset) if flow_started is not None else None,
        )

    async def aclose(self) -> None:
        if not self._owns_hub:
            return  # the shared hub belongs to serve, which stops it
        if self._hub is not None:
            await self._hub.stop(_SHUTDOWN_GRACE_S)
        if self._services is not None:
            await self._services.aclose()
        self._hub = self._services = None


def _wall(monotonic_at: float, wall_offset: float) -> datetime:
    return datetime.fromtimestamp(monotonic_at + wall_offset, UTC)


def _not_dialled(started: datetime, why: str) -> CallReport:
    return CallReport(CallResult.CANCELLED, started, datetime.now(UTC), detail=f"not dialled: {why}")


def _with_sidecar(report: CallReport, session: CallSession) -> CallReport:
    """What the recording's transcript adds: the words and confidence of the answer that decided
    the outcome (the flow's last accepted answer, ``heard``, as the transcript has it)."""
    recording = session.recording
    assert recording is not None
    try:
        sidecar = read_sidecar(recording.sidecar_path)
    except SidecarError as exc:
        _log.warning("outbound: cannot read %s: %s", recording.sidecar_path, exc)
        return report
    changes: dict[str, object] = {}
    heard = str(session.flow_variables.get("heard") or "").strip()
    if report.flow_outcome and heard:
        said = [t for t in sidecar.turns if t.speaker == "caller" and t.text.strip().lower() == heard.lower()]
        changes["decision_text"] = heard
        changes["decision_confidence"] = said[-1].confidence if said else None
    return dataclasses.replace(report, **changes) if changes else report  # type: ignore[arg-type]


def _trunk_host(trunk_uri: str) -> str:
    return trunk_uri.split("@", 1)[-1].split(";", 1)[0].split(">", 1)[0]
