"""A supervisor's phone dials ``*77<short id>``: the PIN dialogue, then the call joins in listen.

The hub hands this leg any inbound INVITE whose dialled (To) URI starts with the feature code
(``supervision.feature_code``), so it never starts the normal flow. The decisions are
:mod:`supervision.feature_code` (pure); this adapter feeds it the keys, runs the argon2 check
off the loop, writes the audit rows (:class:`~ivr.supervisor_control.SupervisorControl`) and,
once joined, hands its media and keys to the supervision as if the engine had rung the phone
(:class:`~ivr.supervisor_leg.AnsweredLeg`). Refusals hang up; their reason is audited and
logged, never told to the phone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from config.logs import log_event, mask_number
from config.settings import SupervisionSettings
from ivr.call_hub import CallHub
from ivr.sip_events import CallConnected, CallEnded, CallOffered, DtmfReceived
from ivr.supervisor_client import SupervisionError, load_roster, roster_path
from ivr.supervisor_control import SupervisorControl
from ivr.supervisor_leg import AnsweredLeg, SupervisorLeg
from recordings import RecordingInfo
from recordings.access_log import Accessor
from supervision.feature_code import Claim, Command, PinEntry, Refuse, Retry, Verify, claimed_user, dialled

_log = logging.getLogger("ivr.supervision")
_TICK_S = 0.02


def dialin_leg(
    offered: CallOffered, control: SupervisorControl, hub: CallHub, settings: SupervisionSettings
) -> DialinLeg | None:
    """The leg for a feature-code INVITE, or None for any other call (the normal flow's)."""
    if offered.direction != "inbound":
        return None
    short_id = dialled(offered.local_uri, settings.feature_code)
    return None if short_id is None else DialinLeg(offered, short_id, control, hub, settings)


def _verify(pin_hash: str, pin: str) -> bool:
    try:
        return PasswordHasher().verify(pin_hash, pin)
    except (VerificationError, InvalidHashError):
        return False


class DialinLeg:
    """One dialled-in supervisor's call, as the hub sees it (see :class:`~ivr.call_hub.CallLeg`)."""

    def __init__(
        self,
        offered: CallOffered,
        short_id: str,
        control: SupervisorControl,
        hub: CallHub,
        settings: SupervisionSettings,
    ) -> None:
        self.offered = offered
        self.short_id = short_id
        self.call_id = f"supervisor-dialin-{offered.call_key}"
        self.recording: RecordingInfo | None = None
        self._control = control
        self._hub = hub
        self._settings = settings
        self._digits: deque[str] = deque()
        self._over = asyncio.Event()
        self._answered: AnsweredLeg | None = None
        self.outcome = ""
        # Logged like every call: the redirecting front counts a worker's lines from these lines.
        log_event(
            "call.offered",
            logger=_log,
            call_id=self.call_id,
            direction="inbound",
            leg="supervisor_dialin",
            remote=mask_number(offered.remote_uri),
        )

    @property
    def joined(self) -> SupervisorLeg | None:
        return self._answered.leg if self._answered is not None else None

    # -- from the hub -----------------------------------------------------------------------
    async def run(self, connected: CallConnected) -> None:
        try:
            await self._dialogue(connected)
        except Exception:  # the hub would only log it; the phone must not stay on an open line
            _log.exception("call.supervision_dialin_failed", extra={"fields": {"call_id": self.call_id}})
            self._hub.hangup(self.offered.call_key)
        await self._over.wait()

    def on_dtmf(self, event: DtmfReceived) -> None:
        joined = self.joined
        if joined is not None:
            joined.on_dtmf(event)
        else:
            self._digits.append(event.digit)

    def on_ended(self, event: CallEnded) -> None:
        if self._answered is not None and self._answered.leg is not None:
            self._answered.leg.on_ended(event)
            if self._answered.done is not None and not self._answered.done.done():
                self._answered.done.set_result(self._answered.leg)
        self._over.set()

    def request_hangup(self, reason: str) -> None:
        """The hub hangs the call up itself (it sends the BYE); nothing to stop here."""

    def on_unconnected_end(self, event: CallEnded) -> None:
        """Nothing was decided before the phone hung up: nothing to record."""

    # -- the dialogue -------------------------------------------------------------------------
    async def _dialogue(self, connected: CallConnected) -> None:
        remote = self.offered.remote_uri
        who = Accessor(
            "unknown caller", "", os.uname().nodename, "", f"sip {mask_number(remote)}", os.getpid()
        )
        try:
            roster = await asyncio.to_thread(load_roster, roster_path(self._control.settings.data_path))
            claim: Claim | str = claimed_user(roster, remote)
        except SupervisionError as exc:
            claim = str(exc)
        if isinstance(claim, str):
            await self._refuse(who, Refuse(claim))
            return
        who = Accessor(claim.user, "", who.host, "", who.remote, who.pid)
        entry = PinEntry(
            self.short_id,
            time.monotonic(),
            tries=self._settings.pin_tries,
            timeout_s=self._settings.pin_timeout_s,
        )
        while not self._over.is_set():
            connected.bridge.drain()  # what the phone says while keying goes nowhere
            now = time.monotonic()
            commands: list[Command | None] = [entry.digit(key, now) for key in self._take_digits()]
            commands.append(entry.tick(now))
            for first in commands:
                command = first
                while isinstance(command, Verify):
                    ok = await asyncio.to_thread(_verify, claim.pin_hash, command.pin)
                    command = entry.verified(ok, time.monotonic())
                if isinstance(command, Retry):
                    detail = {
                        "step": "pin_wrong",
                        "tries_left": command.tries_left,
                        "short_id": self.short_id,
                    }
                    await self._control.audit_dialin(who, "", detail)
                    log_event("call.supervision_pin_wrong", logging.WARNING, _log, call_id=self.call_id)
                elif isinstance(command, Refuse):
                    await self._refuse(who, command)
                    return
                elif command is not None:  # Join
                    await self._join(who, claim.phone, connected)
                    return
            await asyncio.sleep(_TICK_S)

    def _take_digits(self) -> list[str]:
        keys = list(self._digits)
        self._digits.clear()
        return keys

    async def _join(self, who: Accessor, phone: str, connected: CallConnected) -> None:
        answered = AnsweredLeg(self.offered, connected.bridge, self._hub.hangup)
        self._answered = answered
        problem = await self._control.join_dialled(who, phone, self.short_id, answered)
        if problem is not None:
            self._answered = None
            log_event(
                "call.supervision_refused",
                logging.WARNING,
                _log,
                call_id=self.call_id,
                user=who.actor,
                reason=problem,
            )
            self.outcome = "refused"
            self._hub.hangup(self.offered.call_key)
            return
        self.outcome = "joined"

    async def _refuse(self, who: Accessor, refusal: Refuse) -> None:
        self.outcome = "refused"
        log_event(
            "call.supervision_refused",
            logging.WARNING,
            _log,
            call_id=self.call_id,
            user=who.actor,
            reason=refusal.reason,
        )
        try:
            detail = {"step": "requested", "allowed": False, "decision": refusal.reason}
            await self._control.audit_dialin(who, "", {**detail, "short_id": self.short_id})
        finally:
            self._hub.hangup(self.offered.call_key)
