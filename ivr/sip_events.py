"""What the SIP user agent tells the asyncio side: one small vocabulary of call events.

Times are ``time.monotonic()`` seconds taken on the pjsua2 thread when the event happened,
so the recorder and the flow see when things occurred, not when the loop got round to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ivr.media_bridge import MediaBridge

Direction = Literal["inbound", "outbound"]


@dataclass(frozen=True)
class CallOffered:
    """An INVITE arrived and is being answered (or a placed call started ringing out)."""

    call_key: int
    direction: Direction
    sip_call_id: str
    remote_uri: str
    local_uri: str
    at: float


@dataclass(frozen=True)
class CallRefused:
    """An INVITE was answered with an error (e.g. 486 Busy Here at the concurrency limit)."""

    sip_call_id: str
    remote_uri: str
    status_code: int
    reason: str
    at: float


@dataclass(frozen=True)
class CallConnected:
    """The call is confirmed (ACK seen) and media flows through ``bridge``."""

    call_key: int
    bridge: MediaBridge
    codec: str
    at: float


@dataclass(frozen=True)
class DtmfReceived:
    """A digit from RFC 2833 telephone-events (or SIP INFO)."""

    call_key: int
    digit: str
    method: str
    at: float


@dataclass(frozen=True)
class CallEnded:
    """The call is over. ``status_code`` is the last SIP status (e.g. 200, 486, 408)."""

    call_key: int
    status_code: int
    reason: str
    connected: bool
    connected_s: float
    ring_timed_out: bool
    hung_up_by: Literal["local", "remote"]
    at: float


SipEvent = CallOffered | CallRefused | CallConnected | DtmfReceived | CallEnded
