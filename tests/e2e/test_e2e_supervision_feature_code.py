"""A supervisor joins a live call by dialling ``*77<short id>`` and keying a PIN.

Real peers: ``serve``, a ``sipp`` caller and a ``sipp`` supervisor phone (a UAC dialling the
feature code), each with an RTP peer in this process (the caller talks a 400 Hz burst, the
supervisor a 1 kHz tone; the PIN goes as RFC 2833 events). The PIN is set with the real
``supervise-pin`` command. A wrong PIN three times is refused and audited; the right one joins
in listen mode (the supervisor hears both parties, the caller none of the supervisor), and key
5 barges in as with a rung phone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ivr.sipp_peer import free_port, sipp_command
from recordings.access_log import read_access_log
from recordings.database import open_index_database
from tests.e2e import supervision_peers as peers
from tests.e2e.conftest import ROOT, SIP_DIR
from tests.e2e.test_e2e_supervision import FLOW

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
PIN = "2468"


def dial_in(ivr: Any, short_id: str, port: int, rtp: peers.RtpPeer, workdir: Path) -> subprocess.Popen[str]:
    workdir.mkdir()
    cmd = sipp_command(
        SIP_DIR / "supervisor_dials_in.xml",
        f"127.0.0.1:{ivr.port}",
        local_port=port,
        timeout_s=45,
        service=f"*77{short_id}",
        extra=("-key", "rtp_port", str(rtp.port)),
    )
    return subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def key(rtp: peers.RtpPeer, digits: str) -> None:
    for digit in digits:
        rtp.press(digit)


def test_a_supervisor_dials_the_feature_code_and_keys_a_pin(start_ivr: Any, tmp_path: Path) -> None:
    flow = tmp_path / "supervised_line.yaml"
    flow.write_text(FLOW)
    phone_port = free_port()
    ivr = start_ivr(flow=flow)
    roster = ivr.data_dir / "supervisors.yaml"
    roster.write_text(
        f'users:\n  alice: {{roles: [supervisor], sip_uris: ["sip:alice@127.0.0.1:{phone_port}"]}}\n'
    )
    os.chmod(roster, 0o600)
    pin_cli = [
        sys.executable,
        str(ROOT / "run_ivr.py"),
        "supervise-pin",
        "alice",
        "--data-dir",
        str(ivr.data_dir),
    ]
    set_pin = subprocess.run(
        pin_cli, check=False, input=f"{PIN}\n", capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert set_pin.returncode == 0, set_pin.stderr
    stored = roster.read_text()
    assert "$argon2" in stored and PIN not in stored.replace("$argon2", "")
    assert roster.stat().st_mode & 0o777 == 0o600

    caller_dir = tmp_path / "caller"
    caller_dir.mkdir()
    caller_rtp = peers.RtpPeer(peers.CALLER_HZ, event_pt=101)
    caller = peers.start_rtp_caller(ivr, caller_dir, caller_rtp)
    intruder_rtp, supervisor_rtp = (
        peers.RtpPeer(peers.SUPERVISOR_HZ, event_pt=101),
        peers.RtpPeer(peers.SUPERVISOR_HZ, event_pt=101),
    )
    try:
        call_id, short_id = peers.connected_call(ivr)
        assert short_id.isdigit() and len(short_id) == 5

        # Someone with alice's phone but not her PIN: three wrong tries, then the engine hangs up.
        intruder = dial_in(ivr, short_id, phone_port, intruder_rtp, tmp_path / "intruder")
        for tries in (1, 2):
            peers.wait_until(lambda: intruder_rtp.received, 10, "the dialled-in phone got no audio")
            key(intruder_rtp, "1111#")
            ivr.wait_for("call.supervision_pin_wrong", count=tries, timeout=15)
        key(intruder_rtp, "9999#")
        assert intruder.wait(20) == 0, intruder.stdout.read() if intruder.stdout else ""
        assert not ivr.events("call.supervision_started")

        phone = dial_in(ivr, short_id, phone_port, supervisor_rtp, tmp_path / "phone")
        peers.wait_until(lambda: supervisor_rtp.received, 10, "the dialled-in phone got no audio")
        key(supervisor_rtp, f"{PIN}#")
        ivr.wait_for("call.supervision_started", timeout=15)
        listen_at, barge_at = peers.listen_then_barge(ivr, caller_rtp, supervisor_rtp)
        time.sleep(1.5)
    finally:
        for peer in (caller_rtp, intruder_rtp, supervisor_rtp):
            peer.close()
    assert ivr.stop() == 0  # BYE to the caller and the supervisor's phone
    for sipp in (caller, phone):
        assert sipp.wait(15) == 0, sipp.stdout.read() if sipp.stdout else ""

    peers.assert_listened(caller_rtp, supervisor_rtp, listen_at, barge_at)
    barged = peers.tone_share(
        caller_rtp.received, barge_at + 0.3, barge_at + 1.4, peers.SUPERVISOR_HZ, purity=0.6
    )
    assert barged > 0.7, "the caller hears the supervisor once barged in"

    engine = open_index_database(f"sqlite:///{ivr.data_dir / 'ivr.sqlite3'}")
    rows = [row for row in read_access_log(engine) if row.action == "supervise"]
    engine.dispose()
    steps = [(row.detail["step"], row.detail.get("allowed")) for row in rows]
    assert steps[:3] == [("pin_wrong", None), ("pin_wrong", None), ("requested", False)], steps
    assert rows[2].detail["decision"] == "wrong PIN, no tries left" and rows[2].call_ids == ()
    assert steps[3:6] == [("requested", True), ("started", None), ("mode_changed", None)], steps
    assert all(row.actor == "alice" and row.detail["via"] == "feature_code" for row in rows[:4])
    assert all(row.call_ids == (call_id,) for row in rows[3:])
    assert all(PIN not in str(row.detail) for row in rows)
