"""Real-time intake leads to a real call (issue 14): a running ``run_ivr.py dial`` takes one
contact from its MQTT topic (published with ``mosquitto_pub``) and one over HTTP, and a ``sipp``
callee (an answering machine, so the calls are short) gets an INVITE for each within seconds.

The campaign's only imported number is on the do-not-call list, so it is closed at import and
the dialer sits idle until the intake wakes it.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from ivr.sipp_peer import free_port, synthesize_caller_audio
from tests.e2e.campaign_runs import run_ivr
from tests.e2e.conftest import ROOT, sipp_uas
from tests.e2e.test_e2e_dialer_hours import invites

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LISTED = "+12025550100"  # on the do-not-call list: the import closes it at once
BY_MQTT = "+12025550143"
BY_HTTP = "+12025550144"
TOKEN = "e2e-intake-token-" + "x" * 16
BROKER = ("-h", "127.0.0.1", "-p", "1883", "-q", "1")
WITHIN_S = 8.0  # "dialled within seconds": the intake wakes an idle worker at once


def machine_audio(workdir: Path) -> None:
    greeting = synthesize_caller_audio(
        "Hi, this is Sam. Leave a message after the tone.", workdir / "greeting.wav", lead_s=0.3, tail_s=0.2
    )
    beep = ["synth", "0.6", "sine", "1000", "vol", "0.5", "pad", "0", "20"]
    ulaw = ["-r", "8000", "-c", "1", "-e", "u-law"]
    subprocess.run(["sox", "-n", *ulaw, str(workdir / "beep.wav"), *beep], check=True)
    out = str(workdir / "voicemail.wav")
    subprocess.run(["sox", str(greeting), str(workdir / "beep.wav"), "-e", "u-law", out], check=True)


def wait_for(log: Path, *events: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if all(f"event={e}" in text for e in events):
            return
        time.sleep(0.2)
    raise AssertionError(f"no {events} in the dialer's log:\n{log.read_text(errors='replace')[-3000:]}")


def test_a_contact_from_mqtt_or_http_is_dialled_within_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("mosquitto_pub") is None:
        pytest.fail("mosquitto_pub missing: apt-get install mosquitto-clients")
    monkeypatch.setenv("TZ", "UTC")  # sipp stamps its trace in local time
    data_dir = tmp_path / "data"
    run_ivr(data_dir, "campaign", "dnc", "add", LISTED, "--reason", "asked")
    calls = tmp_path / "calls.csv"
    calls.write_text(f"phone,first_name,last_name,timezone\n{LISTED},Ann,Lee,America/New_York\n")
    flow = str(ROOT / "flows" / "library" / "retention.yaml")
    hours = ("--hours", "00:00-24:00", "--max-attempts", "1")
    run_ivr(
        data_dir, "campaign", "import", "winback", str(calls), "--kind", "retention", "--flow", flow, *hours
    )
    run_ivr(data_dir, "campaign", "start", "winback")
    workdir = tmp_path / "callee"
    workdir.mkdir()
    machine_audio(workdir)
    peer, port = sipp_uas("uas_voicemail", workdir, 2, ("-trace_msg", "-message_file", "messages.log"))
    prefix = f"e2e{uuid.uuid4().hex[:10]}"
    http_port = free_port()
    log = tmp_path / "dial.log"
    with log.open("wb") as out:
        dial = subprocess.Popen(
            [sys.executable, str(ROOT / "run_ivr.py"), "dial", "--data-dir", str(data_dir)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "IVR_DIALER__TRUNK_URI": f"sip:{{number}}@127.0.0.1:{port}",
                "IVR_SIP__RTP_PORT_START": str(20000 + (port % 200) * 100),
                "IVR_SIP__RTP_PORT_RANGE": "100",
                "IVR_INTAKE__MQTT": "true",
                "IVR_MQTT__TOPIC_PREFIX": prefix,
                "IVR_INTAKE__HTTP_PORT": str(http_port),
                "IVR_INTAKE__TOKEN": TOKEN,
                "PYTHONUNBUFFERED": "1",
            },
        )
    try:
        wait_for(log, "intake.mqtt_subscribed", "intake.http_listening", "dialer.worker_started")
        results = subprocess.Popen(
            ["mosquitto_sub", *BROKER, "-C", "1", "-W", "30", "-t", f"{prefix}/dialer/intake/winback/result"],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.5)  # subscribed before the request is published
        request = {"phone": BY_MQTT, "timezone": "America/New_York", "request_id": "funnel-1"}
        by_mqtt_at = datetime.now(UTC)
        subprocess.run(
            ["mosquitto_pub", *BROKER, "-t", f"{prefix}/dialer/intake/winback", "-m", json.dumps(request)],
            check=True,
        )
        answer = json.loads(results.communicate(timeout=40)[0])
        assert (answer["status"], answer["code"], answer["request_id"]) == ("created", 201, "funnel-1")
        assert answer["dialable_now"] is True and BY_MQTT not in json.dumps(answer)  # masked
        by_http_at = datetime.now(UTC)
        reply = httpx.post(
            f"http://127.0.0.1:{http_port}/v1/campaigns/winback/contacts",
            headers={"Authorization": f"Bearer {TOKEN}"},
            json={"phone": BY_HTTP, "timezone": "America/New_York", "request_id": "funnel-2"},
            timeout=30,
        )
        assert reply.status_code == 201, reply.text
        assert peer.wait(60) == 0, (workdir / "sipp_errors.log").read_text(errors="replace")
    finally:
        dial.send_signal(signal.SIGINT)
        try:
            dial.wait(60)
        finally:
            if dial.poll() is None:
                dial.kill()
            if peer.poll() is None:
                peer.kill()
    seen = {number: at for number, at in invites(workdir / "messages.log").values()}
    assert set(seen) == {BY_MQTT, BY_HTTP}, seen  # never the listed number
    assert 0 < (seen[BY_MQTT] - by_mqtt_at).total_seconds() < WITHIN_S, (seen, by_mqtt_at)
    assert 0 < (seen[BY_HTTP] - by_http_at).total_seconds() < WITHIN_S, (seen, by_http_at)
    exported = tmp_path / "export.csv"
    run_ivr(data_dir, "campaign", "export", "winback", "--output", str(exported))
    with exported.open(newline="") as handle:
        rows = {r["phone"]: r for r in csv.DictReader(handle)}
    assert (rows[LISTED]["outcome"], rows[LISTED]["attempts"]) == ("do_not_call", "0")
    for number in (BY_MQTT, BY_HTTP):
        row = rows[number]
        assert (row["attempts"], row["last_result"]) == ("1", "answered_machine"), row
