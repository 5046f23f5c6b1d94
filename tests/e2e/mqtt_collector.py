"""Every MQTT message ``serve`` publishes during an end-to-end test, from the real Mosquitto.

One subscriber per test under a unique topic prefix (the broker is shared), each message kept
with its wall-clock arrival (the alert latency test measures it). The ``mqtt_collector``
fixture in conftest.py starts one; :meth:`MqttCollector.serve_env` points ``serve`` at it.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from tests.mqtt_broker import BROKER


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    arrived: float
    """``time.time()`` when paho's network thread handed it over."""


@dataclass
class MqttCollector:
    """Every message under ``prefix/#`` while it runs (paho's network thread files them)."""

    prefix: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:12]}")
    _messages: list[Received] = field(default_factory=list)
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _subscribed: threading.Event = field(default_factory=threading.Event)
    _client: mqtt.Client | None = None

    def start(self, timeout: float = 10.0) -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex[:10]}")
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.connect(*BROKER)
        client.loop_start()
        self._client = client
        client.subscribe(f"{self.prefix}/#", qos=1)
        assert self._subscribed.wait(timeout), "the broker never acknowledged the subscription"

    def serve_env(self) -> dict[str, str]:
        """The settings that make ``serve`` publish to this collector (``start_ivr(**...)``)."""
        return {
            "IVR_MQTT__ENABLED": "true",
            "IVR_MQTT__HOST": BROKER[0],
            "IVR_MQTT__PORT": str(BROKER[1]),
            "IVR_MQTT__TOPIC_PREFIX": self.prefix,
        }

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self._messages.append(Received(message.topic, bytes(message.payload), time.time()))
            self._lock.notify_all()

    def wait_for(self, topic_suffix: str, timeout: float = 30.0) -> Received:
        """The first message whose topic ends with ``topic_suffix``, waiting up to ``timeout``."""

        def find() -> Received | None:
            return next((m for m in self._messages if m.topic.endswith(topic_suffix)), None)

        with self._lock:
            self._lock.wait_for(lambda: find() is not None, timeout)
            found = find()
        assert found is not None, f"no MQTT message on */{topic_suffix} within {timeout}s: {self.topics()}"
        return found

    def topics(self) -> list[str]:
        with self._lock:
            return [m.topic for m in self._messages]

    def snapshot(self) -> list[Received]:
        """The messages so far, in arrival order."""
        with self._lock:
            return list(self._messages)

    def stop(self) -> None:
        if self._client is not None:
            self._client.loop_stop()
            self._client.disconnect()
            self._client = None
