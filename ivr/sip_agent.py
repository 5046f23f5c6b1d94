"""The pjsua2 adapter: one Endpoint per process, living on its own thread.

pjsua2 rules this module enforces so nothing else has to know them:

* Every pjsua2 call happens on the agent thread. Other threads ask through :meth:`SipAgent.submit`,
  a queue the thread drains between ``libHandleEvents`` polls.
* Callbacks never block: they translate into :mod:`ivr.sip_events` and hand them to the asyncio
  loop with ``call_soon_threadsafe``. Media frames go through a lock-free :class:`MediaBridge`.
* Python keeps a reference to every Call, Account and AudioMediaPort until pjsua2 is done with
  them; calls are released one poll after DISCONNECTED, never inside the callback itself.
"""

from __future__ import annotations

import gc
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pjsua2 as pj

from config.settings import SipSettings
from ivr.bridge_port import BridgePort, create_bridge_port
from ivr.errors import SipError
from ivr.logs import log_event, mask_number
from ivr.media_bridge import MediaBridge
from ivr.sip_endpoint import configure_endpoint
from ivr.sip_events import (
    CallConnected,
    CallEnded,
    CallOffered,
    CallProgress,
    CallRefused,
    Direction,
    DtmfReceived,
    SipEvent,
)

_log = logging.getLogger("ivr.sip")
_POLL_MS = 5


@dataclass
class _CallRecord:
    key: int
    direction: Direction
    call: Any = None
    port: BridgePort | None = None
    bridge: MediaBridge = field(default_factory=MediaBridge)
    connected_at: float | None = None
    ring_deadline: float | None = None
    ring_timed_out: bool = False
    local_hangup: bool = False
    answer_at: float | None = None
    ended: bool = False


class _Call(pj.Call):  # type: ignore[misc]
    def __init__(self, agent: SipAgent, record: _CallRecord, account: Any, call_id: int) -> None:
        super().__init__(account, call_id)
        self._agent = agent
        self.record = record

    def onCallState(self, prm: Any) -> None:
        self._agent._on_call_state(self)

    def onCallMediaState(self, prm: Any) -> None:
        self._agent._on_media_state(self)

    def onDtmfDigit(self, prm: Any) -> None:
        method = {pj.PJSUA_DTMF_METHOD_RFC2833: "rfc2833", pj.PJSUA_DTMF_METHOD_SIP_INFO: "sip_info"}
        self._agent._emit(
            DtmfReceived(self.record.key, str(prm.digit), method.get(prm.method, "other"), time.monotonic())
        )


class _Account(pj.Account):  # type: ignore[misc]
    def __init__(self, agent: SipAgent) -> None:
        super().__init__()
        self._agent = agent

    def onIncomingCall(self, prm: Any) -> None:
        self._agent._on_incoming(self, prm.callId)


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
        self._start_error: str | None = None
        self._calls: dict[int, _CallRecord] = {}
        self._refused: list[_Call] = []
        self._graveyard: list[_CallRecord] = []
        self._keys = itertools.count(1)
        self._ep: Any = None
        self._account: _Account | None = None
        self._trunk_account: _Account | None = None
        self.bound_port = settings.port
        # pjsua silently clamps maxCalls to its compile-time PJSUA_MAX_CALLS and answers 486
        # itself beyond it, so the agent's own limit never exceeds that.
        self.capacity = min(settings.max_concurrent_calls, settings.engine_call_limit)

    # -- lifecycle --------------------------------------------------------------------
    def start(self, loop: Any, timeout: float = 15.0) -> None:
        """Start the agent thread and wait until SIP transports listen (raises SipError)."""
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

    @property
    def active_calls(self) -> int:
        return sum(1 for rec in self._calls.values() if not rec.ended)

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

    def send_dtmf(self, call_key: int, digits: str) -> None:
        def run() -> None:
            rec = self._calls.get(call_key)
            if rec is not None and rec.call is not None and not rec.ended:
                rec.call.dialDtmf(digits)

        self.submit(run)

    # -- the agent thread ---------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._init_endpoint()
        except Exception as exc:  # pjsua2 raises pj.Error, which carries the reason text
            self._start_error = _pj_error(exc)
            self._destroy()
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._stopping.is_set():
                self._ep.libHandleEvents(_POLL_MS)
                self._run_commands()
                self._run_timers()
                self._reap()
            self._shutdown_calls()
        finally:
            self._destroy()

    def _init_endpoint(self) -> None:
        s = self.settings
        ep = pj.Endpoint()
        ep.libCreate()
        self._ep = ep
        port = configure_endpoint(ep, s, max_calls=min(self.capacity + 1, s.engine_call_limit))
        self.bound_port = port
        host = s.public_address or ("127.0.0.1" if s.bind_address in ("0.0.0.0", "") else s.bind_address)
        self._account = self._create_account(f"sip:ivr@{host}:{port}", default=True)
        log_event(
            "sip.listening",
            logger=_log,
            address=s.bind_address,
            port=port,
            transports=",".join(s.transports),
            codecs=",".join(s.codecs),
        )

    def _create_account(self, id_uri: str, default: bool, username: str = "", password: str = "") -> _Account:
        s = self.settings
        ac = pj.AccountConfig()
        ac.idUri = id_uri
        ac.mediaConfig.transportConfig.port = s.rtp_port_start
        ac.mediaConfig.transportConfig.portRange = s.rtp_port_range
        ac.mediaConfig.transportConfig.boundAddress = s.bind_address
        if s.public_address:
            ac.mediaConfig.transportConfig.publicAddress = s.public_address
        if username:
            ac.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", username, 0, password))
        account = _Account(self)
        account.create(ac, default)
        return account

    def set_trunk_credentials(self, id_uri: str, username: str, password: str) -> None:
        """Credentials answered to 401/407 challenges on placed calls."""

        def run() -> None:
            self._trunk_account = self._create_account(id_uri, False, username, password)

        self.submit(run)

    def _run_commands(self) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                command()
            except Exception as exc:
                log_event("sip.command_failed", logging.WARNING, _log, error=_pj_error(exc))

    def _run_timers(self) -> None:
        now = time.monotonic()
        for rec in list(self._calls.values()):
            if rec.ended or rec.call is None:
                continue
            if rec.answer_at is not None and now >= rec.answer_at:
                rec.answer_at = None
                self._answer(rec, 200)
            if rec.ring_deadline is not None and rec.connected_at is None and now >= rec.ring_deadline:
                rec.ring_deadline = None
                rec.ring_timed_out = True
                self._hangup(rec.key, 0)

    def _reap(self) -> None:
        # Release calls that ended during an earlier poll: pjsua2 is done with them by now.
        if self._graveyard:
            for rec in self._graveyard:
                rec.port = None
                rec.call = None
            self._graveyard.clear()
        for key in [k for k, rec in self._calls.items() if rec.ended]:
            self._graveyard.append(self._calls.pop(key))
        self._refused = [c for c in self._refused if _is_active(c)]

    def _shutdown_calls(self) -> None:
        for rec in list(self._calls.values()):
            if not rec.ended:
                self._hangup(rec.key, 0)
        deadline = time.monotonic() + 3.0
        while any(not rec.ended for rec in self._calls.values()) and time.monotonic() < deadline:
            self._ep.libHandleEvents(20)
        self._reap()
        self._reap()

    def _destroy(self) -> None:
        # Every Call, Account and AudioMediaPort must be gone before libDestroy: their destructors
        # call into pjsua. Records and calls point at each other, so break those cycles and
        # collect now rather than leave them to a later (post-destroy) garbage collection.
        for rec in [*self._calls.values(), *self._graveyard]:
            rec.port = None
            rec.call = None
        self._calls.clear()
        self._graveyard.clear()
        self._refused.clear()
        self._account = None
        self._trunk_account = None
        gc.collect()
        if self._ep is not None:
            try:
                self._ep.libDestroy()
            except Exception as exc:  # pragma: no cover - best effort at exit
                log_event("sip.destroy_failed", logging.WARNING, _log, error=_pj_error(exc))
            self._ep = None

    # -- pjsua2 callbacks (agent thread) -------------------------------------------------
    def _emit(self, event: SipEvent) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._on_event, event)

    def _on_incoming(self, account: _Account, call_id: int) -> None:
        s = self.settings
        rec = _CallRecord(next(self._keys), "inbound")
        call = _Call(self, rec, account, call_id)
        info = call.getInfo()
        now = time.monotonic()
        if self._redirect is not None:
            self._answer_redirect(call, info, now)
            return
        if self._stopping.is_set() or self.active_calls >= self.capacity:
            prm = pj.CallOpParam()
            prm.statusCode = 486 if not self._stopping.is_set() else 503
            call.answer(prm)
            self._refused.append(call)
            self._emit(
                CallRefused(
                    info.callIdString,
                    info.remoteUri,
                    prm.statusCode,
                    "Busy Here" if prm.statusCode == 486 else "Service Unavailable",
                    now,
                )
            )
            return
        rec.call = call
        self._calls[rec.key] = rec
        self._emit(CallOffered(rec.key, "inbound", info.callIdString, info.remoteUri, info.localUri, now))
        self._answer(rec, 180)
        rec.answer_at = now + s.answer_delay_s

    def _answer_redirect(self, call: _Call, info: Any, now: float) -> None:
        target = None if self._stopping.is_set() else self._redirect() if self._redirect else None
        prm = pj.CallOpParam()
        prm.statusCode = 302 if target else 486
        if target:
            contact = pj.SipHeader()
            contact.hName = "Contact"
            contact.hValue = f"<{target}>"
            prm.txOption.headers.append(contact)
        call.answer(prm)
        self._refused.append(call)
        reason = f"Moved Temporarily to {target}" if target else "Busy Here"
        self._emit(CallRefused(info.callIdString, info.remoteUri, prm.statusCode, reason, now))

    def _answer(self, rec: _CallRecord, status: int) -> None:
        prm = pj.CallOpParam()
        prm.statusCode = status
        rec.call.answer(prm)

    def _make_call(self, key: int, uri: str, ring_timeout_s: float, use_trunk: bool) -> None:
        rec = _CallRecord(key, "outbound")
        account = self._trunk_account if (use_trunk and self._trunk_account) else self._account
        call = _Call(self, rec, account, pj.PJSUA_INVALID_ID)
        rec.call = call
        self._calls[key] = rec
        now = time.monotonic()
        rec.ring_deadline = now + ring_timeout_s
        try:
            call.makeCall(uri, pj.CallOpParam(True))
        except Exception as exc:
            rec.ended = True
            log_event(
                "sip.call_failed", logging.WARNING, _log, call=key, uri=mask_number(uri), error=_pj_error(exc)
            )
            self._emit(
                CallEnded(key, 0, f"cannot place call: {_pj_error(exc)}", False, 0.0, False, "local", now)
            )
            return
        info = call.getInfo()
        self._emit(CallOffered(key, "outbound", info.callIdString, info.remoteUri, info.localUri, now))

    def _hangup(self, key: int, status: int) -> None:
        rec = self._calls.get(key)
        if rec is None or rec.ended or rec.call is None:
            return
        rec.local_hangup = True
        rec.bridge.close()
        prm = pj.CallOpParam()
        if status:
            prm.statusCode = status
        try:
            rec.call.hangup(prm)
        except Exception as exc:  # already disconnecting
            log_event("sip.hangup_failed", logging.DEBUG, _log, call=key, error=_pj_error(exc))

    def _on_call_state(self, call: _Call) -> None:
        rec = call.record
        if rec.ended or rec.key not in self._calls:
            return
        info = call.getInfo()
        now = time.monotonic()
        if info.state == pj.PJSIP_INV_STATE_EARLY and rec.direction == "outbound":
            self._emit(CallProgress(rec.key, int(info.lastStatusCode), now))
        elif info.state == pj.PJSIP_INV_STATE_CONFIRMED and rec.connected_at is None:
            rec.connected_at = now
            rec.ring_deadline = None
            self._ensure_port(call)
            codec = self._codec_name(call)
            self._emit(CallConnected(rec.key, rec.bridge, codec, now))
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            rec.ended = True
            rec.bridge.close()
            connected_s = (now - rec.connected_at) if rec.connected_at is not None else 0.0
            self._emit(
                CallEnded(
                    rec.key,
                    int(info.lastStatusCode),
                    str(info.lastReason),
                    rec.connected_at is not None,
                    connected_s,
                    rec.ring_timed_out,
                    "local" if rec.local_hangup else "remote",
                    now,
                )
            )

    def _on_media_state(self, call: _Call) -> None:
        if call.record.connected_at is not None:
            self._ensure_port(call)  # re-INVITE: reconnect to the new stream

    def _ensure_port(self, call: _Call) -> None:
        rec = call.record
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

    @staticmethod
    def _codec_name(call: _Call) -> str:
        # Hold the CallInfo: iterating a temporary's SWIG vector reads freed memory.
        info = call.getInfo()
        try:
            for media in info.media:
                if media.type == pj.PJMEDIA_TYPE_AUDIO:
                    return str(call.getStreamInfo(media.index).codecName)
        except Exception:  # stream info is informational only
            return "unknown"
        return "unknown"


def _is_active(call: Any) -> bool:
    try:
        return bool(call.isActive())
    except Exception:
        return False


def _pj_error(exc: BaseException) -> str:
    info = getattr(exc, "info", None)
    if callable(info):
        try:
            return str(info())
        except Exception:  # pragma: no cover
            return repr(exc)
    return str(exc)
