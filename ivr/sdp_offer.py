"""Checking an INVITE's SDP offer before pjsua answers it.

pjsua's own negotiation fails late and badly on hostile offers (an unparseable ``c=`` address
made ``answer()`` raise and the process abort), and it would stream prompts to any address an
offer names. So the offer is read here first, as plain text: a problem becomes a 488 Not
Acceptable Here with the reason in a Warning header (RFC 3261 20.43, codes 301-305).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ivr.networks import Network, in_networks, parse_networks

# Static RTP payload types (RFC 3551) for the codecs the engine speaks.
_STATIC_PAYLOADS = {"PCMU": "0", "PCMA": "8"}
_MAX_SDP_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class OfferProblem:
    """Why an offer is refused; ``warn_code`` is the RFC 3261 Warning code."""

    warn_code: int
    text: str


def _problem(code: int, text: str) -> OfferProblem:
    return OfferProblem(code, text)


def sdp_body(message: str) -> str | None:
    """The SDP body of a whole SIP message, or None when it carries none (a late offer)."""
    head, sep, body = message.partition("\r\n\r\n")
    if not sep:
        head, sep, body = message.partition("\n\n")
    if not sep:
        return None
    content_type = ""
    for line in head.splitlines()[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() in ("content-type", "c"):
            content_type = value.strip().lower()
    if not body.strip():
        return None
    if not content_type.startswith("application/sdp"):
        return "" if content_type else body  # a body of another type: no usable offer
    return body


def check_offer(
    sdp: str,
    signalling_source: str,
    media_networks: tuple[str, ...],
    codecs: tuple[str, ...],
) -> OfferProblem | None:
    """None when the offer is one the engine can answer safely, else the problem.

    ``signalling_source`` is the IP the INVITE came from: RTP may go there or into
    ``media_networks``, nowhere else (an offer naming another host would turn the engine into
    a traffic reflector).
    """
    if len(sdp) > _MAX_SDP_BYTES:
        return _problem(399, f"SDP body of {len(sdp)} bytes exceeds {_MAX_SDP_BYTES}")
    if not sdp.strip():
        return _problem(399, "INVITE body is not an application/sdp offer")
    lines = [line.strip() for line in sdp.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines or not lines[0].startswith("v="):
        return _problem(399, "SDP does not start with a v= line")
    session_c: str | None = None
    audio: list[tuple[str, str | None, dict[str, str]]] = []  # (m= line, c= line, rtpmaps)
    for line in lines:
        if len(line) < 2 or line[1] != "=":
            return _problem(399, f"SDP line {line[:40]!r} is not of the form x=value")
        kind, value = line[0], line[2:]
        if kind == "m":
            audio.append((value, None, {}))
        elif kind == "c":
            if audio:
                m, _, maps = audio[-1]
                audio[-1] = (m, value, maps)
            else:
                session_c = value
        elif kind == "a" and audio and value.startswith("rtpmap:"):
            pt, _, encoding = value[len("rtpmap:") :].partition(" ")
            audio[-1][2][pt.strip()] = encoding.split("/", 1)[0].strip().upper()
    audio_streams = [(m, c, maps) for m, c, maps in audio if m.split(" ", 1)[0] == "audio"]
    if not audio_streams:
        return _problem(304, "offer has no m=audio stream")
    allowed_media = parse_networks(media_networks)
    usable = False
    for m, c, maps in audio_streams:
        parts = m.split()
        if len(parts) < 4:
            return _problem(399, f"m= line {m[:60]!r} is incomplete")
        if not parts[1].split("/", 1)[0].isdigit() or int(parts[1].split("/", 1)[0]) > 65535:
            return _problem(399, f"m= line has an invalid port {parts[1][:20]!r}")
        if int(parts[1].split("/", 1)[0]) == 0:
            continue  # a declined stream
        connection = c if c is not None else session_c
        if connection is None:
            return _problem(399, "audio stream has no c= connection address")
        problem = _check_connection(connection, signalling_source, allowed_media)
        if problem is not None:
            return problem
        if parts[2].upper() not in ("RTP/AVP", "RTP/AVPF"):
            continue
        offered = set(parts[3:])
        for codec in codecs:
            static = _STATIC_PAYLOADS.get(codec)
            if (static in offered and maps.get(static, codec) == codec) or codec in {
                maps.get(pt) for pt in offered
            }:
                usable = True
    if not usable:
        return _problem(305, f"no audio stream offers RTP/AVP with {' or '.join(codecs)}")
    return None


def _check_connection(
    connection: str,
    source: str,
    allowed: tuple[Network, ...],
) -> OfferProblem | None:
    parts = connection.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        return _problem(399, f"c= line {connection[:60]!r} is not 'IN IP4|IP6 address'")
    address = parts[2].split("/", 1)[0]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return _problem(300, f"c= address {address[:60]!r} is not an IP address")
    if (ip.version == 4) != (parts[1] == "IP4"):
        return _problem(300, f"c= address {address} does not match its type {parts[1]}")
    if ip.is_unspecified:
        return None  # 0.0.0.0: the old way of putting a call on hold; nothing is sent
    if ip.is_multicast:
        return _problem(300, "multicast media is not supported")
    if _same_ip(ip, source) or in_networks(address, allowed):
        return None
    return _problem(300, f"media address {address} is neither the signalling source nor an allowed network")


def _same_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, other: str) -> bool:
    try:
        return ip == ipaddress.ip_address(other)
    except ValueError:
        return False
