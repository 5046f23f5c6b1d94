"""The console's live calls page over a real Mosquitto (127.0.0.1:1883; skipped if absent,
unless CI=true): call events published on the broker show up on the page and its event stream;
only ``live.view`` may look."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from starlette.testclient import TestClient

import console.live_pages
from config.settings import MqttSettings
from console.live_pages import MAX_MESSAGE_BYTES, LiveFeed
from console.web import ConsoleContext
from tests.mqtt_broker import HOST, PORT, require_broker

pytestmark = pytest.mark.component


@pytest.fixture(autouse=True)
def _broker_reachable() -> None:
    require_broker()


def publish(prefix: str, events: list[tuple[str, dict[str, object]]]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.connect(HOST, PORT)
    client.loop_start()
    try:
        for suffix, payload in events:
            client.publish(f"{prefix}/{suffix}", json.dumps(payload), qos=1).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()


def wait_for(client: TestClient, text: str, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    page = ""
    while time.monotonic() < deadline:
        page = str(client.get("/live").text)
        if text in page:
            return page
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never showed on /live; last page:\n{page[-1500:]}")


def test_live_calls_show_what_the_broker_carries(
    client_as: Callable[..., TestClient], console_context: ConsoleContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"test-{uuid.uuid4().hex[:10]}/ivr"
    mqtt_settings = MqttSettings(enabled=True, host=HOST, port=PORT, topic_prefix=prefix)
    console_context.settings = dataclasses.replace(console_context.settings, mqtt=mqtt_settings)
    monkeypatch.setattr(console.live_pages, "STREAM_S", 1.0)
    supervisor = client_as("supervisor")
    with supervisor:
        assert "No call in progress" in supervisor.get("/live").text
        deadline = time.monotonic() + 15
        while 'id="feed-status"' in supervisor.get("/live").text:  # "connecting": not subscribed yet
            assert time.monotonic() < deadline, "the live feed never subscribed"
            time.sleep(0.1)
        publish(
            prefix,
            [
                (
                    "call/c-77/connected",
                    {"direction": "inbound", "remote": "+49******5678", "flow": "hotline"},
                ),
                ("call/c-77/step", {"step": "menu", "at_s": 0.0}),
                ("call/c-77/transcript", {"speaker": "caller", "kind": "final", "text": "get me a lawyer"}),
                (
                    "call/c-77/alert",
                    {"rule": "legal_threat", "severity": "high", "evidence": "said 'lawyer'", "at_s": 4.2},
                ),
                (
                    "call/c-77/transcript",
                    {"speaker": "caller", "kind": "final", "text": "<script>alert(1)</script>"},
                ),
            ],
        )
        page = wait_for(supervisor, "legal_threat")
        assert "hotline" in page and "step menu" in page and "get me a lawyer" in page
        assert "<script>alert(1)" not in page and "&lt;script&gt;" in page, "caller text is escaped"
        stream = supervisor.get("/live/events").text
        assert stream.startswith("retry: 2000") and "event: board" in stream and "legal_threat" in stream
    auditor = client_as("auditor")
    assert auditor.get("/live").status_code == 403
    assert auditor.get("/live/events").status_code == 403


def test_the_feed_ignores_what_is_not_a_call_event() -> None:
    feed = LiveFeed(MqttSettings(topic_prefix="ivr"))
    now = datetime.now(UTC)
    assert not feed.fold("ivr/call/c/step", b"\xff\xfe", now)
    assert not feed.fold("ivr/call/c/step", b"[" * 100_000, now)
    assert not feed.fold("ivr/call/c/step", b" " * (MAX_MESSAGE_BYTES + 1), now)
    assert not feed.fold("ivr/dialer/x/attempt", b"{}", now)
    assert feed.calls.rejected == 4 and feed.version == 0
    assert feed.fold("ivr/call/c/step", b'{"step": "menu", "at_s": 1}', now) and feed.version == 1
