"""A supervisor joins a live call from a SIP phone: listen, barge in (key 5), take over (key 6).

Real peers: ``serve``, a ``sipp`` caller and a ``sipp`` supervisor phone for the SIP, each with
a small RTP peer in this process for the audio (it records what its party hears and talks:
the caller a 400 Hz burst, the supervisor a steady 1 kHz tone, and the keys as RFC 2833
events). Who hears whom is asserted on the RTP each party received, and on the recording.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ivr.supervisor_client import send_request
from recordings.access_log import read_access_log
from recordings.database import open_index_database
from recordings.sidecar import read_sidecar
from supervision.event_catalog import load_schema, schema_name
from tests.e2e.conftest import ROOT, read_stereo, sipp_uas
from tests.e2e.mqtt_collector import MqttCollector
from tests.e2e.supervision_peers import (
    CALLER_HZ,
    SUPERVISOR_HZ,
    RtpPeer,
    assert_listened,
    connected_call,
    listen_then_barge,
    profile,
    start_rtp_caller,
    tone_share,
    wait_until,
)

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
ROSTER = """
users:
  alice: {roles: [supervisor], sip_uris: ["sip:alice@127.0.0.1:{port}"]}
  bob: {roles: [auditor], sip_uris: ["sip:bob@127.0.0.1:{port}"]}
"""


def supervise(ivr: Any, call_id: str, user: str, uri: str) -> subprocess.Popen[str]:
    """``run_ivr.py supervise`` in the background (the command line takes seconds to start)."""
    command = [sys.executable, str(ROOT / "run_ivr.py"), "supervise", call_id, "--mode", "listen"]
    command += ["--uri", uri, "--as", user, "--data-dir", str(ivr.data_dir)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def test_a_supervisor_listens_barges_in_and_takes_over(
    start_ivr: Any, tmp_path: Path, mqtt_collector: MqttCollector
) -> None:
    flow = tmp_path / "supervised_line.yaml"
    flow.write_text(FLOW)
    phone_dir, caller_dir = tmp_path / "phone", tmp_path / "caller"
    phone_dir.mkdir()
    caller_dir.mkdir()
    caller_rtp, supervisor_rtp = RtpPeer(CALLER_HZ), RtpPeer(SUPERVISOR_HZ)
    phone, phone_port = sipp_uas(
        "supervisor_phone", phone_dir, extra=("-key", "rtp_port", str(supervisor_rtp.port), "-d", "10000")
    )
    ivr = start_ivr(flow=flow, **mqtt_collector.serve_env())
    roster = ivr.data_dir / "supervisors.yaml"
    roster.write_text(ROSTER.replace("{port}", str(phone_port)))
    os.chmod(roster, 0o600)
    caller = start_rtp_caller(ivr, caller_dir, caller_rtp)
    try:
        call_id, _ = connected_call(ivr)

        joined = supervise(ivr, call_id, "alice", f"sip:alice@127.0.0.1:{phone_port}")
        assert joined.wait(30) == 0, joined.communicate()
        # A user without the supervisor role asks over the same socket: refused, and audited.
        bob = {"call_id": call_id, "mode": "barge", "uri": f"sip:bob@127.0.0.1:{phone_port}", "user": "bob"}
        refused = send_request(ivr.data_dir, bob)
        assert not refused["ok"] and "does not have the supervisor role" in refused["error"]
        ivr.wait_for("call.supervision_started", timeout=10)
        wait_until(lambda: supervisor_rtp.received, 5, "the supervisor's phone got no audio")
        listen_at, barge_at = listen_then_barge(ivr, caller_rtp, supervisor_rtp)
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

    assert_listened(caller_rtp, supervisor_rtp, listen_at, barge_at)
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
    (bob_step,) = [row.detail for row in rows if row.actor == "bob"]
    assert bob_step["step"] == "requested" and bob_step["allowed"] is False
    assert all(row.call_ids == (call_id,) for row in rows)
    assert ivr.stop() == 0
    # The same steps on MQTT, each valid against its documented schema.
    prefix = mqtt_collector.prefix
    published = mqtt_collector.snapshot()
    events = [(m.topic, json.loads(m.payload)) for m in published if m.topic.endswith("/supervision")]
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
