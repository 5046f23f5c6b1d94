"""The live calls page in Chromium: a call's events published on the real Mosquitto (the JSON
of supervision/event_schemas/, validated before sending) appear without a reload; a supervisor
gets Listen / Barge / Take over and sees the engine's answer; a manager is refused."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import jsonschema
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import Page, expect

from supervision.event_catalog import load_schema, schema_name
from tests.browser.conftest import MQTT_BROKER, ConsoleServer, screenshot
from tests.mqtt_broker import require_broker

pytestmark = [pytest.mark.slow]


def call_events(call_id: str) -> list[tuple[str, dict[str, object]]]:
    """One call as the engine publishes it: connected, a step, the caller's words, an alert."""
    ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return [
        ("connected", {"direction": "inbound", "remote": "sip:*******67@pbx", "flow": "hotline", "ts": ts}),
        ("step", {"step": "ask_reason", "at_s": 2.5, "ts": ts}),
        (
            "transcript",
            {
                "speaker": "caller",
                "kind": "final",
                "text": "I want to talk to my lawyer about this",
                "start_s": 3.0,
                "end_s": 5.2,
                "confidence": 0.91,
                "at": "2026-03-02T10:00:05Z",
                "ts": ts,
            },
        ),
        (
            "alert",
            {
                "rule": "legal_threat",
                "kind": "phrase",
                "severity": "high",
                "at_s": 5.2,
                "evidence": "lawyer",
                "ts": ts,
            },
        ),
    ]


def publisher() -> mqtt.Client:
    require_broker()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:10]}")
    connected = threading.Event()
    client.on_connect = lambda *_args: connected.set()
    client.connect(*MQTT_BROKER)
    client.loop_start()
    assert connected.wait(10), "the broker never acknowledged the connection"
    return client


def publish_call(client: mqtt.Client, prefix: str, call_id: str) -> None:
    for event, body in call_events(call_id):
        topic = f"{prefix}/call/{call_id}/{event}"
        name = schema_name(topic, prefix)
        assert name is not None, topic
        jsonschema.validate(body, load_schema(name))
        client.publish(topic, json.dumps(body), qos=1).wait_for_publish(5)


def test_a_supervisor_watches_a_call_live_and_asks_to_listen(
    page_as: Callable[..., Page], console_server: ConsoleServer
) -> None:
    page = page_as("supervisor")
    page.goto(console_server.base_url + "/live")
    expect(page.locator("#no-phone")).to_contain_text("no supervisor roster")
    name = page.locator(".who").inner_text().split()[0]
    roster = console_server.data_dir / "supervisors.yaml"
    roster.write_text(f'users:\n  {name}: {{sip_uris: ["sip:{name}@pbx.example.com"]}}\n')
    roster.chmod(0o600)
    page.goto(console_server.base_url + "/live")
    expect(page.locator("#supervise-panel")).to_contain_text(f"sip:{name}@pbx.example.com")
    expect(page.locator("#live-text")).to_have_text("live", timeout=10_000)
    # the console subscribes when the first viewer opens the page; the board says when it is live
    expect(page.locator("#feed-status")).to_have_count(0, timeout=15_000)
    call_id = f"20260302T100000-{uuid.uuid4().hex[:12]}"
    card = page.locator(f"#call-{call_id}")
    client = publisher()
    try:
        publish_call(client, console_server.mqtt_prefix, call_id)
        published = time.monotonic()
        expect(card).to_have_count(1, timeout=5000)
        shown_after = time.monotonic() - published
    finally:
        client.loop_stop()
        client.disconnect()
    assert shown_after < 5.0, f"the call showed {shown_after:.1f} s after its events"
    expect(card.locator(".step")).to_have_text("step ask_reason", timeout=5000)
    expect(card.locator("table.transcript")).to_contain_text("I want to talk to my lawyer about this")
    expect(card.locator(".alert.high")).to_contain_text("legal_threat: lawyer")
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1  # never reloaded

    # No serve runs here: the request is shown with the reason it went nowhere (and audited).
    card.get_by_role("button", name="Take over").click()
    result = page.locator("#supervise-result")
    expect(result).to_contain_text("Take over not sent: no running serve under")
    expect(result).to_have_class("refused")
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    screenshot(page, "live")


def test_a_manager_is_refused_the_live_page(
    page_as: Callable[..., Page], console_server: ConsoleServer
) -> None:
    page = page_as("manager")
    answer = page.goto(console_server.base_url + "/live")
    assert answer is not None and answer.status == 403
    assert page.locator("#board").count() == 0 and "live.view" in page.content()
    assert page.locator("form.supervise").count() == 0
