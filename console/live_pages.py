"""The live calls page: every call in progress with its flow step, elapsed time, last transcript
lines and alerts, updated as it happens (server-sent events, like the campaign wallboard).

One MQTT subscription per console process (``<mqtt.topic_prefix>/call/#``, the broker settings
of ``mqtt.*``) folds the engine's call events (docs/events.md) into a
:class:`~supervision.live_calls.LiveCalls`; every open page streams its rendering whenever it
changes, and every ``refresh_s`` for the elapsed times. The subscription starts with the first
viewer and reconnects by itself (1 s, doubling to 30 s); the page says when the broker is
unreachable. Permission ``live.view``, checked again on every round of a stream; a user who
may also ``supervise`` gets Listen / Barge / Take over on each call (:mod:`console.supervise_pages`).
The feed belongs to the app's lifespan (:func:`startup`, :func:`shutdown`): made when the app
starts, closed when it stops, so no task of it outlives the app.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import aiomqtt
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from config.logs import log_event
from config.settings import MqttSettings
from console import supervise_pages
from console.supervise_pages import MODE_LABELS, phones_of, take_flash
from console.wallboard_pages import HEARTBEAT_S, STREAM_S, sse_message
from console.web import User, context_of, csrf_token, render, require, templates
from ivr.event_publisher import EventPublishError, broker_connector
from supervision.live_calls import LiveCalls

_LOG = logging.getLogger("console.live")
MAX_MESSAGE_BYTES = 65_536
"""A call event is well under 4 kB; a bigger message on the shared broker is not ours."""
TASK_NAME = "console-live-feed"
NO_LIFESPAN = "not subscribed: the console was started without its lifespan (nothing would close it)"
CLOSE_TIMEOUT_S = 5.0
"""How long :meth:`LiveFeed.aclose` waits for the subscription to say goodbye to the broker."""


class LiveFeed:
    """The process's view of live calls, fed from MQTT; :attr:`version` moves on every change."""

    def __init__(self, settings: MqttSettings) -> None:
        self.settings = settings
        self.calls = LiveCalls(settings.topic_prefix)
        self.version = 0
        self.status = "connecting"
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def fold(self, topic: str, raw: bytes, now: datetime) -> bool:
        """One message off the broker; False when it changed nothing (or was not a call event)."""
        if len(raw) > MAX_MESSAGE_BYTES:
            self.calls.rejected += 1
            return False
        try:
            payload = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            self.calls.rejected += 1
            return False
        if self.calls.apply(topic, payload, now) is None:
            return False
        self.version += 1
        return True

    def ensure_started(self) -> None:
        """Start the subscription on the running loop, once (never again once closed)."""
        if self._closed:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=TASK_NAME)

    def detach(self, reason: str) -> None:
        """Never subscribe (``reason`` is what the page shows instead)."""
        self._closed = True
        self.status = reason

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def aclose(self) -> None:
        """Cancel the subscription and wait for it to end (at most :data:`CLOSE_TIMEOUT_S`: a
        broker that never answers the goodbye must not hold up the shutdown)."""
        self._closed = True
        task, self._task = self._task, None
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            return  # nothing running, or a task of a loop already gone (cancelled with it)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=CLOSE_TIMEOUT_S)
        if not done:
            task.cancel()  # stuck in the client's goodbye: cancel that too
            await asyncio.wait({task}, timeout=CLOSE_TIMEOUT_S)
        if task.done() and not task.cancelled() and task.exception() is not None:
            log_event("console.live_feed_close_failed", logging.WARNING, _LOG, error=str(task.exception()))
        self.status = "closed"

    async def _run(self) -> None:
        try:
            connect = broker_connector(self.settings)
        except EventPublishError as exc:
            self.status = f"MQTT settings unusable: {exc}"
            log_event("console.live_feed_unusable", logging.ERROR, _LOG, error=str(exc))
            return
        delay = 1.0
        topic = f"{self.settings.topic_prefix.strip('/')}/call/#"
        while True:
            try:
                async with connect() as client:
                    if not isinstance(client, aiomqtt.Client):  # pragma: no cover - the connector's type
                        raise TypeError("the broker connector did not make an aiomqtt client")
                    await client.subscribe(topic, qos=1)
                    self.status, delay = "live", 1.0
                    self.version += 1
                    log_event("console.live_feed_connected", logger=_LOG, topic=topic)
                    async for message in client.messages:
                        raw = message.payload
                        if isinstance(raw, bytes | bytearray):
                            self.fold(message.topic.value, bytes(raw), datetime.now(UTC))
            except aiomqtt.MqttError as exc:
                if _cancelling():  # the client's goodbye failed while we were being cancelled
                    raise asyncio.CancelledError from exc
                self.status = "broker unreachable, retrying"
                self.version += 1
                log_event("console.live_feed_lost", logging.WARNING, _LOG, error=str(exc), retry_s=delay)
            await asyncio.sleep(delay)
            delay = min(30.0, delay * 2)


def _cancelling() -> bool:
    """True while the running task has a cancellation pending (aiomqtt may turn one into an
    ``MqttError`` as it disconnects; retrying then would leave the task running forever)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def startup(app: Starlette) -> None:
    """Make the app's feed (subscribed when the first viewer comes), unless one was put there
    already (tests fold events into a feed of their own). Called by the app's lifespan."""
    if getattr(app.state, "live_feed", None) is None:
        app.state.live_feed = LiveFeed(app.state.console.settings.mqtt)


async def shutdown(app: Starlette) -> None:
    """Close the app's feed (called by the app's lifespan)."""
    feed: LiveFeed | None = getattr(app.state, "live_feed", None)
    if feed is not None:
        await feed.aclose()


def feed_of(request: Request) -> LiveFeed:
    """The app's feed, started on the running loop. An app whose lifespan never ran (a test
    client used without ``with``) would never close a subscription, and runs each request on
    a loop of its own: it gets a feed that never subscribes, and the page says why."""
    state = request.app.state
    feed: LiveFeed | None = getattr(state, "live_feed", None)
    if feed is None:
        feed = state.live_feed = LiveFeed(context_of(request).settings.mqtt)
        feed.detach(NO_LIFESPAN)
    feed.ensure_started()
    return feed


def calls_html(feed: LiveFeed, now: datetime, controls: Mapping[str, object]) -> str:
    template = templates.env.get_template("live/_calls.html")
    return str(template.render(calls=feed.calls.view(now), status=feed.status, **controls))


def supervise_controls(request: Request, user: User) -> dict[str, Any]:
    """What the Listen / Barge / Take over buttons need; ``supervise`` False: no buttons."""
    if not user.can("supervise"):
        return {"supervise": False}
    return {"supervise": True, "csrf_token": csrf_token(request), "modes": MODE_LABELS}


async def live_page(request: Request) -> Response:
    user = require(request, "live.view")
    feed = feed_of(request)
    now = datetime.now(UTC)
    controls = supervise_controls(request, user)
    phones, no_phone = phones_of(context_of(request), user.name) if controls["supervise"] else ([], "")
    return render(
        request,
        "live/page.html",
        calls=feed.calls.view(now),
        status=feed.status,
        phones=phones,
        no_phone=no_phone,
        flash=take_flash(request),
        **controls,
    )


async def live_events(request: Request) -> Response:
    require(request, "live.view")
    feed = feed_of(request)
    context = context_of(request)

    async def stream() -> AsyncIterator[str]:
        started = last_sent = time.monotonic()
        previous = ""
        yield "retry: 2000\n\n"
        while time.monotonic() - started < STREAM_S:
            if await request.is_disconnected():
                return
            request.scope.pop("console.user", None)  # look the user up afresh each round
            try:
                user = require(request, "live.view")
            except HTTPException as exc:
                yield sse_message("gone", str(exc.detail))
                return
            html = calls_html(feed, datetime.now(UTC), supervise_controls(request, user))
            if html != previous:
                previous, last_sent = html, time.monotonic()
                yield sse_message("board", html)
            elif time.monotonic() - last_sent > HEARTBEAT_S:
                last_sent = time.monotonic()
                yield ": still here\n\n"
            await asyncio.sleep(max(context.refresh_s, 0.25))

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


def routes() -> list[BaseRoute]:
    return [
        Route("/live", live_page, name="live_calls"),
        Route("/live/events", live_events, name="live_events"),
        *supervise_pages.routes(),
    ]
