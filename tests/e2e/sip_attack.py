"""How the robustness tests describe a hostile message: an :class:`Attack` is a name, a
:data:`Build` that makes its bytes, and an :class:`Expect` saying what the engine may answer.
The builders here make INVITEs with a chosen SDP, raw templates and fixed datagrams; the
catalogues of attacks are ``hostile_sip`` and ``rfc4475_cases``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tests.e2e.raw_sip import LOOPBACK, Leg, SipMessage, sdp_offer, token

Build = Callable[[Leg, int], bytes]
"""Makes an attack's bytes from the sending leg and the RTP port its SDP may name."""

Body = Callable[[int], str]
"""Makes a message body from the RTP port it may name."""


@dataclass(frozen=True)
class Expect:
    """What the engine may answer: finals among ``finals`` (any when ``None``); ``required``:
    staying silent is wrong too."""

    finals: frozenset[int] | None
    required: bool
    meaning: str

    def problem(self, finals: list[SipMessage]) -> str | None:
        """Why these final responses break the expectation, or ``None``."""
        codes = [m.status for m in finals]
        if self.required and not codes:
            return f"no final response (expected {self.meaning})"
        if self.finals is not None and any(code not in self.finals for code in codes):
            return f"answered {codes} (expected {self.meaning})"
        return None


REFUSED = Expect(frozenset({488}), True, "488 Not Acceptable Here")
# pjsua answers 400 itself, before the engine sees the call, to an offer it cannot parse or that
# has no media at all (pjsua_call.c); either refusal is right.
REFUSED_400_OR_488 = Expect(frozenset({400, 488}), True, "400 or 488: an offer pjsua cannot use")
HANDLED = Expect(None, True, "some final response: the message is valid")
DROPPED_OR_400 = Expect(frozenset({400}), False, "no response or 400 Bad Request")
DROPPED_OR_REJECTED = Expect(frozenset(range(400, 700)), False, "no response or a 4xx-6xx rejection")
SILENCE = Expect(frozenset(), False, "no response at all")
ANYTHING = Expect(None, False, "any answer, or none")


@dataclass(frozen=True)
class Attack:
    name: str
    build: Build
    expect: Expect


def invite(body: Body, omit: tuple[str, ...] = ()) -> Build:
    """An INVITE from the leg carrying ``body(rtp_port)``, without the headers in ``omit``."""

    def build(leg: Leg, rtp_port: int) -> bytes:
        return leg.request("INVITE", body(rtp_port), omit=omit)

    return build


def offer(connection: str = "IN IP4 127.0.0.1", media: str | None = None) -> Body:
    def body(rtp_port: int) -> str:
        return sdp_offer(rtp_port, connection, media.format(rtp=rtp_port) if media else None)

    return body


def text(body: str) -> Body:
    def make(rtp_port: int) -> str:
        return body.format(rtp=rtp_port)

    return make


def good_sdp(rtp_port: int) -> str:
    return sdp_offer(rtp_port)


def no_body(_rtp_port: int) -> str:
    return ""


def raw(template: str, body: Body = no_body) -> Build:
    """Bytes from a template (``\\n`` becomes CRLF) with the leg's addresses filled in.

    Placeholders: ``{ruri}`` the engine's URI, ``{host}`` its host:port, ``{me}`` our
    host:port, ``{tp}`` UDP/TCP, ``{via}`` a proper top Via, ``{cid}``, ``{tag}``, ``{tok}`` a
    fresh token, ``{len}`` the body's length.
    """

    def build(leg: Leg, rtp_port: int) -> bytes:
        payload = body(rtp_port).encode()
        head = template.format(
            ruri=leg.request_uri,
            host=f"{LOOPBACK}:{leg.remote_port}",
            me=f"{LOOPBACK}:{leg.local_port}",
            tp=leg.transport,
            via=leg.via(),
            cid=leg.call_id,
            tag=leg.from_tag,
            tok=token(),
            len=len(payload),
        )
        return head.replace("\n", "\r\n").encode() + payload

    return build


def datagram(data: bytes) -> Build:
    def build(_leg: Leg, _rtp_port: int) -> bytes:
        return data

    return build
