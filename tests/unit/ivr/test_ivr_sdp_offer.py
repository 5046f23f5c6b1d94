"""The SDP offer check that runs before pjsua answers: hostile offers become a located 488."""

from __future__ import annotations

import pytest

from ivr.sdp_offer import check_offer, sdp_body
from ivr.sip_message_check import request_problem

CODECS = ("PCMU", "PCMA")


def offer(c: str = "IN IP4 127.0.0.1", m: str = "audio 6000 RTP/AVP 0 8 101", extra: str = "") -> str:
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n"
        f"c={c}\r\nt=0 0\r\nm={m}\r\na=rtpmap:101 telephone-event/8000\r\n{extra}"
    )


def problem(sdp: str, source: str = "127.0.0.1", networks: tuple[str, ...] = ()) -> str | None:
    found = check_offer(sdp, source, networks, CODECS)
    return None if found is None else f"{found.warn_code} {found.text}"


def test_an_ordinary_g711_offer_from_the_signalling_source_is_fine() -> None:
    assert problem(offer()) is None
    assert problem(offer(m="audio 6000 RTP/AVP 8")) is None
    assert problem(offer(m="audio 6000 RTP/AVP 96", extra="a=rtpmap:96 PCMU/8000\r\n")) is None


@pytest.mark.parametrize(
    ("c", "expected"),
    [
        ("IN IP4 999.1.1.1", "300 c= address '999.1.1.1' is not an IP address"),
        ("IN IP6 zz::zz::1", "300 c= address 'zz::zz::1' is not an IP address"),
        ("IN IP4 ::1", "300 c= address ::1 does not match its type IP4"),
        ("IN IP4", "399 c= line 'IN IP4' is not 'IN IP4|IP6 address'"),
        ("XX IP4 127.0.0.1", "399 c= line 'XX IP4 127.0.0.1' is not 'IN IP4|IP6 address'"),
        ("IN IP4 224.0.0.1", "300 multicast media is not supported"),
    ],
)
def test_unusable_connection_addresses_are_refused(c: str, expected: str) -> None:
    assert problem(offer(c=c)) == expected


def test_media_may_only_go_to_the_signalling_source_or_an_allowed_network() -> None:
    assert problem(offer(c="IN IP4 8.8.8.8")) == (
        "300 media address 8.8.8.8 is neither the signalling source nor an allowed network"
    )
    assert problem(offer(c="IN IP4 10.0.0.5"), networks=("10.0.0.0/24",)) is None
    assert problem(offer(c="IN IP4 0.0.0.0")) is None  # hold, old style: nothing is sent


def test_offers_without_usable_audio_are_refused() -> None:
    assert problem(offer(m="video 6000 RTP/AVP 96")) == "304 offer has no m=audio stream"
    assert problem(offer(m="audio 6000 RTP/AVP 99", extra="a=rtpmap:99 opus/48000/2\r\n")) == (
        "305 no audio stream offers RTP/AVP with PCMU or PCMA"
    )
    assert problem(offer(m="audio 6000 RTP/SAVP 0")) == "305 no audio stream offers RTP/AVP with PCMU or PCMA"
    assert problem(offer(m="audio 0 RTP/AVP 0")) == "305 no audio stream offers RTP/AVP with PCMU or PCMA"
    assert problem(offer(m="audio 99999 RTP/AVP 0")) == "399 m= line has an invalid port '99999'"
    assert problem(offer(m="audio")) == "399 m= line 'audio' is incomplete"


def test_garbage_bodies_are_refused_with_a_reason() -> None:
    assert problem("") == "399 INVITE body is not an application/sdp offer"
    assert problem("hello world") == "399 SDP does not start with a v= line"
    assert problem("v=0\r\n\x00\x01garbage") is not None
    assert problem("v=0\r\n" + "a=x\r\n" * 5000).startswith("399 SDP body of")  # type: ignore[union-attr]


def test_a_payload_type_number_remapped_to_another_codec_does_not_count() -> None:
    assert problem(offer(m="audio 6000 RTP/AVP 0", extra="a=rtpmap:0 opus/48000\r\n")) is not None


def test_the_body_is_found_in_a_whole_sip_message() -> None:
    head = "INVITE sip:ivr@127.0.0.1 SIP/2.0\r\nCall-ID: x\r\n"
    assert sdp_body(head + "Content-Type: application/sdp\r\n\r\nv=0\r\n") == "v=0\r\n"
    assert sdp_body(head + "c: application/sdp\r\n\r\nv=0\r\n") == "v=0\r\n"
    assert sdp_body(head + "Content-Length: 0\r\n\r\n") is None  # late offer: pjsua offers in 200
    assert sdp_body(head + "Content-Type: text/plain\r\n\r\nhello") == ""


def _invite(headers: str, body: str = "") -> str:
    return f"INVITE sip:ivr@127.0.0.1 SIP/2.0\r\n{headers}\r\n{body}"


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ("Call-ID: a\r\nCall-ID: b\r\nCSeq: 1 INVITE\r\n", "", "more than one Call-ID header"),
        ("i: a\r\nCall-ID: b\r\nCSeq: 1 INVITE\r\n", "", "more than one Call-ID header"),
        (
            "Call-ID: a\r\nCSeq: 1 INVITE\r\nContent-Length: 3\r\nl: 9999\r\n",
            "v=0",
            "more than one Content-Length header",
        ),
        (
            "Call-ID: a\r\nCSeq: 1 OPTIONS\r\n",
            "",
            "CSeq method 'OPTIONS' does not match the request method 'INVITE'",
        ),
        (
            "Call-ID: a\r\nCSeq: 1 INVITE\r\nContent-Length: 50\r\n",
            "v=0\r\n",
            "Content-Length 50 is larger than the 5-byte body",
        ),
        ("Call-ID: a\r\nCSeq: 1 INVITE\r\nContent-Length: -1\r\n", "", "Content-Length '-1' is not a number"),
    ],
)
def test_ambiguous_invites_are_bad_requests(headers: str, body: str, expected: str) -> None:
    assert request_problem(_invite(headers, body)) == expected


def test_a_sound_invite_with_folded_headers_passes() -> None:
    headers = "Call-ID: a\r\nSubject: one\r\n two\r\nCSeq: 1 INVITE\r\nContent-Length: 5\r\n"
    assert request_problem(_invite(headers, "v=0\r\n")) is None
