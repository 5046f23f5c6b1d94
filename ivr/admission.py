"""Whether a new INVITE is served, and if not, which final response it gets.

Pure policy over plain data, fed ``now``: the SIP agent asks :meth:`Admission.decide` for every
INVITE before it touches the call, so a flood, a stranger or an overloaded process gets an
immediate, polite final response (RFC 3261 section 21; RFC 3261 20.33 for Retry-After) instead of
silence or a crash. Order matters: who may call at all (403) before how busy we are (503/486).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from config.settings import SipSettings
from ivr.networks import in_networks, parse_networks
from ivr.sdp_offer import check_offer, sdp_body
from ivr.sip_message_check import request_problem

_MAX_TRACKED_SOURCES = 4096


@dataclass(frozen=True, slots=True)
class Refusal:
    """A final response for an INVITE the engine will not serve."""

    status: int
    reason: str
    retry_after_s: int | None = None
    warning: tuple[int, str] | None = None
    """RFC 3261 Warning (code, text): why an offer was not acceptable."""
    contact: str | None = None
    """Where a 3xx sends the caller."""


@dataclass(frozen=True, slots=True)
class Load:
    """What the agent holds right now."""

    active_calls: int
    """Calls offered and not yet ended (pending ones included)."""
    pending_invites: int
    """Calls answered (or ringing) but not yet confirmed by ACK."""
    capacity: int
    draining: bool = False


class _TokenBucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens = tokens
        self.updated = now


class Admission:
    """Access control, per-source rate limit and overload control for inbound INVITEs."""

    def __init__(self, settings: SipSettings) -> None:
        self._allowed = parse_networks(settings.allowed_networks)
        self._rate = settings.invites_per_source_per_s
        self._burst = float(settings.invite_burst_per_source)
        self._max_pending = settings.max_pending_invites
        self._retry_after = settings.retry_after_s
        self._media_networks = settings.media_networks
        self._codecs = settings.codecs
        self._buckets: OrderedDict[str, _TokenBucket] = OrderedDict()

    def decide(self, source_ip: str, load: Load, now: float) -> Refusal | None:
        """None to serve the INVITE, else the refusal to answer with."""
        if self._allowed and not in_networks(source_ip, self._allowed):
            return Refusal(403, "Forbidden")
        if load.draining:
            return Refusal(503, "Service Unavailable", self._retry_after)
        if not self._take_token(source_ip, now):
            return Refusal(503, "Service Unavailable", self._retry_after)
        if load.active_calls >= load.capacity:
            return Refusal(486, "Busy Here")
        if load.pending_invites >= self._max_pending:
            return Refusal(503, "Service Unavailable", self._retry_after)
        return None

    def decide_invite(self, source_ip: str, message: str, load: Load, now: float) -> Refusal | None:
        """:meth:`decide`, then the SDP offer of the whole INVITE ``message`` (488 if unusable)."""
        refusal = self.decide(source_ip, load, now)
        if refusal is not None:
            return refusal
        malformed = request_problem(message)
        if malformed is not None:
            return Refusal(400, "Bad Request", warning=(399, malformed))
        body = sdp_body(message)
        if body is None:
            return None  # a late offer: pjsua offers in the 200 and the ACK answers
        problem = check_offer(body, source_ip, self._media_networks, self._codecs)
        if problem is None:
            return None
        return Refusal(488, "Not Acceptable Here", warning=(problem.warn_code, problem.text))

    def _take_token(self, source: str, now: float) -> bool:
        bucket = self._buckets.get(source)
        if bucket is None:
            bucket = _TokenBucket(self._burst, now)
            self._buckets[source] = bucket
            if len(self._buckets) > _MAX_TRACKED_SOURCES:  # a spoofed-source flood must not grow memory
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(source)
            bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
            bucket.updated = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True
