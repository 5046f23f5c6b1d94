"""The hostile messages the robustness tests throw at ``serve``, and what each may be answered.

Offers the engine must refuse (488 Not Acceptable Here) and malformed packets it may drop or
reject; the RFC 4475 torture messages are in ``rfc4475_cases``, the builders in ``sip_attack``.
They are written for this engine: every address a reply could go to is 127.0.0.1, so a message
only ever names a foreign host inside an SDP body or a header nobody routes on.
"""

from __future__ import annotations

import random

from tests.e2e.raw_sip import Leg, sdp_offer
from tests.e2e.sip_attack import (
    ANYTHING,
    DROPPED_OR_400,
    DROPPED_OR_REJECTED,
    REFUSED,
    REFUSED_400_OR_488,
    SILENCE,
    Attack,
    datagram,
    good_sdp,
    invite,
    offer,
    raw,
    text,
)


def truncated(leg: Leg, rtp_port: int) -> bytes:
    whole = leg.request("INVITE", sdp_offer(rtp_port))
    return whole[: whole.index(b"CSeq:") + 8]  # cut inside the headers


def longer_than_sent(leg: Leg, rtp_port: int) -> bytes:
    body = sdp_offer(rtp_port)
    whole = leg.request("INVITE", body)
    return whole.replace(
        f"Content-Length: {len(body)}".encode(), f"Content-Length: {len(body) + 500}".encode()
    )


def huge_header(leg: Leg, rtp_port: int) -> bytes:
    return leg.request("INVITE", sdp_offer(rtp_port), extra=["X-Huge: " + "a" * 60_000])


_NOISE = random.Random(4475)

# -- offers that must be refused ------------------------------------------------------------

BAD_OFFERS = [
    Attack("c=IN IP4 999.1.1.1", invite(offer("IN IP4 999.1.1.1")), REFUSED),
    Attack("c=IN IP6 zz::zz::1", invite(offer("IN IP6 zz::zz::1")), REFUSED),
    Attack("video only, no m=audio", invite(offer(media="video {rtp} RTP/AVP 31")), REFUSED),
    Attack(
        "no m= line at all",
        invite(text("v=0\r\no=torture 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n")),
        REFUSED_400_OR_488,
    ),
    Attack(
        "only opus (payload 99)",
        invite(
            text(
                "v=0\r\no=torture 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                "m=audio {rtp} RTP/AVP 99\r\na=rtpmap:99 opus/48000/2\r\n"
            )
        ),
        REFUSED,
    ),
    Attack(
        "garbage SDP body",
        invite(text("this is not a session description\r\n\x01\x02\x7f]]>{{}}\r\nm=\r\nc=IN\r\n")),
        REFUSED_400_OR_488,
    ),
]

# Media addresses that are neither the signalling source (127.0.0.1) nor in an allowed network.
# All from documentation ranges (RFC 5737, RFC 3849, RFC 5771) rather than a real public host
# such as 8.8.8.8: should the engine regress and accept one, the RTP it sends before the test
# hangs up reaches nobody. The tests themselves never send anything to these addresses.
FOREIGN_MEDIA = [
    Attack("c=IN IP4 198.51.100.20 (foreign)", invite(offer("IN IP4 198.51.100.20")), REFUSED),
    Attack("c=IN IP6 2001:db8::7 (foreign)", invite(offer("IN IP6 2001:db8::7")), REFUSED),
    Attack(
        "c=IN IP4 233.252.0.1/127 (multicast)", invite(offer("IN IP4 233.252.0.1/127")), REFUSED_400_OR_488
    ),
    Attack(
        "media-level c= foreign, session c= loopback",
        invite(
            text(
                "v=0\r\no=torture 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                "m=audio {rtp} RTP/AVP 0\r\nc=IN IP4 203.0.113.9\r\na=rtpmap:0 PCMU/8000\r\n"
            )
        ),
        REFUSED,
    ),
]

# -- malformed packets -----------------------------------------------------------------------

MALFORMED = [
    # RFC 3261 18.3: a datagram that ends before its Content-Length says is an error (400).
    Attack("Content-Length larger than the body", longer_than_sent, DROPPED_OR_REJECTED),
    Attack("message truncated inside its headers", truncated, DROPPED_OR_REJECTED),
    # Legal but huge: taking it, 513 Message Too Large and dropping it are all fine.
    Attack("60 KB header", huge_header, ANYTHING),
    Attack("binary garbage", datagram(_NOISE.randbytes(1400)), SILENCE),
    Attack("NUL bytes", datagram(bytes(1024)), SILENCE),
    Attack(
        "garbage after a request line",
        datagram(b"INVITE sip:x SIP/2.0\r\n" + _NOISE.randbytes(600)),
        DROPPED_OR_400,
    ),
    Attack("CRLF keep-alives only", datagram(b"\r\n\r\n"), SILENCE),
    Attack("missing Call-ID", invite(good_sdp, omit=("Call-ID",)), DROPPED_OR_400),
    Attack("missing CSeq", invite(good_sdp, omit=("CSeq",)), DROPPED_OR_400),
    Attack("missing Via", invite(good_sdp, omit=("Via",)), DROPPED_OR_400),
    Attack("missing From and To", invite(good_sdp, omit=("From", "To")), DROPPED_OR_400),
    Attack(
        "stray 200 OK for no transaction",
        raw(
            "SIP/2.0 200 OK\nVia: {via}\nFrom: <sip:ivr@{host}>;tag={tag}\nTo: <sip:x@{me}>;tag=zz\n"
            "Call-ID: {cid}\nCSeq: 1 INVITE\nContent-Length: 0\n\n"
        ),
        SILENCE,
    ),
]


# Sent over TCP as well: the stream transport frames messages by Content-Length, a different
# parser path from UDP's one-message-per-datagram.
OVER_TCP = {
    "c=IN IP4 999.1.1.1",
    "c=IN IP6 zz::zz::1",
    "garbage SDP body",
    "c=IN IP4 198.51.100.20 (foreign)",
    "Content-Length larger than the body",
    "60 KB header",
    "binary garbage",
    "wsinv: a short tortuous INVITE",
    "ncl: negative Content-Length",
    "multi01: two Call-IDs, Tos, Froms and CSeqs",
    "mcl01: conflicting Content-Lengths",
}
