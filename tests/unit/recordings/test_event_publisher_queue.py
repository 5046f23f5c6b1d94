"""The publisher's queue, masking and reconnect logic, against an in-memory fake broker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime

import pytest

from config.settings import MqttSettings
from ivr.event_publisher import (
    BrokerClient,
    EventPublishError,
    MqttEventPublisher,
    NullPublisher,
    alert_topic,
    call_topic,
    create_publisher,
    dialer_topic,
)

FIXED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SETTINGS = MqttSettings(enabled=True, topic_prefix="test/ivr")


class FakeBroker:
    """Accepts connections unless ``down``; a connection can be made to fail after N messages."""

    def __init__(self) -> None:
        self.down = False
        self.received: list[tuple[str, dict[str, object], int]] = []
        self.connect_attempts = 0
        self.fail_after: int | None = None
        self.changed = asyncio.Event()

    def connect(self) -> AbstractAsyncContextManager[BrokerClient]:
        @asynccontextmanager
        async def session() -> AsyncIterator[BrokerClient]:
            self.connect_attempts += 1
            self.changed.set()
            if self.down:
                raise ConnectionRefusedError("broker down")
            yield _Client(self)

        return session()


class _Client:
    def __init__(self, broker: FakeBroker) -> None:
        self.broker = broker

    async def publish(self, topic: str, payload: bytes, qos: int) -> None:
        await asyncio.sleep(0)
        if self.broker.fail_after is not None:
            if self.broker.fail_after == 0:
                self.broker.fail_after = None
                raise ConnectionResetError("connection lost")
            self.broker.fail_after -= 1
        self.broker.received.append((topic, json.loads(payload), qos))
        self.broker.changed.set()


def publisher(broker: FakeBroker, **options: object) -> MqttEventPublisher:
    return MqttEventPublisher(SETTINGS, connect=broker.connect, backoff_initial_s=0.01, backoff_max_s=0.04,
                              clock=lambda: FIXED, **options)  # type: ignore[arg-type]


async def wait_until(broker: FakeBroker, predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(2.0):
        while not predicate():
            broker.changed.clear()
            await broker.changed.wait()


def test_topics_and_masked_json_payloads() -> None:
    async def scenario() -> FakeBroker:
        broker = FakeBroker()
        pub = publisher(broker)
        pub.start()
        numbers = {"from": "+4915112345678", "legs": [{"to": "+12025550123"}]}
        pub.publish(call_topic("c1", "answered"), numbers)
        pub.publish(dialer_topic("renewals", "paused"), {"by": "admin"})
        pub.publish(alert_topic("sensitive_word"), {"call_id": "c1", "ts": "given"})
        await pub.aclose()
        assert pub.stats.published == 3 and pub.stats.pending == 0
        return broker

    broker = asyncio.run(scenario())
    assert broker.received == [
        ("test/ivr/call/c1/answered",
         {"from": "+***********78", "legs": [{"to": "+*********23"}], "ts": "2024-05-01T12:00:00.000Z"}, 1),
        ("test/ivr/dialer/renewals/paused", {"by": "admin", "ts": "2024-05-01T12:00:00.000Z"}, 1),
        ("test/ivr/alert/sensitive_word", {"call_id": "c1", "ts": "given"}, 1),
    ]


def test_broker_down_never_blocks_and_drops_oldest_when_full() -> None:
    async def scenario() -> tuple[FakeBroker, MqttEventPublisher]:
        broker = FakeBroker()
        broker.down = True
        pub = publisher(broker, max_queue=3)
        pub.start()
        for i in range(5):
            pub.publish(call_topic("c", "tick"), {"n": i})  # returns at once
        await wait_until(broker, lambda: broker.connect_attempts >= 3)  # keeps retrying with backoff
        assert pub.stats.dropped == 2 and pub.stats.pending == 3 and not pub.stats.connected
        broker.down = False
        await wait_until(broker, lambda: len(broker.received) == 3)
        assert pub.stats.connected
        await pub.aclose()
        return broker, pub

    broker, pub = asyncio.run(scenario())
    assert [msg["n"] for _, msg, _ in broker.received] == [2, 3, 4]  # the oldest two went
    assert pub.stats.connects == 1


def test_lost_connection_resends_the_event_in_flight() -> None:
    async def scenario() -> FakeBroker:
        broker = FakeBroker()
        broker.fail_after = 2
        pub = publisher(broker)
        pub.start()
        for i in range(5):
            pub.publish(call_topic("c", "tick"), {"n": i})
        await wait_until(broker, lambda: len(broker.received) == 5)
        assert pub.stats.connects == 2
        await pub.aclose()
        return broker

    assert [msg["n"] for _, msg, _ in asyncio.run(scenario()).received] == [0, 1, 2, 3, 4]


def test_close_with_broker_down_returns_and_counts_what_was_lost() -> None:
    async def scenario() -> MqttEventPublisher:
        broker = FakeBroker()
        broker.down = True
        pub = MqttEventPublisher(SETTINGS, connect=broker.connect, backoff_initial_s=30.0)
        pub.start()
        pub.publish(alert_topic("talk_over"), {"call_id": "x"})
        await asyncio.sleep(0.01)
        async with asyncio.timeout(1.0):  # the 30 s backoff does not hold up shutdown
            await pub.aclose(drain_timeout_s=0.5)
        pub.publish(alert_topic("late"), {})
        return pub

    stats = asyncio.run(scenario()).stats
    assert stats.pending == 0 and stats.dropped == 2 and stats.published == 0


def test_bad_topics_and_payloads_are_rejected_without_raising() -> None:
    with pytest.raises(EventPublishError, match=r"call id 'a/b' cannot be an MQTT topic level"):
        call_topic("a/b", "answered")
    with pytest.raises(EventPublishError, match="alert kind '' cannot"):
        alert_topic("")

    async def scenario() -> MqttEventPublisher:
        pub = publisher(FakeBroker())
        pub.publish("call/#/x", {})
        pub.publish("call//x", {})
        pub.publish("call/c/x", {"bad": float("nan")} | {"n": {1, 2}})  # sets fall back to str()
        return pub

    stats = asyncio.run(scenario()).stats
    assert stats.rejected == 2 and stats.pending == 1


def test_disabled_settings_give_a_null_publisher() -> None:
    pub = create_publisher(MqttSettings(enabled=False))
    assert isinstance(pub, NullPublisher)
    pub.publish("call/x/y", {"from": "1"})
    pub.start()
    asyncio.run(pub.aclose())
    assert isinstance(create_publisher(SETTINGS), MqttEventPublisher)
