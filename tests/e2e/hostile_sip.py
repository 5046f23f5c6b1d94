"""The hostile messages the robustness tests throw at ``serve``, and what each may be answered.

Offers the engine must refuse (488 Not Acceptable Here), malformed packets it may drop or
reject, and messages in the spirit of RFC 4475 (SIP torture tests), sections 3.1.1
(valid but tortuous: must be handled) and 3.1.2/3.3 (invalid: dropped or rejected, never
accepted). They are written for this engine: every address a reply could go to is 127.0.0.1,
so a message only ever names a foreign host inside an SDP body or a header nobody routes on.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from tests.e2e.raw_sip import LOOPBACK, Leg, SipMessage, sdp_offer, token

Build = Callable[[Leg, int], bytes]
"""Makes an attack's bytes from the sending leg and the RTP port its SDP may name."""


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


def invite(body: Callable[[int], str], omit: tuple[str, ...] = ()) -> Build:
    """An INVITE from the leg carrying ``body(rtp_port)``, without the headers in ``omit``."""

    def build(leg: Leg, rtp_port: int) -> bytes:
        return leg.request("INVITE", body(rtp_port), omit=omit)

    return build


def offer(connection: str = "IN IP4 127.0.0.1", media: str | None = None) -> Callable[[int], str]:
    def body(rtp_port: int) -> str:
        return sdp_offer(rtp_port, connection, media.format(rtp=rtp_port) if media else None)

    return body


def text(body: str) -> Callable[[int], str]:
    def make(rtp_port: int) -> str:
        return body.format(rtp=rtp_port)

    return make


def good_sdp(rtp_port: int) -> str:
    return sdp_offer(rtp_port)


def no_body(_rtp_port: int) -> str:
    return ""


def raw(template: str, body: Callable[[int], str] = no_body) -> Build:
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

# -- RFC 4475-style torture messages -----------------------------------------------------------

_COMMON = "Max-Forwards: 70\nCall-ID: {cid}\nContact: <sip:torture@{me}>\n"

# Valid but tortuous messages (RFC 4475 3.1.1, 3.3, 3.4): each must be handled.
TORTURE_VALID = [
    # 3.1.1.1 wsinv: odd case, whitespace around every separator, folded lines, compact forms.
    Attack(
        "wsinv: a short tortuous INVITE",
        raw(
            "INVITE {ruri};unknownparam SIP/2.0\n"
            "TO :\n sip:ivr@{host}\n"
            'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@{me}>\n  ;\n  tag = 98asjd8\n'
            "MaX-fOrWaRdS: 0068\n"
            "Call-ID: {cid}\n"
            "Content-Length   : {len}\n"
            "cseq: 0009\n  INVITE\n"
            "Via  : SIP  /   2.0\n /{tp}\n    {me};rport;branch=z9hG4bK390skdjuw{tok}\n"
            "s :\n"
            "NewFangledHeader:   newfangled value\n continued newfangled value\n"
            "UnknownHeaderWithUnusualValue: ;;,,;;,;\n"
            "Content-Type: application/sdp\n"
            'm:"Quoted string \\"\\"" <sip:jdrosen@{me}> ; newparam =\n      newvalue ;\n'
            "  secondparam ; q = 0.33\n\n",
            good_sdp,
        ),
        HANDLED,
    ),
    # 3.1.1.2 intmeth: a method made of every token character the grammar allows.
    Attack(
        "intmeth: unknown method of unusual tokens",
        raw(
            "!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
            ":&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@{host} SIP/2.0\n"
            "Via: {via}\nTo: <sip:ivr@{host}>\nFrom: <sip:torture@{me}>;tag={tag}\n"
            + _COMMON
            + "CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~\nContent-Length: 0\n\n"
        ),
        ANYTHING,
    ),
    # 3.1.1.3 esc01: escapes in the Request-URI and the From user part.
    Attack(
        "esc01: escaped characters in URIs",
        raw(
            "INVITE sip:sips%3Auser%40example.com@{host} SIP/2.0\n"
            "Via: {via}\nTo: <sip:sips%3Auser%40example.com@{host}>\n"
            'From: "%5C%22" <sip:I%20have%20spaces@{me}>;tag={tag}\n'
            + _COMMON
            + "CSeq: 1 INVITE\nContent-Type: application/sdp\nContent-Length: {len}\n\n",
            good_sdp,
        ),
        HANDLED,
    ),
    # 3.1.1.4 escnull: an escaped NUL in a URI.
    Attack(
        "escnull: %00 in URIs",
        raw(
            "OPTIONS sip:null-%00-null@{host} SIP/2.0\nVia: {via}\n"
            "To: <sip:null-%00-null@{host}>\nFrom: <sip:null-%00-null@{me}>;tag={tag}\n"
            + _COMMON
            + "CSeq: 1 OPTIONS\nContent-Length: 0\n\n"
        ),
        HANDLED,
    ),
    # 3.1.1.5 esc02: % that is not an escape, in a method name and a display name.
    Attack(
        "esc02: % where it is no escape",
        raw(
            "RE%47IST%45R sip:ivr@{host} SIP/2.0\nVia: {via}\n"
            'To: "%Z%45" <sip:ivr@{host}>\nFrom: "%Z%45" <sip:torture@{me}>;tag={tag}\n'
            + _COMMON
            + "CSeq: 1 RE%47IST%45R\nContent-Length: 0\n\n"
        ),
        ANYTHING,
    ),
    # 3.1.1.6 lwsdisp: no space between a display name and its <.
    Attack(
        "lwsdisp: display name touching <",
        raw(
            "OPTIONS {ruri} SIP/2.0\nVia: {via}\nTo: ivr<{ruri}>\nFrom: caller<sip:torture@{me}>;tag={tag}\n"
            + _COMMON
            + "CSeq: 1 OPTIONS\nContent-Length: 0\n\n"
        ),
        HANDLED,
    ),
    # 3.1.1.7 longreq: long values everywhere (kept under the 4 KB pjsip reads per datagram).
    Attack(
        "longreq: long header values",
        raw(
            "INVITE sip:" + "u" * 300 + "@{host} SIP/2.0\nVia: {via}\n"
            "To: <sip:" + "u" * 300 + "@{host}>\n"
            'From: "'
            + "d" * 200
            + '" <sip:torture@{me}>;tag={tag};'
            + "p" * 100
            + "="
            + "v" * 100
            + "\n"
            + _COMMON
            + "CSeq: 1 INVITE\nX-Long: "
            + "x" * 1200
            + "\nContent-Type: application/sdp\n"
            "Content-Length: {len}\n\n",
            good_sdp,
        ),
        HANDLED,
    ),
    # 3.1.1.8 dblreq: a second request trailing in the same datagram.
    Attack(
        "dblreq: two requests in one datagram",
        raw(
            "OPTIONS {ruri} SIP/2.0\nVia: {via}\nTo: <{ruri}>\nFrom: <sip:torture@{me}>;tag={tag}\n"
            + _COMMON
            + "CSeq: 1 OPTIONS\nContent-Length: 0\n\n"
            "INVITE {ruri} SIP/2.0\nVia: SIP/2.0/{tp} {me};branch=z9hG4bK{tok};rport\nTo: <{ruri}>\n"
            "From: <sip:torture@{me}>;tag={tag}\nMax-Forwards: 70\nCall-ID: {cid}-trailing\n"
            "Contact: <sip:torture@{me}>\nCSeq: 1 INVITE\nContent-Type: application/sdp\n"
            "Content-Length: {len}\n\n",
            good_sdp,
        ),
        ANYTHING,
    ),
    # 3.1.1.9 semiuri: a semicolon inside the user part.
    Attack(
        "semiuri: ; in the user part",
        raw(
            "OPTIONS sip:user;par=u%40example.net@{host} SIP/2.0\nVia: {via}\n"
            "To: <sip:user;par=u%40example.net@{host}>\nFrom: <sip:torture@{me}>;tag={tag}\n"
            + _COMMON
            + "CSeq: 1 OPTIONS\nContent-Length: 0\n\n"
        ),
        HANDLED,
    ),
    # 3.1.1.10 transports: unknown transports in the lower Vias.
    Attack(
        "transports: unknown Via transports",
        raw(
            "OPTIONS {ruri} SIP/2.0\nVia: {via}\n"
            "Via: SIP/2.0/SCTP t1.example.invalid;branch=z9hG4bKsctp\n"
            "Via: SIP/2.0/TLS t2.example.invalid;branch=z9hG4bKtls\n"
            "Via: SIP/2.0/UNKNOWN t3.example.invalid;branch=z9hG4bKunknown\n"
            "To: <{ruri}>\nFrom: <sip:torture@{me}>;tag={tag}\n"
            + _COMMON
            + "CSeq: 1 OPTIONS\nContent-Length: 0\n\n"
        ),
        HANDLED,
    ),
    # 3.1.1.11 mpart01: the offer inside a multipart/mixed body.
    Attack(
        "mpart01: SDP in a multipart body",
        raw(
            "INVITE {ruri} SIP/2.0\nVia: {via}\nTo: <{ruri}>\nFrom: <sip:torture@{me}>;tag={tag}\n"
            + _COMMON
            + 'CSeq: 1 INVITE\nContent-Type: multipart/mixed;boundary="7a9cbec02ceef655"\n'
            "MIME-Version: 1.0\nContent-Length: {len}\n\n",
            text(
                "--7a9cbec02ceef655\r\nContent-Type: application/sdp\r\n\r\n"
                "v=0\r\no=torture 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                "m=audio {rtp} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n\r\n"
                "--7a9cbec02ceef655\r\nContent-Type: text/plain\r\n\r\nnot for you\r\n"
                "--7a9cbec02ceef655--\r\n"
            ),
        ),
        HANDLED,
    ),
    # 3.3.3 novelsc / 3.3.4 unksm2: URI schemes nobody knows.
    Attack(
        "novelsc: unknown Request-URI scheme",
        raw(
            "OPTIONS soap.beep://{host}/ivr SIP/2.0\nVia: {via}\nTo: <soap.beep://{host}/ivr>\n"
            "From: <sip:torture@{me}>;tag={tag}\n" + _COMMON + "CSeq: 1 OPTIONS\nContent-Length: 0\n\n"
        ),
        ANYTHING,
    ),
    Attack(
        "unksm2: unknown schemes in To and From",
        raw(
            "OPTIONS {ruri} SIP/2.0\nVia: {via}\nTo: isbn:2983792873\nFrom: <http://www.example.com>;tag={tag}\n"
            + _COMMON
            + "CSeq: 1 OPTIONS\nContent-Length: 0\n\n"
        ),
        ANYTHING,
    ),
    # 3.4.1 inv2543: an RFC 2543 INVITE (no branch magic cookie, no rport).
    Attack(
        "inv2543: RFC 2543 INVITE",
        raw(
            "INVITE {ruri} SIP/2.0\nVia: SIP/2.0/{tp} {me}\nTo: <{ruri}>\n"
            "From: <sip:torture@{me}>;tag={tag}\n"
            + _COMMON
            + "CSeq: 1 INVITE\nContent-Type: application/sdp\nContent-Length: {len}\n\n",
            good_sdp,
        ),
        HANDLED,
    ),
    # 3.3.11 zeromf: Max-Forwards 0 reaching the UAS it was meant for.
    Attack(
        "zeromf: Max-Forwards 0",
        raw(
            "OPTIONS {ruri} SIP/2.0\nVia: {via}\nTo: <{ruri}>\nFrom: <sip:torture@{me}>;tag={tag}\n"
            "Max-Forwards: 0\nCall-ID: {cid}\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n"
        ),
        HANDLED,
    ),
]

# Invalid messages (RFC 4475 3.1.2 and 3.3): to be dropped or rejected, never accepted (a
# request whose framing or identity is ambiguous must not set up a call), unless RFC 4475
# says a liberal reading is fine.
TORTURE_INVALID = [
    # 3.1.2.1 badinv01: stray separators in headers.
    Attack(
        "badinv01: extraneous separators",
        raw(
            "INVITE {ruri} SIP/2.0\nVia: {via}\nTo: <{ruri}>;;,;\nFrom: <sip:torture@{me}>;tag={tag};;;;,;\n"
            "Max-Forwards: 70\nCall-ID: {cid}\nCSeq: 1 INVITE\nContact: ;;;<sip:torture@{me}>;;;,,,\n"
            "Content-Type: application/sdp\nContent-Length: {len}\n\n",
            good_sdp,
        ),
        DROPPED_OR_REJECTED,
    ),
    # 3.1.2.3 ncl: a negative Content-Length.
    Attack(
        "ncl: negative Content-Length",
        raw(
            "INVITE {ruri} SIP/2.0\nVia: {via}\nTo: <{ruri}>\nFrom: <sip:torture@{me}>;tag={tag}\n"
            + _COMMON
            + "CSeq: 1 INVITE\nContent-Type: application/sdp\nContent-Length: -999\n\n",
            good_sdp,
        ),
        DROPPED_OR_REJECTED,
    ),
    # 3.1.2.4 scalar02: numbers far beyond their range.
    Attack(
        "scalar02: overlarge scalars",
        raw(
            "INVITE {ruri} SIP/2.0\nVia: {via}\nTo: <{ruri}>\nFrom: <sip:torture@{me}>;tag={tag}\n"
            "Max-Forwards: 300\nCall-ID: {cid}\nContact: <sip:torture@{me}>;expires=280297596632815\n"
            "CSeq: 36893488147419103232 INVITE\nExpires: 10000000000000000000\n"
            "Content-Type: application/sdp\nContent-Length: {len}\n\n",
            good_sdp,
        ),
        DROPPED_OR_REJECTED,
    ),
    # 3.1.2.6 quotbal: a display name whose quote never closes.
    Attack(
        "quotbal: unterminated quoted string",
        raw(
            'INVITE {ruri} SIP/2.0\nVia: {via}\nTo: "Mr. J. User <{ruri}>\n'
            "From: <sip:torture@{me}>;tag={tag}\n"
            + _COMMON
            + "CSeq: 1 INVITE\nContent-Type: application/sdp\nContent-Length: {len}\n\n",
            good_sdp,
        ),
        DROPPED_OR_REJECTED,
    ),
    # 3.1.2.7 ltgtruri: the Request-URI in angle brackets.
    Attack(
        "ltgtruri: <> around the Request-URI",
        raw(
            "INVITE <{ruri}> SIP/2.0\nVia: {via}\nTo: <{ruri}>\nFrom: <sip:torture@{me}>;tag={tag}\n"
            + _COMMON
            + "CSeq: 1 INVITE\nContent-Type: application/sdp\nContent-Length: {len}\n\n",
            good_sdp,
        ),
        DROPPED_OR_REJECTED,
    ),
    # 3.1.2.8 lwsruri: whitespace inside the Request-URI.
    Attack(
        "lwsruri: LWS inside the Request-URI",
        raw(
            "INVITE {ruri}; lr SIP/2.0\nVia: {via}\nTo: <{ruri}>\nFrom: <sip:torture@{me}>;tag={tag}\n"
            + _COMMON
            + "CSeq: 1 INVITE\nContent-Type: application/sdp\nContent-Length: {len}\n\n",
            good_sdp,
        ),
        DROPPED_OR_REJECTED,
    ),
    # 3.1.2.9 lwsstart / 3.1.2.10 trws: extra spaces in the request line (may be tolerated).
    Attack(
        "lwsstart: several SP in the request line",
        raw(
            "INVITE  {ruri}   SIP/2.0\nVia: {via}\nTo: <{ruri}>\nFrom: <sip:torture@{me}>;tag={tag}\n"
            + _COMMON
            + "CSeq: 1 INVITE\nContent-Type: application/sdp\nContent-Length: {len}\n\n",
            good_sdp,
        ),
        ANYTHING,
    ),
    Attack(
        "trws: trailing SP after SIP/2.0",
        raw(
            "OPTIONS {ruri} SIP/2.0 \nVia: {via}\nTo: <{ruri}>\nFrom: <sip:torture@{me}>;tag={tag}\n"
            + _COMMON
            + "CSeq: 1 OPTIONS\nContent-Length: 0\n\n"
        ),
        ANYTHING,
    ),
    # 3.1.2.11 escruri: escaped headers in the Request-URI (may be ignored).
    Attack(
        "escruri: escaped headers in the Request-URI",
        raw(
            "INVITE {ruri}?Route=%3Csip:example.invalid%3E SIP/2.0\nVia: {via}\nTo: <{ruri}>\n"
            "From: <sip:torture@{me}>;tag={tag}\n"
            + _COMMON
            + "CSeq: 1 INVITE\nContent-Type: application/sdp\nContent-Length: {len}\n\n",
            good_sdp,
        ),
        ANYTHING,
    ),
    # 3.1.2.12 baddate, 3.1.2.14 badaspec, 3.1.2.15 baddn: tolerable oddities.
    Attack(
        "baddate/badaspec/baddn: bad Date, spaces in addr-spec, unquoted display names",
        raw(
            "OPTIONS {ruri} SIP/2.0\nVia: {via}\nTo: Watson, Thomas < {ruri} >\n"
            "From: Bell, Alexander <sip:torture@{me}>;tag={tag}\nDate: Fri, 01 Jan 2010 16:00:00 EST\n"
            + _COMMON
            + "CSeq: 1 OPTIONS\nContent-Length: 0\n\n"
        ),
        ANYTHING,
    ),
    # 3.1.2.16 badvers: a protocol version that does not exist.
    Attack(
        "badvers: SIP/7.0",
        raw(
            "OPTIONS {ruri} SIP/7.0\nVia: SIP/7.0/{tp} {me};rport;branch=z9hG4bK{tok}\nTo: <{ruri}>\n"
            "From: <sip:torture@{me}>;tag={tag}\n" + _COMMON + "CSeq: 1 OPTIONS\nContent-Length: 0\n\n"
        ),
        DROPPED_OR_REJECTED,
    ),
    # 3.1.2.17 mismatch01 / 3.1.2.18 mismatch02: CSeq method disagreeing with the request line.
    Attack(
        "mismatch01: OPTIONS with CSeq INVITE",
        raw(
            "OPTIONS {ruri} SIP/2.0\nVia: {via}\nTo: <{ruri}>\nFrom: <sip:torture@{me}>;tag={tag}\n"
            + _COMMON
            + "CSeq: 8 INVITE\nContent-Length: 0\n\n"
        ),
        DROPPED_OR_REJECTED,
    ),
    Attack(
        "mismatch02: INVITE with CSeq of an unknown method",
        raw(
            "INVITE {ruri} SIP/2.0\nVia: {via}\nTo: <{ruri}>\nFrom: <sip:torture@{me}>;tag={tag}\n"
            + _COMMON
            + "CSeq: 3923239 foobar\nContent-Type: application/sdp\nContent-Length: {len}\n\n",
            good_sdp,
        ),
        DROPPED_OR_REJECTED,
    ),
    # 3.3.8 multi01 / 3.3.9 mcl01: several values in headers that take one.
    Attack(
        "multi01: two Call-IDs, Tos, Froms and CSeqs",
        raw(
            "INVITE {ruri} SIP/2.0\nVia: {via}\nTo: <{ruri}>\nTo: <sip:other@{host}>\n"
            "From: <sip:torture@{me}>;tag={tag}\nFrom: <sip:other@{me}>;tag=2{tag}\n"
            "Max-Forwards: 70\nCall-ID: {cid}\nCall-ID: {cid}-second\nContact: <sip:torture@{me}>\n"
            "CSeq: 1 INVITE\nCSeq: 2 INVITE\nContent-Type: application/sdp\nContent-Length: {len}\n\n",
            good_sdp,
        ),
        DROPPED_OR_REJECTED,
    ),
    Attack(
        "mcl01: conflicting Content-Lengths",
        raw(
            "INVITE {ruri} SIP/2.0\nVia: {via}\nTo: <{ruri}>\nFrom: <sip:torture@{me}>;tag={tag}\n"
            + _COMMON
            + "CSeq: 1 INVITE\nContent-Type: application/sdp\nContent-Length: {len}\nContent-Length: 3\n"
            "l: 9999\n\n",
            good_sdp,
        ),
        DROPPED_OR_REJECTED,
    ),
    # 3.1.2.19 bigcode: a response (to nothing) with an absurd status code.
    Attack(
        "bigcode: status 4294967301",
        raw(
            "SIP/2.0 4294967301 better not break the receiver\nVia: {via}\nFrom: <sip:ivr@{host}>;tag={tag}\n"
            "To: <sip:torture@{me}>;tag=x\nCall-ID: {cid}\nCSeq: 1 INVITE\nContent-Length: 0\n\n"
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
