"""Real published messages validate against docs/events.md's schemas: a payment call replayed
through the call core and a dialer run, both publishing through the real MQTT publisher to the
real Mosquitto at 127.0.0.1:1883 (skipped if absent, unless CI=true)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from pathlib import Path

import aiomqtt
import jsonschema
import pytest

from config.settings import PROJECT_ROOT, MediaSettings, MqttSettings
from dialer.call_result import CallResult
from dialer.db import make_engine, upgrade_database
from dialer.pacing import Pacer
from dialer.store import DialerStore
from dialer.worker import DialerWorker, WorkerConfig
from flows import FlowSession
from ivr.call_core import CallCore
from ivr.call_reports import CallReports
from ivr.call_vocabulary import AsrResults, Connected, DigitReceived, Publish, RaiseAlert
from ivr.event_publisher import EventPublisher, MqttEventPublisher, create_publisher
from ivr.sip_events import CallOffered
from media.pipeline import AsrPartial, CallMediaPipeline
from recordings import RecordingInfo
from supervision.alert_rules import load_rules
from supervision.alerts import AlertEngine
from supervision.event_catalog import load_schema, schema_name
from tests.component.dialer.dialer_data_fakes import FakeClock, Scripted, ScriptedPlacer
from tests.component.dialer.dialer_data_helpers import ALWAYS_OPEN, T0, add_contacts, make_campaign
from tests.mqtt_broker import HOST, PORT, require_broker
from tests.unit.ivr.call_replay import T0 as CALL_T0
from tests.unit.ivr.call_replay import WALL_OFFSET, LoudnessVad, SimulatedCall, load_test_flow
from tests.unit.supervision.test_supervision_call_watch import FLOW

pytestmark = pytest.mark.component


@pytest.fixture(scope="module", autouse=True)
def _broker_reachable() -> None:
    require_broker()


def replay_payment_call(tmp_path: Path, publisher: EventPublisher) -> None:
    """A caller picks "balance", keys a card number in a paused step, and mentions a lawyer."""
    flow = load_test_flow(tmp_path, FLOW)
    offered = CallOffered(1, "inbound", "sip-1", "sip:+4915112345678@pbx", "sip:hotline@ivr", CALL_T0)
    reports = CallReports("call-1", offered, publisher)
    reports.connected("PCMU", flow.metadata.name)
    engine = AlertEngine(load_rules(PROJECT_ROOT / "config" / "alerts.yaml"), flow.metadata.name)
    pipeline = CallMediaPipeline(MediaSettings(), vad=LoudnessVad(), in_band_dtmf=False)
    core = CallCore(
        "call-1",
        FlowSession(flow, {}, None),
        pipeline,
        connected_at=CALL_T0,
        wall_offset=WALL_OFFSET,
        max_duration_s=600,
        alerts=engine,
    )
    call = SimulatedCall(core)
    call.feed(Connected())
    call.until_quiet()
    call.feed(AsrResults([AsrPartial("i want my", call.core.caller_position_s)]))
    call.hear("I want my balance or I call my lawyer")
    call.until_quiet()
    for key in "4929":
        call.feed(DigitReceived(key, "rfc2833"))
    call.until_quiet()
    for _, command in call.log:
        if isinstance(command, Publish):
            reports.publish(command.event, dict(command.payload))
        elif isinstance(command, RaiseAlert):
            reports.publish("alert", dict(command.payload))
    info = RecordingInfo("call-1", tmp_path / "a.wav", tmp_path / "a.json", "complete", 9.5, "0" * 64, 5, 1)
    reports.ended("paid", None, info)


async def dialer_run(tmp_path: Path, publisher: EventPublisher) -> None:
    url = f"sqlite:///{tmp_path / 'dialer.sqlite3'}"
    upgrade_database(url)
    engine = make_engine(url)
    try:
        campaign = make_campaign(engine, calling_hours=ALWAYS_OPEN, retry={"busy": "5m", "max_attempts": 2})
        add_contacts(engine, campaign, 1)
        add_contacts(engine, campaign, 1, start=T0 - timedelta(hours=30), first_phone=13900000000)
        clock = FakeClock(T0)
        placer = ScriptedPlacer(clock, {"+8613800000000": [Scripted(CallResult.BUSY, sip_status=486)] * 2})
        config = WorkerConfig(owner="w1", trunk_uri="sip:{number}@trunk.example", ring_timeout_s=25)
        store = DialerStore(engine, timedelta(minutes=5))
        worker = DialerWorker(store, Pacer(2, 10.0), placer, clock, config, events=publisher)
        await worker.housekeeping()
        for _ in range(2):
            for _ in range(3):
                await worker.tick()
                await worker.wait_idle()
                clock.advance(1)
            clock.advance(300)
    finally:
        engine.dispose()


def test_published_call_and_dialer_events_match_their_schemas(tmp_path: Path) -> None:
    prefix = f"test-{uuid.uuid4().hex[:12]}/ivr"
    settings = MqttSettings(enabled=True, host=HOST, port=PORT, topic_prefix=prefix)

    async def scenario() -> list[aiomqtt.Message]:
        received: list[aiomqtt.Message] = []
        async with aiomqtt.Client(HOST, PORT, identifier=f"sub-{uuid.uuid4().hex[:8]}") as sub:
            await sub.subscribe(f"{prefix}/#", qos=1)
            publisher = create_publisher(settings)
            assert isinstance(publisher, MqttEventPublisher)
            publisher.start()
            replay_payment_call(tmp_path, publisher)
            await dialer_run(tmp_path, publisher)
            await publisher.aclose(drain_timeout_s=10)
            sent = publisher.stats.published
            assert publisher.stats.dropped == 0 and publisher.stats.rejected == 0
            async with asyncio.timeout(10):
                async for message in sub.messages:
                    received.append(message)
                    if len(received) == sent:
                        break
        return received

    messages = asyncio.run(scenario())
    seen: dict[str, int] = {}
    for message in messages:
        topic = str(message.topic)
        name = schema_name(topic, prefix)
        assert name is not None, f"{topic} is not documented in docs/events.md"
        assert isinstance(message.payload, bytes)
        body = json.loads(message.payload)
        jsonschema.validate(body, load_schema(name))
        seen[name] = seen.get(name, 0) + 1
    assert {"call_connected", "call_step", "call_transcript", "call_alert", "call_ended"} <= set(seen)
    assert {"dialer_attempt", "dialer_expired"} <= set(seen)
    payloads = b"\n".join(bytes(m.payload) for m in messages if isinstance(m.payload, bytes))
    assert b"4929" not in payloads and b"+4915112345678" not in payloads
    assert b"[redacted: 4 digits]" in payloads and b"legal_threat" in payloads
