"""The calls one SIP endpoint holds: each from its INVITE (in or out) to pjsua's DISCONNECTED.

:class:`SipCalls` lives on the :class:`~ivr.sip_agent.SipAgent`'s thread and keeps a
:class:`~ivr.sip_call.CallRecord` for every pjsua call slot in use. It answers INVITEs (admission
and the SDP check first, :mod:`ivr.admission`, so every INVITE gets a final response at once),
places calls, hangs them up, attaches their media ports, and reports what happens to them as
:mod:`ivr.sip_events` through the agent. It releases a call inside its DISCONNECTED callback, its
media port first (:func:`release_bridge_port`) and then the ``Call``: a ``Call`` destroyed later
still holds its slot number, and its destructor would hang up whichever new call reused the slot.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

from config.logs import log_event, mask_number
from config.settings import SipSettings
from ivr.admission import Admission, Load, Refusal
from ivr.bridge_port import create_bridge_port, release_bridge_port
from ivr.media_bridge import MediaBridge
from ivr.native_bridge import native_available, new_bridge
from ivr.sip_call import (
    CallRecord,
    PjAccount,
    PjCall,
    codec_name,
    guarded,
    is_active,
    pj_error,
    refusal_param,
    source_ip,
)
from ivr.sip_events import CallConnected, CallEnded, CallOffered, CallRefused

if TYPE_CHECKING:
    from ivr.sip_agent import SipAgent

_log = logging.getLogger("ivr.sip")


class SipCalls:
    """See the module docstring. Agent thread only, except :meth:`next_key` and the counts."""

    def __init__(
        self,
        agent: SipAgent,
        settings: SipSettings,
        redirect: Callable[[], str | None] | None,
        native_bridge: bool = True,
    ) -> None:
        self._agent = agent
        self.settings = settings
        # Each call's frames in a C++ ring (ivr.native_bridge) when the pjsua2 build has one.
        self._native_bridge = native_bridge and native_available()
        if redirect is None:
            log_event(
                "sip.media_port",
                logging.INFO if self._native_bridge or not native_bridge else logging.WARNING,
                _log,
                port="RingMediaPort" if self._native_bridge else "BridgePort",
                native_requested=native_bridge,
            )
        # A front agent answers every INVITE with 302 to the URI ``redirect`` picks (486 when it
        # picks none); it runs on the agent thread, so it must be quick and must not block.
        self._redirect = redirect
        self.records: dict[int, CallRecord] = {}
        self._keys = itertools.count(1)
        self._admission = Admission(settings)

    def next_key(self) -> int:
        return next(self._keys)

    def _new_bridge(self) -> MediaBridge:
        return new_bridge(self._native_bridge)

    @property
    def active(self) -> int:
        return sum(1 for rec in list(self.records.values()) if not rec.ended and not rec.refused)

    @property
    def pending_invites(self) -> int:
        return sum(
            1
            for rec in list(self.records.values())
            if rec.direction == "inbound" and not rec.refused and not rec.ended and rec.connected_at is None
        )

    # -- inbound --------------------------------------------------------------------------
    def on_incoming(self, account: PjAccount, prm: Any) -> None:
        agent = self._agent
        now = time.monotonic()
        rec = CallRecord(self.next_key(), "inbound", offered_at=now, bridge=self._new_bridge())
        call = PjCall(agent, rec, account, prm.callId)
        rec.call = call
        self.records[rec.key] = rec  # held from here on, refused or not, until DISCONNECTED
        info = call.getInfo()
        load = Load(self.active - 1, self.pending_invites - 1, agent.capacity, agent.closing)
        src = source_ip(str(prm.rdata.srcAddress))
        refusal = self._admission.decide_invite(src, str(prm.rdata.wholeMsg), load, now)
        if refusal is None and self._redirect is not None:
            target = self._redirect()
            refusal = Refusal(302, f"Moved Temporarily to {target}", contact=target) if target else None
            refusal = refusal or Refusal(486, "Busy Here")
        if refusal is not None:
            self._refuse(rec, info, refusal, now)
            return
        agent.emit(CallOffered(rec.key, "inbound", info.callIdString, info.remoteUri, info.localUri, now))
        self._answer(rec, 180)
        rec.answer_at = now + self.settings.answer_delay_s

    def _refuse(self, rec: CallRecord, info: Any, refusal: Refusal, now: float) -> None:
        rec.refused = True
        try:
            rec.call.answer(refusal_param(refusal))
        except Exception as exc:
            log_event("sip.refuse_failed", logging.WARNING, _log, call=rec.key, error=pj_error(exc))
            if not is_active(rec.call):
                self.release(rec)
        reason = refusal.reason if refusal.warning is None else f"{refusal.reason}: {refusal.warning[1]}"
        self._agent.emit(CallRefused(info.callIdString, info.remoteUri, refusal.status, reason, now))

    def _answer(self, rec: CallRecord, status: int) -> None:
        prm = pj.CallOpParam()
        prm.statusCode = status
        try:
            rec.call.answer(prm)
        except Exception as exc:
            # pjsua may already have refused the call itself (e.g. SDP negotiation failed with
            # 488) and disconnected it inside answer(): then there is nothing left to hang up.
            log_event(
                "sip.answer_failed", logging.WARNING, _log, call=rec.key, status=status, error=pj_error(exc)
            )
            if rec.call is not None and not rec.ended:
                self.fail_call(rec)

    # -- outbound and hang-up -------------------------------------------------------------
    def place(self, key: int, uri: str, ring_timeout_s: float, account: PjAccount | None) -> None:
        now = time.monotonic()
        rec = CallRecord(key, "outbound", offered_at=now, bridge=self._new_bridge())
        call = PjCall(self._agent, rec, account, pj.PJSUA_INVALID_ID)
        rec.call = call
        self.records[key] = rec
        rec.ring_deadline = now + ring_timeout_s
        try:
            call.makeCall(uri, pj.CallOpParam(True))
        except Exception as exc:
            log_event(
                "sip.call_failed", logging.WARNING, _log, call=key, uri=mask_number(uri), error=pj_error(exc)
            )
            rec.ended = True
            self.release(rec)
            self._agent.emit(
                CallEnded(key, 0, f"cannot place call: {pj_error(exc)}", False, 0.0, False, "local", now)
            )
            return
        info = call.getInfo()
        self._agent.emit(CallOffered(key, "outbound", info.callIdString, info.remoteUri, info.localUri, now))

    def hangup(self, key: int, status: int) -> None:
        rec = self.records.get(key)
        if rec is None or rec.ended or rec.call is None or rec.refused:
            return
        rec.local_hangup = True
        rec.bridge.close()
        prm = pj.CallOpParam()
        if status:
            prm.statusCode = status
        try:
            rec.call.hangup(prm)
        except Exception as exc:  # already disconnecting
            log_event("sip.hangup_failed", logging.DEBUG, _log, call=key, error=pj_error(exc))

    def hang_up_all(self) -> None:
        for rec in list(self.records.values()):
            if not rec.ended and not rec.refused:
                self.hangup(rec.key, 0)

    def run_timers(self) -> None:
        """The delayed 200 of an inbound call, and the ring timeout of a placed one."""
        now = time.monotonic()
        for rec in list(self.records.values()):
            if rec.ended or rec.call is None or rec.refused:
                continue
            with guarded("timer", rec, self.fail_call):
                if rec.answer_at is not None and now >= rec.answer_at:
                    rec.answer_at = None
                    self._answer(rec, 200)
                if rec.ring_deadline is not None and rec.connected_at is None and now >= rec.ring_deadline:
                    rec.ring_deadline = None
                    rec.ring_timed_out = True
                    self.hangup(rec.key, 0)

    def fail_call(self, rec: CallRecord) -> None:
        """A callback or timer of this call failed: end the call, keep the process."""
        if rec.ended or rec.call is None:
            return
        if rec.refused:
            return  # pjsua finishes the refusal; DISCONNECTED releases it
        self.hangup(rec.key, 500 if rec.connected_at is None else 0)
        if rec.call is not None and not is_active(rec.call):
            self._end(rec, 500, "call failed inside the engine", time.monotonic())

    # -- pjsua2 callbacks -----------------------------------------------------------------
    def on_call_state(self, call: PjCall) -> None:
        rec = call.record
        if rec is None or rec.key not in self.records:
            return
        info = call.getInfo()
        now = time.monotonic()
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            if rec.refused:
                self.release(rec)
            else:
                self._end(rec, int(info.lastStatusCode), str(info.lastReason), now)
        elif rec.refused or rec.ended:
            return
        elif info.state == pj.PJSIP_INV_STATE_CONFIRMED and rec.connected_at is None:
            rec.connected_at = now
            rec.ring_deadline = None
            self._ensure_port(call)
            codec = codec_name(call)
            self._agent.emit(CallConnected(rec.key, rec.bridge, codec, now))

    def on_media_state(self, call: PjCall) -> None:
        rec = call.record
        if rec is not None and rec.connected_at is not None and not rec.ended:
            self._ensure_port(call)  # re-INVITE: reconnect to the new stream

    def _end(self, rec: CallRecord, status: int, reason: str, now: float) -> None:
        """The call is over: tell the loop, then release it (still inside the callback)."""
        if rec.ended:
            return
        rec.ended = True
        connected_s = (now - rec.connected_at) if rec.connected_at is not None else 0.0
        self.release(rec)
        self._agent.emit(
            CallEnded(
                rec.key,
                status,
                reason,
                rec.connected_at is not None,
                connected_s,
                rec.ring_timed_out,
                "local" if rec.local_hangup else "remote",
                now,
            )
        )

    def _ensure_port(self, call: PjCall) -> None:
        rec = call.record
        if rec is None:
            return
        info = call.getInfo()
        for media in info.media:
            if media.type != pj.PJMEDIA_TYPE_AUDIO or media.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            audio = call.getAudioMedia(media.index)
            if rec.port is None:
                rec.port = create_bridge_port(f"call{rec.key}", rec.bridge)
            audio.startTransmit(rec.port)
            rec.port.startTransmit(audio)
            return

    # -- release --------------------------------------------------------------------------
    def release(self, rec: CallRecord) -> None:
        """Let go of a call pjsua is done with: its port first, then the Call (agent thread)."""
        self.records.pop(rec.key, None)
        rec.bridge.close()
        port, rec.port = rec.port, None
        if port is not None:
            try:
                release_bridge_port(port)
            except Exception as exc:
                log_event("sip.port_release_failed", logging.ERROR, _log, call=rec.key, error=pj_error(exc))
        call, rec.call = rec.call, None
        if call is not None:
            call.record = None  # no cycle: the Call dies with the last reference, here and now

    def release_all(self) -> None:
        """Before ``libDestroy``: every Call and port must be gone (their destructors call pjsua)."""
        for rec in list(self.records.values()):
            self.release(rec)
        self.records.clear()
