"""Messages in the spirit of RFC 4475 (SIP torture tests), sections 3.1.1 (valid but tortuous:
must be handled) and 3.1.2/3.3/3.4 (invalid: dropped or rejected, never accepted), rewritten so
every address a reply could go to is 127.0.0.1.

Most are laid out alike (:func:`request`), so each case states only what is odd about it; the
ones whose oddity is the layout itself are written out whole with :func:`raw`.
"""

from __future__ import annotations

from tests.e2e.sip_attack import (
    ANYTHING,
    DROPPED_OR_REJECTED,
    HANDLED,
    SILENCE,
    Attack,
    Body,
    Build,
    good_sdp,
    no_body,
    raw,
    text,
)

_COMMON = "Max-Forwards: 70\nCall-ID: {cid}\nContact: <sip:torture@{me}>\n"
_SDP = "Content-Type: application/sdp\nContent-Length: {len}\n\n"
_EMPTY = "Content-Length: 0\n\n"


def request(
    line: str,
    *,
    cseq: str | None = None,
    via: str = "{via}",
    to: str = "<{ruri}>",
    sender: str = "<sip:torture@{me}>;tag={tag}",
    more: str = "",
    tail: str | None = None,
    body: Body | None = None,
) -> Build:
    """A request line, then Via, To, From (``more`` headers after it), Max-Forwards, Call-ID,
    Contact and CSeq (``1 <method>`` unless given), then ``tail``: by default Content-Type and
    Content-Length of ``body``, or ``Content-Length: 0`` without one."""
    cseq = cseq or "1 " + line.split(" ", 1)[0]
    if tail is None:
        tail = _SDP if body else _EMPTY
    head = line + "\nVia: " + via + "\nTo: " + to + "\nFrom: " + sender + "\n" + more + _COMMON
    return raw(head + "CSeq: " + cseq + "\n" + tail, body or no_body)


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
        request(
            "!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
            ":&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@{host} SIP/2.0",
            cseq="139122385 !interesting-Method0123456789_*+`.%indeed'~",
            to="<sip:ivr@{host}>",
        ),
        ANYTHING,
    ),
    # 3.1.1.3 esc01: escapes in the Request-URI and the From user part.
    Attack(
        "esc01: escaped characters in URIs",
        request(
            "INVITE sip:sips%3Auser%40example.com@{host} SIP/2.0",
            to="<sip:sips%3Auser%40example.com@{host}>",
            sender='"%5C%22" <sip:I%20have%20spaces@{me}>;tag={tag}',
            body=good_sdp,
        ),
        HANDLED,
    ),
    # 3.1.1.4 escnull: an escaped NUL in a URI.
    Attack(
        "escnull: %00 in URIs",
        request(
            "OPTIONS sip:null-%00-null@{host} SIP/2.0",
            to="<sip:null-%00-null@{host}>",
            sender="<sip:null-%00-null@{me}>;tag={tag}",
        ),
        HANDLED,
    ),
    # 3.1.1.5 esc02: % that is not an escape, in a method name and a display name.
    Attack(
        "esc02: % where it is no escape",
        request(
            "RE%47IST%45R sip:ivr@{host} SIP/2.0",
            to='"%Z%45" <sip:ivr@{host}>',
            sender='"%Z%45" <sip:torture@{me}>;tag={tag}',
        ),
        ANYTHING,
    ),
    # 3.1.1.6 lwsdisp: no space between a display name and its <.
    Attack(
        "lwsdisp: display name touching <",
        request("OPTIONS {ruri} SIP/2.0", to="ivr<{ruri}>", sender="caller<sip:torture@{me}>;tag={tag}"),
        HANDLED,
    ),
    # 3.1.1.7 longreq: long values everywhere (kept under the 4 KB pjsip reads per datagram).
    Attack(
        "longreq: long header values",
        request(
            "INVITE sip:" + "u" * 300 + "@{host} SIP/2.0",
            to="<sip:" + "u" * 300 + "@{host}>",
            sender='"' + "d" * 200 + '" <sip:torture@{me}>;tag={tag};' + "p" * 100 + "=" + "v" * 100,
            tail="X-Long: " + "x" * 1200 + "\n" + _SDP,
            body=good_sdp,
        ),
        HANDLED,
    ),
    # 3.1.1.8 dblreq: a second request trailing in the same datagram.
    Attack(
        "dblreq: two requests in one datagram",
        request(
            "OPTIONS {ruri} SIP/2.0",
            tail=_EMPTY
            + "INVITE {ruri} SIP/2.0\nVia: SIP/2.0/{tp} {me};branch=z9hG4bK{tok};rport\nTo: <{ruri}>\n"
            "From: <sip:torture@{me}>;tag={tag}\nMax-Forwards: 70\nCall-ID: {cid}-trailing\n"
            "Contact: <sip:torture@{me}>\nCSeq: 1 INVITE\n" + _SDP,
            body=good_sdp,
        ),
        ANYTHING,
    ),
    # 3.1.1.9 semiuri: a semicolon inside the user part.
    Attack(
        "semiuri: ; in the user part",
        request(
            "OPTIONS sip:user;par=u%40example.net@{host} SIP/2.0", to="<sip:user;par=u%40example.net@{host}>"
        ),
        HANDLED,
    ),
    # 3.1.1.10 transports: unknown transports in the lower Vias.
    Attack(
        "transports: unknown Via transports",
        request(
            "OPTIONS {ruri} SIP/2.0",
            via="{via}\nVia: SIP/2.0/SCTP t1.example.invalid;branch=z9hG4bKsctp\n"
            "Via: SIP/2.0/TLS t2.example.invalid;branch=z9hG4bKtls\n"
            "Via: SIP/2.0/UNKNOWN t3.example.invalid;branch=z9hG4bKunknown",
        ),
        HANDLED,
    ),
    # 3.1.1.11 mpart01: the offer inside a multipart/mixed body.
    Attack(
        "mpart01: SDP in a multipart body",
        request(
            "INVITE {ruri} SIP/2.0",
            tail='Content-Type: multipart/mixed;boundary="7a9cbec02ceef655"\n'
            "MIME-Version: 1.0\nContent-Length: {len}\n\n",
            body=text(
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
        request("OPTIONS soap.beep://{host}/ivr SIP/2.0", to="<soap.beep://{host}/ivr>"),
        ANYTHING,
    ),
    Attack(
        "unksm2: unknown schemes in To and From",
        request("OPTIONS {ruri} SIP/2.0", to="isbn:2983792873", sender="<http://www.example.com>;tag={tag}"),
        ANYTHING,
    ),
    # 3.4.1 inv2543: an RFC 2543 INVITE (no branch magic cookie, no rport).
    Attack(
        "inv2543: RFC 2543 INVITE",
        request("INVITE {ruri} SIP/2.0", via="SIP/2.0/{tp} {me}", body=good_sdp),
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
            "Max-Forwards: 70\nCall-ID: {cid}\nCSeq: 1 INVITE\nContact: ;;;<sip:torture@{me}>;;;,,,\n" + _SDP,
            good_sdp,
        ),
        DROPPED_OR_REJECTED,
    ),
    # 3.1.2.3 ncl: a negative Content-Length.
    Attack(
        "ncl: negative Content-Length",
        request(
            "INVITE {ruri} SIP/2.0",
            tail="Content-Type: application/sdp\nContent-Length: -999\n\n",
            body=good_sdp,
        ),
        DROPPED_OR_REJECTED,
    ),
    # 3.1.2.4 scalar02: numbers far beyond their range.
    Attack(
        "scalar02: overlarge scalars",
        raw(
            "INVITE {ruri} SIP/2.0\nVia: {via}\nTo: <{ruri}>\nFrom: <sip:torture@{me}>;tag={tag}\n"
            "Max-Forwards: 300\nCall-ID: {cid}\nContact: <sip:torture@{me}>;expires=280297596632815\n"
            "CSeq: 36893488147419103232 INVITE\nExpires: 10000000000000000000\n" + _SDP,
            good_sdp,
        ),
        DROPPED_OR_REJECTED,
    ),
    # 3.1.2.6 quotbal: a display name whose quote never closes.
    Attack(
        "quotbal: unterminated quoted string",
        request("INVITE {ruri} SIP/2.0", to='"Mr. J. User <{ruri}>', body=good_sdp),
        DROPPED_OR_REJECTED,
    ),
    # 3.1.2.7 ltgtruri: the Request-URI in angle brackets.
    Attack(
        "ltgtruri: <> around the Request-URI",
        request("INVITE <{ruri}> SIP/2.0", body=good_sdp),
        DROPPED_OR_REJECTED,
    ),
    # 3.1.2.8 lwsruri: whitespace inside the Request-URI.
    Attack(
        "lwsruri: LWS inside the Request-URI",
        request("INVITE {ruri}; lr SIP/2.0", body=good_sdp),
        DROPPED_OR_REJECTED,
    ),
    # 3.1.2.9 lwsstart / 3.1.2.10 trws: extra spaces in the request line (may be tolerated).
    Attack(
        "lwsstart: several SP in the request line",
        request("INVITE  {ruri}   SIP/2.0", body=good_sdp),
        ANYTHING,
    ),
    Attack("trws: trailing SP after SIP/2.0", request("OPTIONS {ruri} SIP/2.0 "), ANYTHING),
    # 3.1.2.11 escruri: escaped headers in the Request-URI (may be ignored).
    Attack(
        "escruri: escaped headers in the Request-URI",
        request("INVITE {ruri}?Route=%3Csip:example.invalid%3E SIP/2.0", body=good_sdp),
        ANYTHING,
    ),
    # 3.1.2.12 baddate, 3.1.2.14 badaspec, 3.1.2.15 baddn: tolerable oddities.
    Attack(
        "baddate/badaspec/baddn: bad Date, spaces in addr-spec, unquoted display names",
        request(
            "OPTIONS {ruri} SIP/2.0",
            to="Watson, Thomas < {ruri} >",
            sender="Bell, Alexander <sip:torture@{me}>;tag={tag}",
            more="Date: Fri, 01 Jan 2010 16:00:00 EST\n",
        ),
        ANYTHING,
    ),
    # 3.1.2.16 badvers: a protocol version that does not exist.
    Attack(
        "badvers: SIP/7.0",
        request("OPTIONS {ruri} SIP/7.0", via="SIP/7.0/{tp} {me};rport;branch=z9hG4bK{tok}"),
        DROPPED_OR_REJECTED,
    ),
    # 3.1.2.17 mismatch01 / 3.1.2.18 mismatch02: CSeq method disagreeing with the request line.
    Attack(
        "mismatch01: OPTIONS with CSeq INVITE",
        request("OPTIONS {ruri} SIP/2.0", cseq="8 INVITE"),
        DROPPED_OR_REJECTED,
    ),
    Attack(
        "mismatch02: INVITE with CSeq of an unknown method",
        request("INVITE {ruri} SIP/2.0", cseq="3923239 foobar", body=good_sdp),
        DROPPED_OR_REJECTED,
    ),
    # 3.3.8 multi01 / 3.3.9 mcl01: several values in headers that take one.
    Attack(
        "multi01: two Call-IDs, Tos, Froms and CSeqs",
        raw(
            "INVITE {ruri} SIP/2.0\nVia: {via}\nTo: <{ruri}>\nTo: <sip:other@{host}>\n"
            "From: <sip:torture@{me}>;tag={tag}\nFrom: <sip:other@{me}>;tag=2{tag}\n"
            "Max-Forwards: 70\nCall-ID: {cid}\nCall-ID: {cid}-second\nContact: <sip:torture@{me}>\n"
            "CSeq: 1 INVITE\nCSeq: 2 INVITE\n" + _SDP,
            good_sdp,
        ),
        DROPPED_OR_REJECTED,
    ),
    Attack(
        "mcl01: conflicting Content-Lengths",
        request(
            "INVITE {ruri} SIP/2.0",
            tail="Content-Type: application/sdp\nContent-Length: {len}\nContent-Length: 3\nl: 9999\n\n",
            body=good_sdp,
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
