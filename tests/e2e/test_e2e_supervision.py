"""A supervisor joins a live call from a SIP phone: listen, barge in (key 5), take over (key 6).

Real peers: ``serve``, a ``sipp`` caller and a ``sipp`` supervisor phone for the SIP, each with
a small RTP peer in this process for the audio (it records what its party hears and talks:
the caller a 400 Hz burst, the supervisor a steady 1 kHz tone, and the keys as RFC 2833
events). Who hears whom is asserted on the RTP each party received, and on the recording.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ivr.sipp_peer import free_port, sipp_command
from ivr.supervisor_client import send_request
from media.g711 import ulaw_decode, ulaw_encode
from recordings.access_log import read_access_log
from recordings.database import open_index_database
from recordings.sidecar import read_sidecar
from supervision.event_catalog import load_schema, schema_name
from tests.e2e.conftest import ROOT, SIP_DIR, read_stereo, sipp_uas

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FLOW = """
flow: {name: supervised_line, barge_in: false, start: greet}
globals: {agent: false, goodbye: false}
settings: {no_input_timeout: 30s}
steps:
  greet:
    say: >-
      Welcome to the supervised line. This call may be monitored by a team lead for quality and
      training. Please listen carefully, because our menu options have changed recently, and we
      want to be sure that you reach the right person the first time you call us today. Our
      opening hours are eight in the morning to eight in the evening, Monday to Friday, and nine
      to five on Saturdays. You can also find answers to the most common questions on our
      website, where you can check your balance, order a new card, or update your address. If
      you are calling about a card that was lost or stolen, please stay on the line, because we
      will block it for you right away, and a new card will reach you within five working days.
    ask: How can I help you?
    intents:
      balance: {phrases: [balance], goto: done}
  done:
    say: Thanks.
    hangup: served
"""
SUPERVISOR_HZ = 1000.0  # on an exact 20 ms DFT bin, as is CALLER_HZ
CALLER_HZ = 400.0
ROSTER = """
users:
  alice: {roles: [supervisor], sip_uris: ["sip:alice@127.0.0.1:{port}"]}
  bob: {roles: [auditor], sip_uris: ["sip:bob@127.0.0.1:{port}"]}
"""


BROKER = ("127.0.0.1", 1883)


@pytest.fixture
def mqtt_messages() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """A unique topic prefix on the real Mosquitto, and every message published under it."""
    try:
        socket.create_connection(BROKER, timeout=2).close()
    except OSError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Mosquitto is not reachable at {BROKER[0]}:{BROKER[1]}: {exc}")
        pytest.skip(f"Mosquitto is not reachable at {BROKER[0]}:{BROKER[1]}: {exc}")
    prefix, messages, subscribed = f"test-{uuid.uuid4().hex[:12]}", [], threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex[:10]}")
    client.on_message = lambda _c, _u, m: messages.append((m.topic, bytes(m.payload)))
    client.on_subscribe = lambda *_args: subscribed.set()
    client.connect(*BROKER)
    client.loop_start()
    client.subscribe(f"{prefix}/#", qos=1)
    assert subscribed.wait(10), "the broker never acknowledged the subscription"
    yield prefix, messages
    client.loop_stop()
    client.disconnect()


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


def supervise(ivr: Any, call_id: str, user: str, uri: str) -> subprocess.Popen[str]:
    """``run_ivr.py supervise`` in the background (the command line takes seconds to start)."""
    command = [sys.executable, str(ROOT / "run_ivr.py"), "supervise", call_id, "--mode", "listen"]
    command += ["--uri", uri, "--as", user, "--data-dir", str(ivr.data_dir)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_a_supervisor_listens_barges_in_and_takes_over(
    start_ivr: Any, tmp_path: Path, mqtt_messages: tuple[str, list[tuple[str, bytes]]]
) -> None:
    prefix, published = mqtt_messages
    flow = tmp_path / "supervised_line.yaml"
    flow.write_text(FLOW)
    phone_dir, caller_dir = tmp_path / "phone", tmp_path / "caller"
    phone_dir.mkdir()
    caller_dir.mkdir()
    caller_rtp, supervisor_rtp = RtpPeer(CALLER_HZ), RtpPeer(SUPERVISOR_HZ)
    phone, phone_port = sipp_uas(
        "supervisor_phone", phone_dir, extra=("-key", "rtp_port", str(supervisor_rtp.port), "-d", "10000")
    )
    ivr = start_ivr(
        flow=flow,
        IVR_MQTT__ENABLED="true",
        IVR_MQTT__HOST=BROKER[0],
        IVR_MQTT__PORT=str(BROKER[1]),
        IVR_MQTT__TOPIC_PREFIX=prefix,
    )
    roster = ivr.data_dir / "supervisors.yaml"
    roster.write_text(ROSTER.replace("{port}", str(phone_port)))
    os.chmod(roster, 0o600)
    cmd = sipp_command(
        SIP_DIR / "supervisor_caller.xml",
        f"127.0.0.1:{ivr.port}",
        local_port=free_port(),
        timeout_s=60,
        extra=("-key", "rtp_port", str(caller_rtp.port)),
    )
    caller = subprocess.Popen(
        cmd, cwd=caller_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        connected = ivr.wait_for("call.connected")[0]
        call_id = connected.split("call_id=")[1].split()[0]

        joined = supervise(ivr, call_id, "alice", f"sip:alice@127.0.0.1:{phone_port}")
        assert joined.wait(30) == 0, joined.communicate()
        # A user without the supervisor role asks over the same socket: refused, and audited.
        bob = {"call_id": call_id, "mode": "barge", "uri": f"sip:bob@127.0.0.1:{phone_port}", "user": "bob"}
        refused = send_request(ivr.data_dir, bob)
        assert not refused["ok"] and "does not have the supervisor role" in refused["error"]
        ivr.wait_for("call.supervision_started", timeout=10)
        wait_until(lambda: supervisor_rtp.received, 5, "the supervisor's phone got no audio")
        supervisor_rtp.talking.set()  # the supervisor talks from now on
        listen_at = time.monotonic()
        time.sleep(1.0)  # the bot's long greeting plays on; the caller is silent
        caller_rtp.talking.set()
        time.sleep(1.0)
        caller_rtp.talking.clear()
        supervisor_rtp.press("5")
        ivr.wait_for("call.supervision_mode_changed", timeout=5)
        barge_at = time.monotonic()
        time.sleep(2.0)
        supervisor_rtp.press("6")
        ivr.wait_for("call.supervision_mode_changed", count=2, timeout=5)
        takeover_at = time.monotonic()
        assert caller.wait(30) == 0, (
            caller.stdout.read() if caller.stdout else ""
        )  # BYE when the supervisor left
        assert phone.wait(10) == 0, (phone_dir / "sipp_errors.log").read_text(errors="replace")
    finally:
        caller_rtp.close()
        supervisor_rtp.close()
        if caller.poll() is None:
            caller.kill()
    ivr.wait_for("call.ended")

    heard_by_supervisor = supervisor_rtp.received
    # Listen: the supervisor hears the bot (the caller silent), then the caller's burst too ...
    # (speech has pauses between words: half of the frames were loud in one run, most in others)
    assert loud_share(heard_by_supervisor, listen_at + 0.1, listen_at + 0.9) > 0.3
    assert tone_share(heard_by_supervisor, listen_at + 1.2, listen_at + 1.9, CALLER_HZ) > 0.6
    # ... while the caller hears none of the supervisor.
    assert tone_share(caller_rtp.received, listen_at, barge_at - 0.6, SUPERVISOR_HZ, purity=0.6) < 0.02
    # Barge and take-over: the caller hears the supervisor.
    timeline = (
        f"caller hears 1 kHz per 0.5 s from listen: {profile(caller_rtp.received, listen_at, SUPERVISOR_HZ)}"
    )
    timeline += f"; barge at +{barge_at - listen_at:.2f}, take-over at +{takeover_at - listen_at:.2f} s"
    barged = tone_share(caller_rtp.received, barge_at + 0.3, takeover_at - 0.3, SUPERVISOR_HZ, purity=0.6)
    taken = tone_share(caller_rtp.received, takeover_at + 0.3, takeover_at + 1.5, SUPERVISOR_HZ, purity=0.6)
    assert barged > 0.7 and taken > 0.7, timeline

    (sidecar_file,) = (ivr.data_dir / "recordings").glob(f"*/*/*/{call_id}.json")
    sidecar = read_sidecar(sidecar_file)
    assert sidecar.outcome == "taken_over"
    assert [(m.event, m.mode) for m in sidecar.supervision] == [
        ("started", "listen"),
        ("mode_changed", "barge"),
        ("mode_changed", "takeover"),
        ("ended", None),
    ]
    assert {m.user for m in sidecar.supervision} == {"alice"}
    (turn,) = [t for t in sidecar.turns if t.speaker == "supervisor"]
    assert turn.end_s - turn.start_s > 3.0
    caller_track, bot_track = read_stereo(sidecar_file.with_name(sidecar.wav_name))
    start, end = int(turn.start_s * 8000), int(turn.end_s * 8000)
    frames = [(i / 50, bot_track[i * 160 : (i + 1) * 160]) for i in range(start // 160, end // 160)]
    assert tone_share(frames, 0, 1e9, SUPERVISOR_HZ) > 0.7, "the supervisor is on the bot track"
    whole_caller = [(i / 50, caller_track[i * 160 : (i + 1) * 160]) for i in range(caller_track.size // 160)]
    assert tone_share(whole_caller, 0, 1e9, SUPERVISOR_HZ) < 0.01, "never on the caller track"

    engine = open_index_database(f"sqlite:///{ivr.data_dir / 'ivr.sqlite3'}")
    rows = [row for row in read_access_log(engine) if row.action == "supervise"]
    engine.dispose()
    alice = [row.detail["step"] for row in rows if row.actor == "alice"]
    assert alice == ["requested", "started", "mode_changed", "mode_changed", "ended"]
    assert rows[0].detail["allowed"] is True and rows[0].os_user.endswith(f"(uid {os.geteuid()})")
    (bob,) = [row.detail for row in rows if row.actor == "bob"]
    assert bob["step"] == "requested" and bob["allowed"] is False
    assert all(row.call_ids == (call_id,) for row in rows)
    assert ivr.stop() == 0
    # The same steps on MQTT, each valid against its documented schema.
    events = [(topic, json.loads(body)) for topic, body in published if topic.endswith("/supervision")]
    for topic, body in events:
        assert (
            topic == f"{prefix}/call/{call_id}/supervision"
            and schema_name(topic, prefix) == "call_supervision"
        )
        jsonschema.validate(body, load_schema("call_supervision"))
    assert [(body["event"], body["mode"]) for _, body in events] == [
        ("started", "listen"),
        ("mode_changed", "barge"),
        ("mode_changed", "takeover"),
        ("ended", None),
    ]
