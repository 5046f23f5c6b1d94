"""The RTP serve sends, timed on the wire: an AF_PACKET capture on the loopback interface and the
gaps between packets within each call's stream.

The capture keeps the kernel timestamps of outgoing IPv4/UDP packets from serve's RTP port range
(a classic BPF filter; RTCP left out). A stream is one (source port, destination port) pair, i.e.
one call: sipp receives every call's media on one port, serve sends each call from its own.
Needs root (CAP_NET_RAW).
"""

from __future__ import annotations

import ctypes
import select
import socket
import struct
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from itertools import pairwise

GAP_LIMIT_MS = 60.0

ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26
SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_OUTGOING = 4
SNAP = 64  # Ethernet + IPv4 + UDP headers and the first RTP bytes


def _bpf_udp_source_ports(first: int, last: int) -> list[tuple[int, int, int, int]]:
    """Classic BPF: outgoing copies of unfragmented IPv4/UDP packets whose source port is in
    [first, last], cut to SNAP bytes (what ``tcpdump -dd 'outbound and udp src portrange'`` says)."""
    drop = 13
    return [
        (0x30, 0, 0, 0xFFFFF004),  # ldb pkttype (ancillary)
        (0x15, 0, drop - 2, PACKET_OUTGOING),  # jeq outgoing
        (0x28, 0, 0, 12),  # ldh [12]: ethertype
        (0x15, 0, drop - 4, 0x0800),  # jeq IPv4
        (0x30, 0, 0, 23),  # ldb [23]: IP protocol
        (0x15, 0, drop - 6, 17),  # jeq UDP
        (0x28, 0, 0, 20),  # ldh [20]: flags and fragment offset
        (0x45, drop - 8, 0, 0x1FFF),  # jset fragment -> drop
        (0xB1, 0, 0, 14),  # ldxb 4*([14]&0xf): IP header length
        (0x48, 0, 0, 14),  # ldh [x+14]: UDP source port
        (0x35, 0, drop - 11, first),  # jge first
        (0x25, drop - 12, 0, last),  # jgt last -> drop
        (0x06, 0, 0, SNAP),  # accept
        (0x06, 0, 0, 0),  # drop
    ]


class RtpCapture:
    """Kernel timestamps of the RTP packets leaving serve's media ports, per (source, destination)
    port pair, i.e. per call. Needs root (CAP_NET_RAW)."""

    def __init__(self, first_port: int, last_port: int) -> None:
        self.first, self.last = first_port, last_port
        self.streams: dict[tuple[int, int], list[int]] = {}
        self.rtcp = 0
        self.kernel_drops = 0
        self._stop = threading.Event()
        program = _bpf_udp_source_ports(first_port, last_port)
        self._filter = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *op) for op in program))
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        fprog = struct.pack("HL", len(program), ctypes.addressof(self._filter))
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)  # root only
        sock.bind(("lo", ETH_P_ALL))
        sock.setblocking(False)
        while True:  # whatever was queued before the filter was attached
            try:
                sock.recv(65535)
            except BlockingIOError:
                break
        sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)  # reading resets the counters
        self._sock = sock
        self._thread = threading.Thread(target=self._run, name="rtp-capture", daemon=True)

    def __enter__(self) -> RtpCapture:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        _packets, drops = struct.unpack("II", self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
        self.kernel_drops += drops
        self._sock.close()

    def _run(self) -> None:
        cmsg_space = socket.CMSG_SPACE(16)
        while not self._stop.is_set():
            ready, _, _ = select.select([self._sock], [], [], 0.2)
            if not ready:
                continue
            while True:
                try:
                    data, ancillary, _flags, _addr = self._sock.recvmsg(SNAP, cmsg_space)
                except BlockingIOError:
                    break
                self._packet(data, ancillary)

    def _packet(self, data: bytes, ancillary: list[tuple[int, int, bytes]]) -> None:
        if len(data) < 14 + 20 + 8 + 2:
            return
        ihl = (data[14] & 0x0F) * 4
        udp = 14 + ihl
        src, dst = struct.unpack_from("!HH", data, udp)
        if not self.first <= src <= self.last or len(data) < udp + 10:
            return
        if data[udp + 8] >> 6 != 2 or 72 <= data[udp + 9] & 0x7F <= 76:  # not RTP, or RTCP
            self.rtcp += 1
            return
        stamp = None
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", payload[:16])
                stamp = sec * 1_000_000_000 + nsec
        if stamp is None:
            stamp = time.time_ns()
        self.streams.setdefault((src, dst), []).append(stamp)


@dataclass(frozen=True)
class GapStats:
    streams: int
    packets: int
    max_ms: float
    p99_ms: float
    over_limit: int  # gaps > GAP_LIMIT_MS
    streams_over_limit: int
    late: tuple[tuple[float, float], ...] = ()  # (s since the stream's first packet, gap ms) > limit


def gap_stats(streams: dict[tuple[int, int], list[int]]) -> GapStats:
    """Inter-packet gaps within each stream, from its first packet to its last."""
    gaps: list[float] = []
    late: list[tuple[float, float]] = []
    streams_over = 0
    for stamps in streams.values():
        stamps.sort()
        own = [(b - a) / 1e6 for a, b in pairwise(stamps)]
        gaps.extend(own)
        over = [((stamps[i] - stamps[0]) / 1e9, g) for i, g in enumerate(own) if g > GAP_LIMIT_MS]
        late.extend(over)
        streams_over += bool(over)
    gaps.sort()
    if not gaps:
        return GapStats(len(streams), 0, 0.0, 0.0, 0, 0)
    p99 = gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))]
    return GapStats(
        len(streams),
        sum(len(s) for s in streams.values()),
        gaps[-1],
        p99,
        sum(g > GAP_LIMIT_MS for g in gaps),
        streams_over,
        tuple(sorted(late)),
    )
