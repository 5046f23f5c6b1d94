"""Raw SIP over loopback for the robustness tests: hand-made (often broken) messages, a tolerant
parser for what comes back, and sockets that can only ever talk to 127.0.0.1.

sipp cannot send a malformed message or a bare datagram of garbage, so these tests write the
bytes themselves. Every socket here is bound to 127.0.0.1 and sends only to 127.0.0.1: an
address written into an SDP body is text, never a destination.
"""

from __future__ import annotations

import re
import select
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Self

LOOPBACK = "127.0.0.1"
Transport = Literal["UDP", "TCP"]

# RFC 3261 section 7.3.3 compact header names.
_COMPACT = {
    "i": "call-id",
    "v": "via",
    "f": "from",
    "t": "to",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
    "k": "supported",
    "e": "content-encoding",
    "s": "subject",
}
_STATUS_LINE = re.compile(r"^SIP/2\.0\s+(\d{3})\s*(.*)$")
_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)", re.IGNORECASE | re.MULTILINE)


def token() -> str:
    """A fresh random token for Call-IDs, tags and branches."""
    return uuid.uuid4().hex[:16]


@dataclass(frozen=True)
class SipMessage:
    """One parsed SIP message (request or response); header names are lower-case long forms."""

    start_line: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def is_response(self) -> bool:
        return self.start_line.startswith("SIP/")

    @property
    def status(self) -> int:
        """The status code of a response; 0 for a request."""
        match = _STATUS_LINE.match(self.start_line)
        return int(match.group(1)) if match else 0

    @property
    def is_final(self) -> bool:
        return self.status >= 200

    @property
    def method(self) -> str:
        """The method of a request (the CSeq method for a response)."""
        if self.is_response:
            return self.cseq[1]
        return self.start_line.split(" ", 1)[0]

    def header(self, name: str) -> str | None:
        values = self.header_all(name)
        return values[0] if values else None

    def header_all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key == wanted]

    @property
    def call_id(self) -> str:
        return self.header("call-id") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        parts = (self.header("cseq") or "").split()
        try:
            return int(parts[0]), parts[1] if len(parts) > 1 else ""
        except (IndexError, ValueError):
            return 0, ""

    @property
    def contact_uri(self) -> str | None:
        contact = self.header("contact")
        if contact is None:
            return None
        if "<" in contact:
            return contact.split("<", 1)[1].split(">", 1)[0]
        return contact.split(";", 1)[0].strip()


def parse_message(data: bytes) -> SipMessage | None:
    """Parse one SIP message; ``None`` when it has no recognisable start line."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    lines = head.decode("utf-8", errors="replace").replace("\r\n", "\n").split("\n")
    start = lines[0].strip()
    if not (start.startswith("SIP/2.0 ") or start.endswith(" SIP/2.0")):
        return None
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # folded continuation line (RFC 3261 7.3.1)
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if not colon:
            continue
        key = name.strip().lower()
        headers.append((_COMPACT.get(key, key), value.strip()))
    return SipMessage(start, tuple(headers), body)


def split_stream(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Cut complete messages off a TCP byte stream (framed by Content-Length); returns the rest."""
    messages: list[bytes] = []
    while True:
        buffer = buffer.lstrip(b"\r\n")  # keep-alive CRLFs between messages
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return messages, buffer
        match = _CONTENT_LENGTH.search(buffer[:end])
        total = end + 4 + (int(match.group(1)) if match else 0)
        if len(buffer) < total:
            return messages, buffer
        messages.append(buffer[:total])
        buffer = buffer[total:]


# -- building messages -------------------------------------------------------------------


def sdp_offer(rtp_port: int, connection: str = "IN IP4 127.0.0.1", media: str | None = None) -> str:
    """A G.711 audio offer; ``connection`` and ``media`` replace the c= and m= lines' values."""
    m_line = media if media is not None else f"audio {rtp_port} RTP/AVP 0 8 101"
    return (
        "v=0\r\n"
        "o=torture 1 1 IN IP4 127.0.0.1\r\n"
        "s=-\r\n"
        f"c={connection}\r\n"
        "t=0 0\r\n"
        f"m={m_line}\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:8 PCMA/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=sendrecv\r\n"
    )


@dataclass(frozen=True)
class Leg:
    """Who sends a request and to which loopback port; makes well-formed requests for one call."""

    transport: Transport
    local_port: int
    remote_port: int
    call_id: str = field(default_factory=lambda: f"torture-{token()}")
    from_tag: str = field(default_factory=token)

    @property
    def request_uri(self) -> str:
        return f"sip:ivr@{LOOPBACK}:{self.remote_port}"

    def via(self, branch: str | None = None) -> str:
        return (
            f"SIP/2.0/{self.transport} {LOOPBACK}:{self.local_port};branch=z9hG4bK{branch or token()};rport"
        )

    def request(
        self,
        method: str,
        body: str = "",
        *,
        cseq: int = 1,
        branch: str | None = None,
        content_type: str = "application/sdp",
        extra: Iterable[str] = (),
        omit: Iterable[str] = (),
    ) -> bytes:
        """A request from this leg; ``omit`` drops headers by name (to make it malformed)."""
        skip = {name.lower() for name in omit}
        headers = [
            ("Via", self.via(branch)),
            ("Max-Forwards", "70"),
            ("From", f'"Torture" <sip:+15550100199@{LOOPBACK}:{self.local_port}>;tag={self.from_tag}'),
            ("To", f"<{self.request_uri}>"),
            ("Call-ID", self.call_id),
            ("CSeq", f"{cseq} {method}"),
            ("Contact", f"<sip:torture@{LOOPBACK}:{self.local_port};transport={self.transport.lower()}>"),
        ]
        if body:
            headers.append(("Content-Type", content_type))
        head = "".join(f"{name}: {value}\r\n" for name, value in headers if name.lower() not in skip)
        head += "".join(f"{line}\r\n" for line in extra)
        payload = body.encode()
        return (
            f"{method} {self.request_uri} SIP/2.0\r\n{head}Content-Length: {len(payload)}\r\n\r\n".encode()
            + (payload)
        )


def in_dialog(method: str, response: SipMessage, request_uri: str, via: str, cseq: int) -> bytes:
    """ACK or BYE for the dialog (or transaction) a response belongs to, built from its headers."""
    return (
        f"{method} {request_uri} SIP/2.0\r\n"
        f"Via: {via}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: {response.header('from')}\r\n"
        f"To: {response.header('to')}\r\n"
        f"Call-ID: {response.call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def ack_for(response: SipMessage, request_uri: str, transport: Transport, local_port: int) -> bytes:
    """The ACK a final response to an INVITE needs (RFC 3261 17.1.1.3 for non-2xx, 13.2.2.4 for 2xx)."""
    number = response.cseq[0]
    if response.status >= 300:  # same transaction: the INVITE's Via (echoed back) and Request-URI
        return in_dialog("ACK", response, request_uri, response.header("via") or "", number)
    via = f"SIP/2.0/{transport} {LOOPBACK}:{local_port};branch=z9hG4bK{token()};rport"
    return in_dialog("ACK", response, response.contact_uri or request_uri, via, number)


def bye_for(response: SipMessage, request_uri: str, transport: Transport, local_port: int) -> bytes:
    """A BYE ending the dialog a 2xx to an INVITE created."""
    via = f"SIP/2.0/{transport} {LOOPBACK}:{local_port};branch=z9hG4bK{token()};rport"
    return in_dialog("BYE", response, response.contact_uri or request_uri, via, response.cseq[0] + 1)


def reply_to(request: SipMessage, status: int = 200, reason: str = "OK") -> bytes:
    """A response to a request the engine sent us (its BYE, an OPTIONS keep-alive)."""
    vias = "".join(f"Via: {via}\r\n" for via in request.header_all("via"))
    return (
        f"SIP/2.0 {status} {reason}\r\n{vias}"
        f"From: {request.header('from')}\r\n"
        f"To: {request.header('to')}\r\n"
        f"Call-ID: {request.call_id}\r\n"
        f"CSeq: {request.header('cseq')}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


# -- sockets that only talk to loopback ----------------------------------------------------


class SipSocket:
    """A UDP socket or TCP connection on 127.0.0.1 to one port on 127.0.0.1.

    ``receive`` returns parsed messages; datagrams or stream data that parse as no SIP message
    are kept in ``unparsed`` rather than dropped, so a test can report them.
    """

    def __init__(self, transport: Transport, remote_port: int, *, rcvbuf: int = 1 << 20) -> None:
        self.transport = transport
        self.remote = (LOOPBACK, remote_port)
        self.unparsed: list[bytes] = []
        self.closed_by_peer = False
        self._buffer = b""
        kind = socket.SOCK_DGRAM if transport == "UDP" else socket.SOCK_STREAM
        self.sock = socket.socket(socket.AF_INET, kind)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind((LOOPBACK, 0))
        if transport == "TCP":
            self.sock.settimeout(5.0)
            self.sock.connect(self.remote)
        self.local_port = int(self.sock.getsockname()[1])

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def leg(self) -> Leg:
        """A new call from this socket."""
        return Leg(self.transport, self.local_port, self.remote[1])

    def send(self, data: bytes) -> None:
        """Send to the one loopback peer; over TCP a connection the peer closed is noted, not raised."""
        assert self.remote[0] == LOOPBACK
        if self.transport == "UDP":
            self.sock.sendto(data, self.remote)
            return
        if self.closed_by_peer:
            return
        try:
            self.sock.sendall(data)
        except OSError:  # reset or broken pipe: the engine dropped the connection
            self.closed_by_peer = True

    def receive(self, timeout: float) -> SipMessage | None:
        """The next message within ``timeout`` seconds, or ``None``."""
        deadline = time.monotonic() + timeout
        while True:
            if self.transport == "TCP":
                messages, self._buffer = split_stream(self._buffer)
                if messages:
                    self._buffer = b"".join(messages[1:]) + self._buffer
                    parsed = parse_message(messages[0])
                    if parsed is not None:
                        return parsed
                    self.unparsed.append(messages[0])
                    continue
                if self.closed_by_peer:
                    return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([self.sock], [], [], remaining)
            if not readable:
                return None
            if self.transport == "UDP":
                data = self.sock.recv(65535)
                parsed = parse_message(data)
                if parsed is not None:
                    return parsed
                self.unparsed.append(data)
                continue
            try:
                chunk = self.sock.recv(65535)
            except OSError:
                chunk = b""
            if not chunk:
                self.closed_by_peer = True
            self._buffer += chunk
