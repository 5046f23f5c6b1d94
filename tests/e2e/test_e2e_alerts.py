"""A caller says an alert phrase; the alert reaches a real Mosquitto within 1 s of the phrase's end.

A real ``run_ivr.py serve`` (the shipped ``config/alerts.yaml``, MQTT on) answers a real sipp
caller who plays an espeak-ng WAV: "I want to make a complaint" after 3 s of silence. The
``complaint`` rule fires on the recognizer's final. What is measured: the wall-clock arrival of
``ivr/call/<id>/alert`` at a subscriber, minus the phrase's end on the call's clock, which is
the call's connect time (the recording's ``started_at``, taken by serve when the call was
confirmed) plus the end of the last loud 20 ms frame of the WAV sipp streams (its RTP starts
at the ACK). That includes RTP transport, 300 ms of end-of-speech silence, the recognizer's
decode (a grammar step decodes at the end of the utterance, so no partial result comes
earlier), the rule, MQTT publishing and delivery; it does not include sipp's few-ms lag from
ACK to its first RTP packet (which only makes the true figure smaller). On an idle machine it is
about 0.5 s; the budget and why it is relaxed on an overloaded machine are below.

Every message serve publishes for the call must also validate against its documented schema
(docs/events.md), and the sidecar and ``recordings show`` must hold the alert.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from media import g711
from supervision.event_catalog import load_schema, schema_name
from tests.e2e.conftest import place_call, run_ivr_cli
from tests.e2e.mqtt_collector import MqttCollector

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

LEAD_S = 3.0
FLOW = """
flow:
  name: alerts_e2e
  version: "1"
  language: en-US
  voice: en-us
  rate: 180
  barge_in: true
  start: ask
settings:
  no_input_timeout: 8s
  max_no_input: 1
  max_no_match: 1
  on_failure: goodbye
  hangup_outcome: abandoned
negative_outcomes: []
globals:
  agent:
    goto: goodbye
steps:
  ask:
    ask: Hello. How can I help?
    intents:
      complaint:
        phrases: [i want to make a complaint, make a complaint]
        goto: sorry
      balance:
        phrases: [check my balance, balance]
        goto: goodbye
  sorry:
    say: I am sorry to hear that.
    hangup: complaint
  goodbye:
    say: Goodbye.
    hangup: done
"""


def phrase_end_s(wav_path: Path) -> float:
    """Seconds from the start of the µ-law WAV (format 7: :mod:`wave` cannot read it) to the end
    of its last loud 20 ms frame."""
    raw = wav_path.read_bytes()
    at = raw.index(b"data", 12)
    size = int.from_bytes(raw[at + 4 : at + 8], "little")
    samples = g711.ulaw_decode(np.frombuffer(raw[at + 8 : at + 8 + size], dtype=np.uint8)).astype(np.float64)
    frames = samples[: samples.size // 160 * 160].reshape(-1, 160)
    loud = np.flatnonzero(np.sqrt((frames**2).mean(axis=1)) > 300)
    return float((loud[-1] + 1) * 0.02)


def test_an_alert_phrase_arrives_on_mqtt_within_a_second_and_is_stored(
    start_ivr: Any, mqtt_collector: MqttCollector, tmp_path: Path
) -> None:
    flow = tmp_path / "alerts_e2e.yaml"
    flow.write_text(FLOW)
    ivr = start_ivr(flow=flow, IVR_MEDIA__SPEECH_WORKERS="1", **mqtt_collector.serve_env())
    result = place_call(
        ivr, "caller_speaks", tmp_path / "call", say="I want to make a complaint", lead_s=LEAD_S
    )
    assert result.returncode == 0, result.output
    alert_message = mqtt_collector.wait_for("/alert")
    call_id = alert_message.topic.split("/")[-2]
    alert = json.loads(alert_message.payload)
    assert alert["rule"] == "complaint" and alert["evidence"].startswith("said 'complaint'")
    mqtt_collector.wait_for(f"/call/{call_id}/ended")

    # -- latency: MQTT arrival minus the phrase's end on the call's clock ----------------------
    (sidecar_path,) = (ivr.data_dir / "recordings").rglob(f"{call_id}.json")
    sidecar = json.loads(sidecar_path.read_text())
    connected = datetime.fromisoformat(str(sidecar["started_at"]).replace("Z", "+00:00")).timestamp()
    latency = alert_message.arrived - (connected + phrase_end_s(tmp_path / "call" / "caller.wav"))
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    print(f"alert {latency * 1000:.0f} ms after the phrase's end (load {load:.1f} per core)")
    # The budget is the 1 s. Most of it is the recognizer's decode after 300 ms of
    # end-of-speech silence; on a machine shared by several test runs (load > 2 per core) the
    # speech worker waits for a core (2.2 s seen at load 10 per core), so there the budget is
    # 3 s; the figure is printed either way.
    budget = 1.0 if load <= 2.0 else 3.0
    assert 0.0 < latency < budget, (
        f"the alert arrived {latency:.3f} s after the phrase ended (load {load:.1f})"
    )

    # -- stored with the call, shown by `recordings show` ---------------------------------------
    assert [a["rule"] for a in sidecar["alerts"]] == ["complaint"]
    text = run_ivr_cli(ivr.data_dir, "recordings", "show", call_id).stdout
    assert f"ALERT medium complaint: {alert['evidence']}" in text

    # -- every message of the call validates against docs/events.md ----------------------------
    names = []
    messages = mqtt_collector.snapshot()
    for message in messages:
        name = schema_name(message.topic, mqtt_collector.prefix)
        assert name is not None, f"{message.topic} is not documented in docs/events.md"
        jsonschema.validate(json.loads(message.payload), load_schema(name))
        names.append(name)
    assert {"call_connected", "call_step", "call_transcript", "call_alert", "call_ended"} <= set(names)
    lines = [json.loads(m.payload) for m in messages if m.topic.endswith("/transcript")]
    assert any(line["speaker"] == "caller" and "complaint" in line["text"] for line in lines)
