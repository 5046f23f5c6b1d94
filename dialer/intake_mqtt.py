"""The MQTT side of real-time intake: requests on a topic, answers on another.

For senders that already speak MQTT (or sit behind a firewall that only lets the broker
through). A request to ``{mqtt.topic_prefix}/dialer/intake/{campaign}`` is the JSON of an
HTTP request; the answer, the HTTP answer's JSON plus ``code``, ``campaign`` and ``ts`` with
the number masked (the broker is shared), goes to ``.../{campaign}/result``. Every request
is answered, a refused one included. The connection is the event publisher's
(:func:`ivr.event_publisher.broker_connector`), so intake needs no broker settings of its own.
A lost broker is retried with backoff (0.5 s doubling to 30 s); the subscription is not
persistent, so a sender that hears nothing sends again (a repeat is answered ``unchanged``).
See docs/intake.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiomqtt
from sqlalchemy import Engine

from config.backoff import Backoff
from config.logs import log_event
from config.settings import IntakeSettings, MqttSettings
from dialer.intake import add_contact
from dialer.intake_answers import IntakeAnswer, IntakeStatus, OnAdded, answer, label
from dialer.intake_log import LOG, internal_error, log_answer, notify
from dialer.intake_request import decode_request
from dialer.models import utcnow
from ivr.event_publisher import Connect, EventPublishError, broker_connector, check_broker

QOS = 1
TASK_NAME = "intake-mqtt"
_FORBIDDEN = ("/", "+", "#", "\x00")


def intake_topics(mqtt: MqttSettings, intake: IntakeSettings) -> tuple[str, str]:
    """(the base ``{prefix}/dialer/intake``, the subscription filter, shared if configured)."""
    base = f"{mqtt.topic_prefix.strip('/')}/dialer/intake"
    group = intake.mqtt_share_group
    if group and any(ch in group for ch in _FORBIDDEN):
        raise EventPublishError(f"intake.mqtt_share_group {group!r}: must contain none of / + # or NUL")
    return base, (f"$share/{group}/{base}/+" if group else f"{base}/+")


class MqttIntake:
    """Subscribes, answers each request in turn, reconnects; see the module docstring."""

    def __init__(
        self,
        mqtt: MqttSettings,
        intake: IntakeSettings,
        engine: Engine,
        *,
        on_added: OnAdded | None = None,
        clock: Callable[[], datetime] = utcnow,
        connect: Connect | None = None,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        self.base, self.topic_filter = intake_topics(mqtt, intake)
        self._mqtt = mqtt
        self._connect = connect or broker_connector(mqtt)
        self._engine = engine
        self._max_bytes = intake.max_body_bytes
        self._on_added = on_added
        self._clock = clock
        self._backoff_initial = backoff_initial_s
        self._backoff_max = backoff_max_s
        self._task: asyncio.Task[None] | None = None
        self._handling: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self.subscribed = asyncio.Event()
        """Set while subscribed (tests wait for it before publishing)."""
        self.answered = 0

    async def check(self) -> None:
        """Under ``mqtt.on_unreachable: fail``, connect and log in once or raise."""
        if self._mqtt.on_unreachable == "fail":
            await asyncio.to_thread(check_broker, self._mqtt)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=TASK_NAME)

    async def aclose(self, grace_s: float = 5.0) -> None:
        """Stop taking requests; the one being stored is finished and answered (within ``grace_s``)."""
        self._closing.set()
        task, self._task = self._task, None
        if task is None:
            return
        handling = self._handling
        if handling is not None and not handling.done():
            await asyncio.wait({handling}, timeout=grace_s)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        backoff = Backoff(self._backoff_initial, self._backoff_max)
        while not self._closing.is_set():
            try:
                async with self._connect() as client:
                    if not isinstance(client, aiomqtt.Client):
                        raise TypeError(f"intake needs an aiomqtt.Client, got {type(client).__name__}")
                    await client.subscribe(self.topic_filter, qos=QOS)
                    self.subscribed.set()
                    backoff.reset()
                    log_event("intake.mqtt_subscribed", logger=LOG, topic=self.topic_filter)
                    async for message in client.messages:
                        if self._closing.is_set():
                            return
                        self._handling = asyncio.create_task(self._handle(client, message))
                        await asyncio.shield(self._handling)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broker problem must never end intake for good
                log_event(
                    "intake.mqtt_unavailable",
                    logging.WARNING,
                    LOG,
                    error=f"{type(exc).__name__}: {exc}",
                    retry_in_s=backoff.delay,
                )
            finally:
                self.subscribed.clear()
            await backoff.wait(self._closing)

    def _campaign(self, topic: str) -> str | None:
        prefix = self.base + "/"
        if not topic.startswith(prefix):
            return None
        campaign = topic[len(prefix) :]
        return campaign if campaign and "/" not in campaign else None

    async def _handle(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        topic = message.topic.value
        campaign = self._campaign(topic)
        if campaign is None:
            log_event("intake.mqtt_ignored", logging.WARNING, LOG, topic=label(topic, 200))
            return
        result = await self._answer(campaign, message.payload)
        log_answer(result, source="mqtt", campaign=campaign)
        notify(self._on_added, result, "mqtt")
        body: dict[str, Any] = result.body(mask=True)
        body["code"] = result.http_status
        body.setdefault("campaign", campaign)
        body["ts"] = self._clock().isoformat(timespec="milliseconds").replace("+00:00", "Z")
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        await client.publish(f"{self.base}/{campaign}/result", data, qos=QOS)
        self.answered += 1

    async def _answer(self, campaign: str, payload: Any) -> IntakeAnswer:
        if not isinstance(payload, bytes | bytearray):
            return answer(IntakeStatus.MALFORMED, "the message is not a JSON document; nothing stored")
        if len(payload) > self._max_bytes:
            return answer(
                IntakeStatus.TOO_LARGE,
                f"the message is larger than {self._max_bytes:,} bytes; nothing stored",
            )
        decoded = decode_request(bytes(payload))
        if isinstance(decoded, IntakeAnswer):
            return decoded
        try:
            return await asyncio.to_thread(
                add_contact, self._engine, campaign, decoded, source="mqtt", now=self._clock()
            )
        except Exception as exc:  # a bug must cost one request, with an answer, not the subscriber
            return internal_error(exc, source="mqtt", request_id=decoded.request_id)
