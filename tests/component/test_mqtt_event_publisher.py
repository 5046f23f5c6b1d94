"""Events reach a real Mosquitto at 127.0.0.1:1883 (skipped if absent, unless CI=true)."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid

import aiomqtt
import pytest

from config.settings import MqttSettings
from ivr.event_publisher import MqttEventPublisher, alert_topic, call_topic, create_publisher, dialer_topic
from tests.mqtt_broker import HOST, PORT, require_broker


@pytest.fixture(scope="module", autouse=True)
def _broker_reachable() -> None:
    require_broker()


@pytest.mark.component
def test_events_arrive_with_qos1_and_masked_numbers() -> None:
    prefix = f"test-{uuid.uuid4().hex[:12]}/ivr"
    settings = MqttSettings(enabled=True, host=HOST, port=PORT, topic_prefix=prefix)

    async def scenario() -> list[aiomqtt.Message]:
        received: list[aiomqtt.Message] = []
        async with aiomqtt.Client(HOST, PORT, identifier=f"sub-{uuid.uuid4().hex[:8]}") as sub:
            await sub.subscribe(f"{prefix}/#", qos=1)
            publisher = create_publisher(settings)
            assert isinstance(publisher, MqttEventPublisher)
            publisher.start()
            answered = {"call_id": "call-1", "from": "+4915112345678"}
            publisher.publish(call_topic("call-1", "answered"), answered)
            publisher.publish(dialer_topic("renewals", "started"), {"contacts": 12})
            publisher.publish(alert_topic("sensitive_word"), {"call_id": "call-1", "speaker": "caller"})
            async with asyncio.timeout(10):
                async for message in sub.messages:
                    received.append(message)
                    if len(received) == 3:
                        break
            await publisher.aclose()
            assert publisher.stats.published == 3 and publisher.stats.dropped == 0
        return received

    messages = asyncio.run(scenario())
    by_topic = {str(m.topic): m for m in messages}
    assert set(by_topic) == {
        f"{prefix}/call/call-1/answered",
        f"{prefix}/dialer/renewals/started",
        f"{prefix}/alert/sensitive_word",
    }
    answered = by_topic[f"{prefix}/call/call-1/answered"]
    assert answered.qos == 1
    assert isinstance(answered.payload, bytes)
    body = json.loads(answered.payload)
    assert body["from"] == "+***********78" and "ts" in body
    assert b"4915112345678" not in answered.payload


@pytest.mark.component
def test_unreachable_broker_costs_events_not_calls() -> None:
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind((HOST, 0))
        dead_port = probe.getsockname()[1]
    settings = MqttSettings(enabled=True, host=HOST, port=dead_port, topic_prefix="unused")

    async def scenario() -> MqttEventPublisher:
        publisher = MqttEventPublisher(settings, max_queue=5, backoff_initial_s=0.05, timeout_s=1.0)
        publisher.start()
        for i in range(20):
            publisher.publish(call_topic("c", "tick"), {"n": i})
        await asyncio.sleep(0.3)
        assert not publisher.stats.connected and publisher.stats.pending == 5
        async with asyncio.timeout(3):
            await publisher.aclose(drain_timeout_s=1.0)
        return publisher

    stats = asyncio.run(scenario()).stats
    assert stats.published == 0 and stats.dropped == 20
