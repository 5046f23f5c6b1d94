"""Call, dialer and alert events to MQTT, without ever holding up or breaking a call.

``publish`` only serializes and appends to a bounded in-memory queue (the oldest event is
dropped and counted when it is full); one named task drains it to the broker with QoS 1,
reconnecting with exponential backoff. A broker that is down, slow or gone costs events,
never calls. Topics are ``{prefix}/call/{call_id}/{event}``, ``{prefix}/dialer/{campaign}/{event}``
and ``{prefix}/alert/{kind}``; payloads are JSON objects with phone numbers masked.

Use :func:`create_publisher` with ``settings.mqtt``: it returns a :class:`NullPublisher` when
MQTT is disabled, so the call path never checks. ``publish`` is for the event-loop thread;
from the pjsua2 thread go through ``loop.call_soon_threadsafe``.

The broker connection may use TLS (``mqtt.tls``, ``ca_file``; a client certificate with
``cert_file``/``key_file``) and a user name and password (the password only from
``IVR_MQTT__PASSWORD`` or ``mqtt.password_file``; never logged). With ``mqtt.on_unreachable:
fail`` :func:`create_publisher` first connects and logs in once and raises
:class:`EventPublishError` when that fails, so a misconfigured broker stops ``serve`` and
``dial`` at start; with ``buffer`` (the default) events wait in the queue until it answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import aiomqtt

from config.backoff import Backoff
from config.errors import IvrError
from config.logs import log_event, mask_number
from config.settings import MqttSettings

_LOG = logging.getLogger("ivr.events")
TASK_NAME = "mqtt-event-publisher"
QOS = 1
NUMBER_KEYS = frozenset(
    {
        "from",
        "to",
        "caller",
        "callee",
        "number",
        "phone",
        "from_number",
        "to_number",
        "ani",
        "dnis",
        "caller_id",
        "remote_uri",
        "local_uri",
    }
)
_FORBIDDEN_IN_SEGMENT = ("/", "+", "#", "\x00")


class EventPublishError(IvrError):
    """A topic segment is invalid, or the broker settings cannot work (files, credentials)."""


def _segment(value: str, what: str) -> str:
    if not value or any(ch in value for ch in _FORBIDDEN_IN_SEGMENT):
        raise EventPublishError(
            f"{what} {value!r} cannot be an MQTT topic level: it must be non-empty "
            "and contain none of / + # or NUL"
        )
    return value


def call_topic(call_id: str, event: str) -> str:
    """``call/{call_id}/{event}``, e.g. ``call/abc123/answered``."""
    return f"call/{_segment(call_id, 'call id')}/{_segment(event, 'event')}"


def dialer_topic(campaign: str, event: str) -> str:
    """``dialer/{campaign}/{event}``, e.g. ``dialer/renewals/paused``."""
    return f"dialer/{_segment(campaign, 'campaign')}/{_segment(event, 'event')}"


def alert_topic(kind: str) -> str:
    """``alert/{kind}``, e.g. ``alert/sensitive_word``."""
    return f"alert/{_segment(kind, 'alert kind')}"


def mask_payload(value: Any) -> Any:
    """Copy ``value`` with every string under a phone-number key (any depth) masked."""
    if isinstance(value, Mapping):
        return {
            str(k): mask_number(v) if str(k) in NUMBER_KEYS and isinstance(v, str) else mask_payload(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_payload(item) for item in value]
    return value


class EventPublisher(Protocol):
    def publish(self, topic_suffix: str, payload: Mapping[str, Any]) -> None:
        """Queue an event for ``{prefix}/{topic_suffix}``; never blocks, never raises."""

    def start(self) -> None:
        """Start delivering (needs a running event loop)."""

    async def aclose(self, drain_timeout_s: float = 2.0) -> None:
        """Deliver what is queued within ``drain_timeout_s``, then stop."""


class NullPublisher:
    """The publisher when MQTT is disabled: accepts everything, sends nothing."""

    def publish(self, topic_suffix: str, payload: Mapping[str, Any]) -> None:
        return None

    def start(self) -> None:
        return None

    async def aclose(self, drain_timeout_s: float = 2.0) -> None:
        return None


class BrokerClient(Protocol):
    """The part of a connected broker client the drain task uses (``aiomqtt.Client`` fits)."""

    async def publish(self, topic: str, payload: bytes, qos: int) -> None: ...


Connect = Callable[[], AbstractAsyncContextManager[BrokerClient]]


@dataclass(frozen=True)
class PublisherStats:
    published: int
    dropped: int
    rejected: int
    pending: int
    connected: bool
    connects: int


@dataclass(frozen=True)
class _Outgoing:
    topic: str
    payload: bytes


class MqttEventPublisher:
    """Bounded queue + one reconnecting drain task; see the module docstring."""

    def __init__(
        self,
        settings: MqttSettings,
        *,
        max_queue: int = 10_000,
        connect: Connect | None = None,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        timeout_s: float = 10.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self._prefix = settings.topic_prefix.strip("/")
        self._queue: deque[_Outgoing] = deque()
        self._max_queue = max_queue
        self._connect = connect or self._aiomqtt_connect(settings, timeout_s)
        self._backoff_initial = backoff_initial_s
        self._backoff_max = backoff_max_s
        self._clock = clock
        self._wakeup = asyncio.Event()
        self._closing_event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._published = self._dropped = self._rejected = self._connects = 0
        self._connected = False

    @staticmethod
    def _aiomqtt_connect(settings: MqttSettings, timeout_s: float) -> Connect:
        return broker_connector(settings, timeout_s)

    @property
    def stats(self) -> PublisherStats:
        return PublisherStats(
            self._published, self._dropped, self._rejected, len(self._queue), self._connected, self._connects
        )

    def publish(self, topic_suffix: str, payload: Mapping[str, Any]) -> None:
        try:
            for level in topic_suffix.split("/"):
                _segment(level, "topic level")
            body = dict(mask_payload(payload))
            body.setdefault("ts", self._clock().isoformat(timespec="milliseconds").replace("+00:00", "Z"))
            data = json.dumps(body, ensure_ascii=False, default=str).encode("utf-8")
        except (EventPublishError, TypeError, ValueError) as exc:
            self._rejected += 1
            log_event("event_rejected", logging.WARNING, _LOG, topic=topic_suffix, error=str(exc))
            return
        if self._closing:
            self._dropped += 1
            return
        if len(self._queue) >= self._max_queue:
            self._queue.popleft()
            self._dropped += 1
            if self._dropped in (1, 10, 100) or self._dropped % 1000 == 0:
                log_event("events_dropped", logging.WARNING, _LOG, dropped=self._dropped)
        self._queue.append(_Outgoing(f"{self._prefix}/{topic_suffix}", data))
        self._wakeup.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=TASK_NAME)

    async def aclose(self, drain_timeout_s: float = 2.0) -> None:
        self._closing = True
        self._closing_event.set()
        self._wakeup.set()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=drain_timeout_s)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._queue:
            self._dropped += len(self._queue)
            log_event("events_undelivered_at_close", logging.WARNING, _LOG, count=len(self._queue))
            self._queue.clear()

    async def _run(self) -> None:
        backoff = Backoff(self._backoff_initial, self._backoff_max)
        while not (self._closing and not self._queue):
            try:
                async with self._connect() as client:
                    self._connected = True
                    self._connects += 1
                    backoff.reset()
                    log_event("mqtt_connected", logging.INFO, _LOG, connects=self._connects)
                    await self._drain(client)
                    return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broker problem must never end delivery for good
                log_event(
                    "mqtt_unavailable",
                    logging.WARNING,
                    _LOG,
                    error=f"{type(exc).__name__}: {exc}",
                    retry_in_s=backoff.delay,
                    pending=len(self._queue),
                )
            finally:
                self._connected = False
            if self._closing:
                return
            await backoff.wait(self._closing_event)  # closing cuts the backoff short: one last try

    async def _drain(self, client: BrokerClient) -> None:
        """Send until closing with an empty queue; a failed send goes back to the front."""
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            item = self._queue.popleft()
            try:
                await client.publish(item.topic, item.payload, qos=QOS)
            except BaseException:
                if len(self._queue) < self._max_queue:
                    self._queue.appendleft(item)
                else:
                    self._dropped += 1
                raise
            self._published += 1


def broker_connector(settings: MqttSettings, timeout_s: float = 10.0) -> Connect:
    """A factory of ``aiomqtt`` clients for ``settings``: TLS and credentials are loaded now,
    so a missing certificate or password file is an :class:`EventPublishError` at start."""
    files = [name for name in ("ca_file", "cert_file", "key_file") if getattr(settings, name)]
    if files and not settings.tls:
        raise EventPublishError(
            f"mqtt.{files[0]} is set but mqtt.tls is false: events would go unencrypted; set mqtt.tls: true"
        )
    tls = _tls_context(settings) if settings.tls else None
    username = settings.username or None
    password = _password(settings)
    if password is not None and username is None:
        raise EventPublishError("mqtt: a password is set but mqtt.username is empty")
    if password is not None and tls is None:
        log_event("mqtt_password_without_tls", logging.WARNING, _LOG, host=settings.host, port=settings.port)

    def connect() -> AbstractAsyncContextManager[BrokerClient]:
        identifier = f"ivr-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        return aiomqtt.Client(
            settings.host,
            settings.port,
            identifier=identifier,
            timeout=timeout_s,
            username=username,
            password=password,
            tls_context=tls,
        )

    return connect


def _tls_context(settings: MqttSettings) -> ssl.SSLContext:
    """Verify the broker (its chain against ``ca_file`` or the system store, and its host name)."""
    try:
        context = ssl.create_default_context(cafile=settings.ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise EventPublishError(
            f"mqtt.ca_file {settings.ca_file}: cannot load CA certificates: {exc}"
        ) from None
    if settings.key_file and not settings.cert_file:
        raise EventPublishError("mqtt.key_file is set but mqtt.cert_file is empty")
    if settings.cert_file:
        try:
            context.load_cert_chain(settings.cert_file, settings.key_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise EventPublishError(
                f"mqtt.cert_file {settings.cert_file} / key_file {settings.key_file or '(in cert_file)'}: "
                f"cannot load the client certificate: {exc}"
            ) from None
    return context


def _password(settings: MqttSettings) -> str | None:
    """From ``IVR_MQTT__PASSWORD`` (``settings.password``) or the first line of ``password_file``."""
    if settings.password:
        return settings.password
    if not settings.password_file:
        return None
    try:
        lines = Path(settings.password_file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise EventPublishError(
            f"mqtt.password_file {settings.password_file}: cannot read: {reason}"
        ) from None
    if not lines or not lines[0]:
        raise EventPublishError(f"mqtt.password_file {settings.password_file}: the first line is empty")
    return lines[0]


def check_broker(settings: MqttSettings, timeout_s: float = 10.0) -> None:
    """Connect and log in once (in a thread of its own, so any caller may block on it).

    Raises :class:`EventPublishError` saying what failed; the password is never in it.
    """

    async def attempt() -> None:
        async with broker_connector(settings, timeout_s)():
            return

    with ThreadPoolExecutor(1, thread_name_prefix="mqtt-check") as pool:
        try:
            pool.submit(asyncio.run, attempt()).result(timeout=timeout_s + 5)
        except EventPublishError:
            raise
        except Exception as exc:  # aiomqtt, ssl and socket errors alike
            scheme = "mqtts" if settings.tls else "mqtt"
            raise EventPublishError(
                f"MQTT broker {scheme}://{settings.host}:{settings.port} did not accept the connection"
                f" ({type(exc).__name__}: {str(exc) or 'timed out'}); mqtt.on_unreachable is 'fail', so"
                " nothing starts (set it to 'buffer' to start anyway and deliver events once it is back)"
            ) from None


def create_publisher(settings: MqttSettings, **options: Any) -> EventPublisher:
    """:class:`MqttEventPublisher` if ``settings.enabled``, else :class:`NullPublisher`.

    With ``on_unreachable: fail`` the broker must accept a connection first (see :func:`check_broker`).
    """
    if not settings.enabled:
        return NullPublisher()
    if settings.on_unreachable == "fail":
        check_broker(settings, options.get("timeout_s", 10.0))
    return MqttEventPublisher(settings, **options)
