"""pjsua2's Call and Account subclasses, and the record the agent keeps for each call.

Every pjsua2 callback lands in :func:`guarded`: an exception escaping a SWIG director method
becomes a C++ exception inside pjsua, which aborts the process and drops every call in it. A
failure in one call's callback ends that call (the agent's ``on_callback_error``), never the
process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

from config.logs import log_event
from ivr.admission import Refusal
from ivr.media_bridge import MediaBridge
from ivr.sip_events import Direction, DtmfReceived

if TYPE_CHECKING:
    from ivr.sip_agent import SipAgent

_log = logging.getLogger("ivr.sip")
_DTMF_METHODS = {pj.PJSUA_DTMF_METHOD_RFC2833: "rfc2833", pj.PJSUA_DTMF_METHOD_SIP_INFO: "sip_info"}


@dataclass
class CallRecord:
    """What the agent knows of one call; lives exactly as long as pjsua's call slot."""

    key: int
    direction: Direction
    call: Any = None
    port: Any = None
    """The call's conference port: a RingMediaPort or a :class:`~ivr.bridge_port.BridgePort`."""
    bridge: MediaBridge = field(default_factory=MediaBridge)
    refused: bool = False
    """Answered with a final error (403/486/488/503/302): held only until pjsua lets go."""
    offered_at: float = 0.0
    connected_at: float | None = None
    ring_deadline: float | None = None
    ring_timed_out: bool = False
    local_hangup: bool = False
    answer_at: float | None = None
    ended: bool = False


def pj_error(exc: BaseException) -> str:
    """The reason text of a ``pjsua2.Error`` (or any exception)."""
    info = getattr(exc, "info", None)
    if callable(info):
        try:
            return str(info())
        except Exception:  # pragma: no cover - a broken error object
            return repr(exc)
    return str(exc)


def guarded(what: str, record: CallRecord | None, on_error: Callable[[CallRecord], None]) -> Any:
    """Context manager for a callback body: log, end the one call, swallow."""
    return _Guard(what, record, on_error)


class _Guard:
    __slots__ = ("on_error", "record", "what")

    def __init__(self, what: str, record: CallRecord | None, on_error: Callable[[CallRecord], None]) -> None:
        self.what = what
        self.record = record
        self.on_error = on_error

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        log_event(
            "sip.callback_failed",
            logging.ERROR,
            _log,
            callback=self.what,
            call=self.record.key if self.record else None,
            error=f"{type(exc).__name__}: {pj_error(exc)}",
        )
        if self.record is not None:
            try:
                self.on_error(self.record)
            except Exception as second:  # the clean-up itself failed: still never raise
                log_event("sip.cleanup_failed", logging.ERROR, _log, call=self.record.key, error=repr(second))
        return True


class PjCall(pj.Call):  # type: ignore[misc]
    """One pjsua call; forwards its callbacks to the agent, never raising into pjsua."""

    def __init__(self, agent: SipAgent, record: CallRecord, account: Any, call_id: int) -> None:
        super().__init__(account, call_id)
        self._agent = agent
        self.record: CallRecord | None = record

    def onCallState(self, prm: Any) -> None:
        with guarded("onCallState", self.record, self._agent.fail_call):
            self._agent.on_call_state(self)

    def onCallMediaState(self, prm: Any) -> None:
        with guarded("onCallMediaState", self.record, self._agent.fail_call):
            self._agent.on_media_state(self)

    def onDtmfDigit(self, prm: Any) -> None:
        rec = self.record
        if rec is None:
            return
        with guarded("onDtmfDigit", rec, self._agent.fail_call):
            self._agent.emit(
                DtmfReceived(
                    rec.key,
                    str(prm.digit),
                    _DTMF_METHODS.get(prm.method, "other"),
                    time.monotonic(),
                )
            )

    def onCallTransferRequest(self, prm: Any) -> None:
        # A caller's REFER would make the engine dial any URI it names (toll fraud): transfers
        # are only ever started by the flow (ivr.transfer), so a REFER is declined.
        with guarded("onCallTransferRequest", self.record, self._agent.fail_call):
            prm.statusCode = 603
            log_event(
                "sip.refer_declined", logging.WARNING, _log, call=self.record.key if self.record else None
            )

    def onCallReplaceRequest(self, prm: Any) -> None:
        # INVITE with Replaces would let a third party take over a live call.
        with guarded("onCallReplaceRequest", self.record, self._agent.fail_call):
            prm.statusCode = 603
            prm.reason = "Decline"


class PjAccount(pj.Account):  # type: ignore[misc]
    """The local identity calls arrive on (and are placed from)."""

    def __init__(self, agent: SipAgent) -> None:
        super().__init__()
        self._agent = agent

    def onIncomingCall(self, prm: Any) -> None:
        with guarded("onIncomingCall", None, self._agent.fail_call):
            self._agent.on_incoming(self, prm)

    def onIncomingSubscribe(self, prm: Any) -> None:
        # The engine keeps no presence: refuse subscriptions instead of accepting them with 200.
        with guarded("onIncomingSubscribe", None, self._agent.fail_call):
            prm.code = 489
            prm.reason = "Bad Event"


def source_ip(src_address: str) -> str:
    """The IP of pjsua's ``srcAddress`` ("1.2.3.4:5060" or "[::1]:5060")."""
    text = src_address.strip()
    if text.startswith("["):
        return text[1 : text.find("]")] if "]" in text else text[1:]
    if text.count(":") == 1:
        return text.rsplit(":", 1)[0]
    return text


def refusal_param(refusal: Refusal) -> Any:
    """The ``CallOpParam`` of a final error response, with Retry-After, Warning and Contact."""
    prm = pj.CallOpParam()
    prm.statusCode = refusal.status
    prm.reason = refusal.reason
    headers: list[tuple[str, str]] = []
    if refusal.retry_after_s is not None:
        headers.append(("Retry-After", str(refusal.retry_after_s)))
    if refusal.warning is not None:
        code, text = refusal.warning
        text = text.replace("\\", "").replace('"', "'")
        headers.append(("Warning", f'{code} ivr-engine "{text}"'))
    if refusal.contact is not None:
        headers.append(("Contact", f"<{refusal.contact}>"))
    for name, value in headers:
        header = pj.SipHeader()
        header.hName = name
        header.hValue = value
        prm.txOption.headers.append(header)
    return prm


def codec_name(call: Any) -> str:
    """The negotiated audio codec, for logs and the recording's tags."""
    info = call.getInfo()  # hold the CallInfo: iterating a temporary's SWIG vector reads freed memory
    try:
        for media in info.media:
            if media.type == pj.PJMEDIA_TYPE_AUDIO:
                return str(call.getStreamInfo(media.index).codecName)
    except Exception:  # stream info is informational only
        return "unknown"
    return "unknown"


def is_active(call: Any) -> bool:
    try:
        return bool(call.isActive())
    except Exception:
        return False
