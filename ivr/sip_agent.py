"""The pjsua2 adapter: one Endpoint per process, living on its own thread.

pjsua2 rules this module enforces so nothing else has to know them:

* Every pjsua2 call happens on the agent thread. Other threads ask through :meth:`SipAgent.submit`,
  a queue the thread drains between ``libHandleEvents`` polls.
* Callbacks never block and never raise (:mod:`ivr.sip_call`): they translate into
  :mod:`ivr.sip_events` and hand them to the asyncio loop with ``call_soon_threadsafe``. Media
  frames go through a lock-free :class:`MediaBridge`.
* Python keeps a reference to every Call, Account and AudioMediaPort until pjsua2 is done with
  them, and releases a call inside its DISCONNECTED callback: a ``Call`` destroyed later still
  holds its slot number, and its destructor would hang up whichever new call reused the slot.
  Its media port is destroyed explicitly first (:func:`release_bridge_port`).
* Every INVITE gets a final response at once: admission (:mod:`ivr.admission`) and the SDP
  check (:mod:`ivr.sdp_offer`) run before pjsua is asked to answer.
"""

from __future__ import annotations

import gc
import itertools
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pjsua2 as pj

from config.errors import SipError
from config.logs import log_event, mask_number
from config.settings import SipSettings
from ivr.admission import Admission, Load, Refusal
from ivr.bridge_port import create_bridge_port, release_bridge_port
from ivr.pjsua2_build import installed_build
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
from ivr.sip_endpoint import account_config, configure_endpoint
from ivr.sip_events import CallConnected, CallEnded, CallOffered, CallRefused, SipEvent

_log = logging.getLogger("ivr.sip")
_POLL_MS = 5
_GIL_SWITCH_INTERVAL_S = 0.0005


class SipAgent:
    """Answers and places G.711 calls; reports everything as :data:`SipEvent` to ``on_event``.

    ``on_event`` runs on the asyncio loop given to :meth:`start`, never on the pjsua2 thread.
    """

    def __init__(
        self,
        settings: SipSettings,
        on_event: Callable[[SipEvent], None],
        redirect: Callable[[], str | None] | None = None,
    ) -> None:
        self.settings = settings
        # A front agent answers every INVITE with 302 to the URI ``redirect`` picks (486 when it
        # picks none); it runs on the agent thread, so it must be quick and must not block.
        self._redirect = redirect
        self._on_event = on_event
        self._loop: Any = None
        self._thread: threading.Thread | None = None
        self._commands: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._draining = threading.Event()
        self._start_error: str | None = None
        self._calls: dict[int, CallRecord] = {}
        self._keys = itertools.count(1)
        self._ep: Any = None
        self._account: PjAccount | None = None
        self._trunk_account: PjAccount | None = None
        self._admission = Admission(settings)
        self.bound_port = settings.port
        self.build = installed_build()
        # What one process takes is measured (docs/benchmarks.md), and never more than the
        # pjsua2 build holds; pjsua gets headroom above it so a freed slot is not reused at once.
        self.capacity = min(settings.max_concurrent_calls, settings.engine_call_limit, self.build.max_calls)

    # -- lifecycle --------------------------------------------------------------------
    def start(self, loop: Any, timeout: float = 15.0) -> None:
        """Start the agent thread and wait until SIP transports listen (raises SipError)."""
        # pjmedia's clock thread needs the GIL twice per call every 20 ms (the BridgePort
        # callbacks); with CPython's default 5 ms switch interval each hand-over can cost up to
        # 5 ms while the event loop is busy. 0.5 ms measured fewer and shorter RTP gaps and a
        # 2.6x faster reply at 32 calls (docs/benchmarks.md, capacity section).
        sys.setswitchinterval(_GIL_SWITCH_INTERVAL_S)
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="pjsua2", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise SipError(f"SIP user agent did not start within {timeout:.0f} s")
        if self._start_error is not None:
            raise SipError(
                f"SIP user agent failed to start on {self.settings.bind_address}:{self.settings.port}: "
                f"{self._start_error}"
            )

    def stop(self, timeout: float = 10.0) -> None:
        """Hang up every call, close transports and destroy the endpoint."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def drain(self) -> None:
        """Take no new calls (503 with Retry-After, and 503 to OPTIONS probes); calls in
        progress go on. Any thread."""
        if not self._draining.is_set():
            self._draining.set()
            self.submit(lambda: self._set_online(False))
            log_event("sip.draining", logger=_log, live_calls=self.active_calls)

    @property
    def draining(self) -> bool:
        return self._draining.is_set()

    @property
    def active_calls(self) -> int:
        return sum(1 for rec in list(self._calls.values()) if not rec.ended and not rec.refused)

    @property
    def pending_invites(self) -> int:
        return sum(
            1
            for rec in list(self._calls.values())
            if rec.direction == "inbound" and not rec.refused and not rec.ended and rec.connected_at is None
        )

    # -- commands (any thread) ----------------------------------------------------------
    def submit(self, command: Callable[[], None]) -> None:
        self._commands.put(command)

    def hangup(self, call_key: int, status_code: int = 0) -> None:
        self.submit(lambda: self._hangup(call_key, status_code))

    def place_call(self, uri: str, ring_timeout_s: float, use_trunk_credentials: bool = True) -> int:
        """Start an outbound call; returns its key at once (events follow)."""
        key = next(self._keys)
        self.submit(lambda: self._make_call(key, uri, ring_timeout_s, use_trunk_credentials))
        return key

    def set_trunk_credentials(self, id_uri: str, username: str, password: str) -> None:
        """Credentials answered to 401/407 challenges on placed calls."""

        def run() -> None:
            self._trunk_account = self._create_account(id_uri, False, username, password)

        self.submit(run)

    # -- the agent thread ---------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._init_endpoint()
        except Exception as exc:  # pjsua2 raises pj.Error, which carries the reason text
            self._start_error = pj_error(exc)
            self._destroy()
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._stopping.is_set():
                self._ep.libHandleEvents(_POLL_MS)
                self._run_commands()
                self._run_timers()
            self._shutdown_calls()
        except Exception as exc:  # the loop itself must not die silently with calls in it
            log_event("sip.agent_failed", logging.CRITICAL, _log, error=pj_error(exc))
            raise
        finally:
            self._destroy()

    def _init_endpoint(self) -> None:
        s = self.settings
        ep = pj.Endpoint()
        ep.libCreate()
        self._ep = ep
        headroom = min(self.build.max_calls, 2 * self.capacity + s.max_pending_invites + 8)
        port = configure_endpoint(ep, s, max_calls=headroom)
        self.bound_port = port
        host = s.public_address or ("127.0.0.1" if s.bind_address in ("0.0.0.0", "") else s.bind_address)
        self._account = self._create_account(f"sip:ivr@{host}:{port}", default=True)
        self._set_online(not self._draining.is_set())
        log_event(
            "sip.listening",
            logger=_log,
            address=s.bind_address,
            port=port,
            transports=",".join(s.transports),
            codecs=",".join(s.codecs),
            capacity=self.capacity,
            pjsua2=self.build.name,
            open_to="any source" if not s.allowed_networks else ",".join(s.allowed_networks),
        )

    def _create_account(
        self, id_uri: str, default: bool, username: str = "", password: str = ""
    ) -> PjAccount:
        account = PjAccount(self)
        account.create(account_config(self.settings, id_uri, username, password), default)
        return account

    def _set_online(self, online: bool) -> None:
        # With the vendored build's patch, OPTIONS follows this: 200 online, 503 offline, so a
        # load balancer's probe sees a draining node leave.
        if self._account is not None:
            status = pj.PresenceStatus()
            status.status = pj.PJSUA_BUDDY_STATUS_ONLINE if online else pj.PJSUA_BUDDY_STATUS_OFFLINE
            self._account.setOnlineStatus(status)

    def _run_commands(self) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                command()
            except Exception as exc:
                log_event("sip.command_failed", logging.WARNING, _log, error=pj_error(exc))

    def _run_timers(self) -> None:
        now = time.monotonic()
        for rec in list(self._calls.values()):
            if rec.ended or rec.call is None or rec.refused:
                continue
            with guarded("timer", rec, self.fail_call):
                if rec.answer_at is not None and now >= rec.answer_at:
                    rec.answer_at = None
                    self._answer(rec, 200)
                if rec.ring_deadline is not None and rec.connected_at is None and now >= rec.ring_deadline:
                    rec.ring_deadline = None
                    rec.ring_timed_out = True
                    self._hangup(rec.key, 0)

    def _shutdown_calls(self) -> None:
        for rec in list(self._calls.values()):
            if not rec.ended and not rec.refused:
                self._hangup(rec.key, 0)
        deadline = time.monotonic() + 3.0
        while self._calls and time.monotonic() < deadline:
            self._ep.libHandleEvents(20)

    def _destroy(self) -> None:
        # Every Call, Account and AudioMediaPort must be gone before libDestroy: their destructors
        # call into pjsua. Records and calls point at each other, so break those cycles and
        # collect now rather than leave them to a later (post-destroy) garbage collection.
        for rec in list(self._calls.values()):
            self._release(rec)
        self._calls.clear()
        self._account = None
        self._trunk_account = None
        gc.collect()
        if self._ep is not None:
            try:
                self._ep.libDestroy()
            except Exception as exc:  # pragma: no cover - best effort at exit
                log_event("sip.destroy_failed", logging.WARNING, _log, error=pj_error(exc))
            self._ep = None

    def _release(self, rec: CallRecord) -> None:
        """Let go of a call pjsua is done with: its port first, then the Call (agent thread)."""
        self._calls.pop(rec.key, None)
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

    # -- pjsua2 callbacks (agent thread) -------------------------------------------------
    def emit(self, event: SipEvent) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._on_event, event)

    def fail_call(self, rec: CallRecord) -> None:
        """A callback or timer of this call failed: end the call, keep the process."""
        if rec.ended or rec.call is None:
            return
        if rec.refused:
            return  # pjsua finishes the refusal; DISCONNECTED releases it
        self._hangup(rec.key, 500 if rec.connected_at is None else 0)
        if rec.call is not None and not is_active(rec.call):
            self._end(rec, 500, "call failed inside the engine", time.monotonic())

    def on_incoming(self, account: PjAccount, prm: Any) -> None:
        now = time.monotonic()
        rec = CallRecord(next(self._keys), "inbound", offered_at=now)
        call = PjCall(self, rec, account, prm.callId)
        rec.call = call
        self._calls[rec.key] = rec  # held from here on, refused or not, until DISCONNECTED
        info = call.getInfo()
        closing = self._draining.is_set() or self._stopping.is_set()
        load = Load(self.active_calls - 1, self.pending_invites - 1, self.capacity, closing)
        src = source_ip(str(prm.rdata.srcAddress))
        refusal = self._admission.decide_invite(src, str(prm.rdata.wholeMsg), load, now)
        if refusal is None and self._redirect is not None:
            target = self._redirect()
            refusal = Refusal(302, f"Moved Temporarily to {target}", contact=target) if target else None
            refusal = refusal or Refusal(486, "Busy Here")
        if refusal is not None:
            self._refuse(rec, info, refusal, now)
            return
        self.emit(CallOffered(rec.key, "inbound", info.callIdString, info.remoteUri, info.localUri, now))
        self._answer(rec, 180)
        rec.answer_at = now + self.settings.answer_delay_s

    def _refuse(self, rec: CallRecord, info: Any, refusal: Refusal, now: float) -> None:
        rec.refused = True
        try:
            rec.call.answer(refusal_param(refusal))
        except Exception as exc:
            log_event("sip.refuse_failed", logging.WARNING, _log, call=rec.key, error=pj_error(exc))
            if not is_active(rec.call):
                self._release(rec)
        reason = refusal.reason if refusal.warning is None else f"{refusal.reason}: {refusal.warning[1]}"
        self.emit(CallRefused(info.callIdString, info.remoteUri, refusal.status, reason, now))

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

    def _make_call(self, key: int, uri: str, ring_timeout_s: float, use_trunk: bool) -> None:
        now = time.monotonic()
        rec = CallRecord(key, "outbound", offered_at=now)
        account = self._trunk_account if (use_trunk and self._trunk_account) else self._account
        call = PjCall(self, rec, account, pj.PJSUA_INVALID_ID)
        rec.call = call
        self._calls[key] = rec
        rec.ring_deadline = now + ring_timeout_s
        try:
            call.makeCall(uri, pj.CallOpParam(True))
        except Exception as exc:
            log_event(
                "sip.call_failed", logging.WARNING, _log, call=key, uri=mask_number(uri), error=pj_error(exc)
            )
            rec.ended = True
            self._release(rec)
            self.emit(
                CallEnded(key, 0, f"cannot place call: {pj_error(exc)}", False, 0.0, False, "local", now)
            )
            return
        info = call.getInfo()
        self.emit(CallOffered(key, "outbound", info.callIdString, info.remoteUri, info.localUri, now))

    def _hangup(self, key: int, status: int) -> None:
        rec = self._calls.get(key)
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

    def on_call_state(self, call: PjCall) -> None:
        rec = call.record
        if rec is None or rec.key not in self._calls:
            return
        info = call.getInfo()
        now = time.monotonic()
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            if rec.refused:
                self._release(rec)
            else:
                self._end(rec, int(info.lastStatusCode), str(info.lastReason), now)
        elif rec.refused or rec.ended:
            return
        elif info.state == pj.PJSIP_INV_STATE_CONFIRMED and rec.connected_at is None:
            rec.connected_at = now
            rec.ring_deadline = None
            self._ensure_port(call)
            codec = codec_name(call)
            self.emit(CallConnected(rec.key, rec.bridge, codec, now))

    def _end(self, rec: CallRecord, status: int, reason: str, now: float) -> None:
        """The call is over: tell the loop, then release it (still inside the callback)."""
        if rec.ended:
            return
        rec.ended = True
        connected_s = (now - rec.connected_at) if rec.connected_at is not None else 0.0
        self._release(rec)
        self.emit(
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

    def on_media_state(self, call: PjCall) -> None:
        rec = call.record
        if rec is not None and rec.connected_at is not None and not rec.ended:
            self._ensure_port(call)  # re-INVITE: reconnect to the new stream

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
