"""The audio side of a supervised call's parties in the end-to-end tests: an RTP peer per party
(records what it hears, sends a tone and RFC 2833 keys), the measures of what a party heard,
and the sipp caller and the listen-then-barge sequence both supervision tests run.

The parties' SIP is sipp's (``tests/sip/supervisor_*.xml``, told this peer's port with ``-key
rtp_port``); the audio is here, so who hears whom can be asserted frame by frame.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ivr.sipp_peer import free_port, sipp_command
from media.g711 import ulaw_decode, ulaw_encode
from tests.e2e.conftest import SIP_DIR

SUPERVISOR_HZ = 1000.0  # on an exact 20 ms DFT bin, as is CALLER_HZ
CALLER_HZ = 400.0


class RtpPeer:
    """One party's audio: records the PCMU frames it receives, sends a tone when told to, and
    RFC 2833 digits. Replies to wherever the engine's RTP comes from."""

    def __init__(self, tone_hz: float, event_pt: int = 120) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.received: list[tuple[float, np.ndarray]] = []
        self.talking = threading.Event()
        self._tone = (6000 * np.sin(2 * np.pi * tone_hz * np.arange(160) / 8000)).astype(np.int16)
        self._digits: list[str] = []
        self._event_pt = event_pt  # what pjsua offers for telephone-event (PJMEDIA_RTP_PT_TELEPHONE_EVENTS)
        self._remote: tuple[str, int] | None = None
        self._stop = threading.Event()
        self._seq = 0
        self._ts = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def press(self, digit: str) -> None:
        self._digits.append(digit)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def _run(self) -> None:
        """Wait for packets until the next 20 ms send is due (few wake-ups: the test's own
        thread must not starve on a loaded machine)."""
        next_at = time.monotonic()
        while not self._stop.is_set():
            wait = next_at - time.monotonic()
            if wait <= 0:
                next_at += 0.02
                if self._remote is not None:
                    self._send_frame()
                continue
            try:
                self.sock.settimeout(wait)
                data, addr = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            if len(data) > 12 and data[1] & 0x7F == 0:
                self._remote = addr
                self.received.append((time.monotonic(), ulaw_decode(data[12:]).astype(np.int16)))

    def _packet(self, payload_type: int, payload: bytes, marker: bool = False) -> bytes:
        self._seq = (self._seq + 1) & 0xFFFF
        head = struct.pack(
            "!BBHII", 0x80, payload_type | (0x80 if marker else 0), self._seq, self._ts, 0x5EED
        )
        return head + payload

    def _send_frame(self) -> None:
        assert self._remote is not None
        if self._digits:  # an RFC 2833 event: 60 ms on, then three end packets, one timestamp
            event = "0123456789*#".index(self._digits.pop(0))
            for index, duration in enumerate((160, 320, 480, 480, 480, 480)):
                end = 0x80 if index >= 3 else 0
                payload = struct.pack("!BBH", event, end | 10, duration)
                self.sock.sendto(self._packet(self._event_pt, payload, marker=index == 0), self._remote)
            self._ts += 480
            return
        pcm = self._tone if self.talking.is_set() else np.zeros(160, np.int16)
        self.sock.sendto(self._packet(0, ulaw_encode(pcm)), self._remote)
        self._ts += 160


def tone_share(
    frames: list[tuple[float, np.ndarray]], start: float, end: float, hz: float, purity: float = 0.0
) -> float:
    """Share of the frames received in [start, end) that carry the tone at ``hz`` (the peers send
    it at 6000; speech rarely reaches half that in one exact DFT bin); with ``purity``, the tone
    must also be that share of the frame's power (a tone heard alone, not a vowel's formant)."""
    basis = np.exp(-2j * np.pi * hz * np.arange(160) / 8000)
    window = [f.astype(np.float64) for t, f in frames if start <= t < end and f.size == 160]
    if not window:
        return 0.0

    def has_tone(frame: np.ndarray) -> bool:
        level = 2 * abs(np.dot(frame, basis)) / 160
        return bool(level >= 3000 and level**2 / 2 >= purity * float(np.mean(frame**2)))

    return sum(1 for f in window if has_tone(f)) / len(window)


def profile(frames: list[tuple[float, np.ndarray]], start: float, hz: float) -> list[float]:
    """The tone's share per half second from ``start`` on, for failure messages."""
    return [round(tone_share(frames, start + k / 2, start + (k + 1) / 2, hz, 0.6), 2) for k in range(24)]


def loud_share(frames: list[tuple[float, np.ndarray]], start: float, end: float) -> float:
    window = [f.astype(np.float64) for t, f in frames if start <= t < end]
    return sum(1 for f in window if np.sqrt(np.mean(f**2)) > 300) / max(1, len(window))


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def start_rtp_caller(ivr: Any, workdir: Path, rtp: RtpPeer, timeout_s: float = 60.0) -> subprocess.Popen[str]:
    """A sipp caller (``supervisor_caller.xml``) whose audio is ``rtp``'s; runs in ``workdir``."""
    cmd = sipp_command(
        SIP_DIR / "supervisor_caller.xml",
        f"127.0.0.1:{ivr.port}",
        local_port=free_port(),
        timeout_s=timeout_s,
        extra=("-key", "rtp_port", str(rtp.port)),
    )
    return subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def connected_call(ivr: Any) -> tuple[str, str]:
    """(call id, short id) of the first call ``serve`` logged as connected."""
    connected = ivr.wait_for("call.connected")[0]
    return connected.split("call_id=")[1].split()[0], connected.split("short_id=")[1].split()[0]


def listen_then_barge(ivr: Any, caller: RtpPeer, supervisor: RtpPeer) -> tuple[float, float]:
    """Once the supervisor is in (listen mode): the supervisor talks throughout; for a second only
    the bot speaks, then the caller talks for a second; then key 5. Returns (listen, barge) times
    (``time.monotonic()``) for :func:`assert_listened`."""
    supervisor.talking.set()
    listen_at = time.monotonic()
    time.sleep(1.0)  # the bot's long greeting plays on; the caller is silent
    caller.talking.set()
    time.sleep(1.0)
    caller.talking.clear()
    supervisor.press("5")
    ivr.wait_for("call.supervision_mode_changed", timeout=5)
    return listen_at, time.monotonic()


def assert_listened(caller: RtpPeer, supervisor: RtpPeer, listen_at: float, barge_at: float) -> None:
    """Listen mode as :func:`listen_then_barge` played it: the supervisor heard the bot, then the
    caller's burst too, while the caller heard none of the supervisor."""
    # Speech has pauses between words: half of the frames were loud in one run, most in others.
    assert loud_share(supervisor.received, listen_at + 0.1, listen_at + 0.9) > 0.3, (
        "the supervisor hears the bot"
    )
    assert tone_share(supervisor.received, listen_at + 1.2, listen_at + 1.9, CALLER_HZ) > 0.6, (
        "and the caller"
    )
    heard = tone_share(caller.received, listen_at, barge_at - 0.6, SUPERVISOR_HZ, purity=0.6)
    assert heard < 0.02, f"the caller heard the listening supervisor in {heard:.0%} of the frames"
