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
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from media import g711
from supervision.event_catalog import load_schema, schema_name
from tests.e2e.conftest import ROOT, place_call

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

BROKER = ("127.0.0.1", 1883)
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


@dataclass
class Collector:
    """Every message under ``prefix/#`` with its wall-clock arrival time."""

    prefix: str
    messages: list[tuple[float, str, bytes]] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _subscribed: threading.Event = field(default_factory=threading.Event)
    client: mqtt.Client | None = None

    def start(self) -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex[:10]}")
        client.on_message = lambda _c, _u, m: self._add(m.topic, bytes(m.payload))
        client.on_subscribe = lambda *_args: self._subscribed.set()
        client.connect(*BROKER)
        client.loop_start()
        client.subscribe(f"{self.prefix}/#", qos=1)
        self.client = client
        assert self._subscribed.wait(10), "the broker never acknowledged the subscription"

    def _add(self, topic: str, payload: bytes) -> None:
        with self._cond:
            self.messages.append((time.time(), topic, payload))
            self._cond.notify_all()

    def wait_for(self, suffix: str, timeout: float = 30.0) -> tuple[float, str, bytes]:
        def find() -> tuple[float, str, bytes] | None:
            return next((m for m in self.messages if m[1].endswith(suffix)), None)

        with self._cond:
            self._cond.wait_for(lambda: find() is not None, timeout)
            found = find()
        assert found is not None, f"no */{suffix} within {timeout} s: {[m[1] for m in self.messages]}"
        return found


@pytest.fixture
def collector() -> Iterator[Collector]:
    try:
        socket.create_connection(BROKER, timeout=2).close()
    except OSError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Mosquitto is not reachable at {BROKER[0]}:{BROKER[1]}: {exc}")
        pytest.skip(f"Mosquitto is not reachable at {BROKER[0]}:{BROKER[1]}: {exc}")
    found = Collector(f"test-{uuid.uuid4().hex[:12]}")
    found.start()
    yield found
    if found.client is not None:
        found.client.loop_stop()
        found.client.disconnect()


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
    start_ivr: Any, collector: Collector, tmp_path: Path
) -> None:
    flow = tmp_path / "alerts_e2e.yaml"
    flow.write_text(FLOW)
    ivr = start_ivr(
        flow=flow,
        IVR_MQTT__ENABLED="true",
        IVR_MQTT__HOST=BROKER[0],
        IVR_MQTT__PORT=str(BROKER[1]),
        IVR_MQTT__TOPIC_PREFIX=collector.prefix,
        IVR_MEDIA__SPEECH_WORKERS="1",
    )
    result = place_call(
        ivr, "caller_speaks", tmp_path / "call", say="I want to make a complaint", lead_s=LEAD_S
    )
    assert result.returncode == 0, result.output
    arrived, topic, payload = collector.wait_for("/alert")
    call_id = topic.split("/")[-2]
    alert = json.loads(payload)
    assert alert["rule"] == "complaint" and alert["evidence"].startswith("said 'complaint'")
    collector.wait_for(f"/call/{call_id}/ended")

    # -- latency: MQTT arrival minus the phrase's end on the call's clock ----------------------
    (sidecar_path,) = (ivr.data_dir / "recordings").rglob(f"{call_id}.json")
    sidecar = json.loads(sidecar_path.read_text())
    connected = datetime.fromisoformat(str(sidecar["started_at"]).replace("Z", "+00:00")).timestamp()
    latency = arrived - (connected + phrase_end_s(tmp_path / "call" / "caller.wav"))
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
    show = [
        sys.executable,
        str(ROOT / "run_ivr.py"),
        "recordings",
        "show",
        call_id,
        "--data-dir",
        str(ivr.data_dir),
    ]
    text = subprocess.run(show, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert f"ALERT medium complaint: {alert['evidence']}" in text

    # -- every message of the call validates against docs/events.md ----------------------------
    names = []
    for _, topic_, body in list(collector.messages):
        name = schema_name(topic_, collector.prefix)
        assert name is not None, f"{topic_} is not documented in docs/events.md"
        jsonschema.validate(json.loads(body), load_schema(name))
        names.append(name)
    assert {"call_connected", "call_step", "call_transcript", "call_alert", "call_ended"} <= set(names)
    lines = [json.loads(b) for _, t, b in collector.messages if t.endswith("/transcript")]
    assert any(line["speaker"] == "caller" and "complaint" in line["text"] for line in lines)
