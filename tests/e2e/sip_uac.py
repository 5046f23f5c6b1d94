"""A sans-I/O SIP client for the robustness tests: many transactions at once, each request
retransmitted on RFC 3261 timers until answered, every final INVITE response ACKed and every
call the engine answers hung up again at once, so no test leaves a call up by accident.

:class:`Uac` only turns messages and the time into bytes to send; :func:`drive` is the loop
that moves them over one :class:`~tests.e2e.raw_sip.SipSocket`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tests.e2e.raw_sip import SipMessage, SipSocket, Transport, ack_for, bye_for, parse_message, reply_to

T1 = 0.5  # RFC 3261 timer T1: first retransmission interval over UDP
T2 = 4.0  # cap for non-INVITE retransmissions
TIMEOUT = 64 * T1  # timers B and F: a transaction with no final response by then has failed


@dataclass
class _Retransmit:
    payload: bytes
    at: float
    interval: float
    give_up_at: float
    cap: float

    def due(self, now: float) -> bool:
        return now >= self.at

    def step(self) -> None:
        self.interval = min(self.interval * 2, self.cap)
        self.at += self.interval


@dataclass
class Transaction:
    """One request we sent (keyed by Call-ID) and what came back for it."""

    call_id: str
    method: str
    request_uri: str
    statuses: list[int] = field(default_factory=list)
    final: SipMessage | None = None
    timed_out: bool = False
    bye_status: int | None = None
    bye_timed_out: bool = False
    _retransmit: _Retransmit | None = None
    _bye: _Retransmit | None = None

    @property
    def answered(self) -> bool:
        return self.final is not None and 200 <= self.final.status < 300

    @property
    def settled(self) -> bool:
        """Nothing more will happen: refused, timed out, or answered and hung up again."""
        if self.timed_out:
            return True
        if self.final is None:
            return False
        if self.method != "INVITE" or not self.answered:
            return True
        return self.bye_status is not None or self.bye_timed_out


class Uac:
    """See the module docstring. ``reliable`` (TCP) turns retransmissions off."""

    def __init__(self, transport: Transport, local_port: int, default_uri: str) -> None:
        self.transport = transport
        self.local_port = local_port
        self.default_uri = default_uri
        self.transactions: dict[tuple[str, str], Transaction] = {}
        self.engine_requests: list[SipMessage] = []
        self.stray: list[SipMessage] = []
        self._unsettled: set[tuple[str, str]] = set()

    def send(self, payload: bytes, now: float, *, retransmit: bool = True) -> list[bytes]:
        """Start a transaction for ``payload`` (if it has a Call-ID) and return what to send."""
        parsed = parse_message(payload)
        if parsed is not None and parsed.call_id and not parsed.is_response:
            parts = parsed.start_line.split()
            tx = self._transaction(parsed.call_id, parsed.method, parts[1] if len(parts) > 1 else "")
            if retransmit and self.transport == "UDP":
                cap = TIMEOUT if parsed.method == "INVITE" else T2
                tx._retransmit = _Retransmit(payload, now + T1, T1, now + TIMEOUT, cap)
        return [payload]

    def receive(self, message: SipMessage, now: float) -> list[bytes]:
        """Handle one message from the engine; returns the ACKs, BYEs and replies it calls for."""
        if not message.is_response:
            self.engine_requests.append(message)
            return [] if message.method == "ACK" else [reply_to(message)]
        method = message.cseq[1]
        if method == "BYE":  # the BYE we sent to end a call the engine answered
            tx = self.transactions.get((message.call_id, "INVITE"))
            if tx is not None and message.is_final and tx.bye_status is None:
                tx.bye_status = message.status
                tx._bye = None
                self._update(tx)
            elif tx is None:
                self.stray.append(message)
            return []
        # A CSeq method that disagrees with the request line still answers that request.
        tx = self.transactions.get((message.call_id, method)) or self.transactions.get(
            (message.call_id, "INVITE")
        )
        if tx is None:
            if method != "INVITE":
                self.stray.append(message)
                return []
            # An INVITE we did not send as one (a second request in a datagram, a CSeq that
            # disagrees with the start line): still ACK it, and hang up if it was answered.
            tx = self._transaction(message.call_id, "INVITE", self.default_uri)
        tx.statuses.append(message.status)
        tx._retransmit = None  # any response stops request retransmission (timer A / E)
        if not message.is_final:
            return []
        out: list[bytes] = []
        first = tx.final is None
        if first:
            tx.final = message
        if tx.method == "INVITE":
            out.append(ack_for(message, tx.request_uri, self.transport, self.local_port))
            if first and tx.answered:
                bye = bye_for(message, tx.request_uri, self.transport, self.local_port)
                if self.transport == "UDP":
                    tx._bye = _Retransmit(bye, now + T1, T1, now + TIMEOUT, T2)
                out.append(bye)
        self._update(tx)
        return out

    def due(self, now: float) -> list[bytes]:
        """Retransmissions whose time has come; transactions past timer B/F time out."""
        out: list[bytes] = []
        for key in list(self._unsettled):
            tx = self.transactions[key]
            for timer, is_bye in ((tx._retransmit, False), (tx._bye, True)):
                if timer is None or not timer.due(now):
                    continue
                if now >= timer.give_up_at:
                    if is_bye:
                        tx._bye, tx.bye_timed_out = None, True
                    else:
                        tx._retransmit, tx.timed_out = None, True
                    continue
                out.append(timer.payload)
                timer.step()
            self._update(tx)
        return out

    @property
    def settled(self) -> bool:
        return not self._unsettled

    @property
    def calls_up(self) -> list[Transaction]:
        """Calls the engine answered that are not yet hung up again."""
        return [tx for tx in self.transactions.values() if tx.answered and not tx.settled]

    def finals(self, exclude: str = "") -> list[SipMessage]:
        """Every final response that came back, except those for Call-ID ``exclude``."""
        answers = [tx.final for tx in self.transactions.values() if tx.final and tx.call_id != exclude]
        return answers + [m for m in self.stray if m.is_final and m.call_id != exclude]

    def transaction(self, call_id: str, method: str) -> Transaction | None:
        return self.transactions.get((call_id, method))

    def _transaction(self, call_id: str, method: str, request_uri: str) -> Transaction:
        key = (call_id, method)
        tx = self.transactions.get(key)
        if tx is None:
            tx = Transaction(call_id, method, request_uri or self.default_uri)
            self.transactions[key] = tx
            self._unsettled.add(key)
        return tx

    def _update(self, tx: Transaction) -> None:
        key = (tx.call_id, tx.method)
        if tx.settled:
            self._unsettled.discard(key)
        else:
            self._unsettled.add(key)


def drive(sock: SipSocket, uac: Uac, until: Callable[[], bool], timeout: float) -> bool:
    """Move messages between ``sock`` and ``uac`` until ``until()`` holds; False on timeout."""
    deadline = time.monotonic() + timeout
    while not until():
        now = time.monotonic()
        if now >= deadline:
            return False
        for payload in uac.due(now):
            sock.send(payload)
        message = sock.receive(min(0.05, deadline - now))
        if message is not None:
            for payload in uac.receive(message, time.monotonic()):
                sock.send(payload)
        elif sock.closed_by_peer and sock.transport == "TCP":
            return until()
    return True


def send_paced(sock: SipSocket, uac: Uac, payloads: Sequence[bytes], rate: float) -> None:
    """Send ``payloads`` evenly, ``rate`` a second, handling what comes back in between."""
    start = time.monotonic()
    for index, payload in enumerate(payloads):
        wait = start + index / rate - time.monotonic()
        if wait > 0:
            drive(sock, uac, lambda: False, wait)
        for data in uac.send(payload, time.monotonic()):
            sock.send(data)
