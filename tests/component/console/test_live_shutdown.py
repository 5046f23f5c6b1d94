"""Stopping the console closes the live calls' MQTT subscription: once the app's lifespan has
shut down, no task the app started is left on the loop, whether the feed was subscribed to a
real Mosquitto (127.0.0.1:1883; that case skips without it, unless CI=true) or retrying an
unreachable broker. A task left behind once kept a test client (and its loop) from closing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import os
import socket
import time
import uuid
from collections.abc import Callable

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from config.settings import MqttSettings
from console.live_pages import NO_LIFESPAN, TASK_NAME, LiveFeed
from console.users import UserStore
from console.web import ConsoleContext
from dialer.models import utcnow
from ivr.sipp_peer import free_port
from tests.component.console.conftest import FAST_HASHER, PASSWORD, log_in

pytestmark = pytest.mark.component
BROKER = ("127.0.0.1", 1883)
HARNESS = "anyio.from_thread.BlockingPortal."
"""Tasks the test client runs on the app's loop through its portal."""


class TaskWatch:
    """The app behind an ASGI wrapper that notes, on the app's own loop, the tasks alive once
    startup is complete and those still pending when shutdown is complete."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.at_start: set[asyncio.Task[object]] = set()
        self.left: list[str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def watched(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                self.at_start = set(asyncio.all_tasks())
            elif message["type"] == "lifespan.shutdown.complete":
                pending = [t for t in asyncio.all_tasks() - self.at_start if not t.done()]
                self.left = sorted(
                    f"{t.get_name()} {t.get_coro()!r}"
                    for t in pending
                    if not t.get_name().startswith(HARNESS)  # the test client waiting for this very message
                )
            await send(message)

        await self.app(scope, receive, watched)


def broker_reachable() -> bool:
    try:
        socket.create_connection(BROKER, timeout=2).close()
    except OSError:
        return False
    return True


def point_at(context: ConsoleContext, port: int) -> None:
    prefix = f"test-{uuid.uuid4().hex[:10]}/ivr"
    mqtt = MqttSettings(enabled=True, host=BROKER[0], port=port, topic_prefix=prefix)
    context.settings = dataclasses.replace(context.settings, mqtt=mqtt)


def watch_until(client: TestClient, feed: Callable[[], LiveFeed | None], status: str) -> LiveFeed:
    deadline = time.monotonic() + 20
    while True:
        assert client.get("/live").status_code == 200  # the page (re)starts the feed
        found = feed()
        if found is not None and found.status == status:
            return found
        assert time.monotonic() < deadline, f"the live feed never became {status!r}"
        time.sleep(0.1)


@pytest.mark.parametrize("broker", ["live", "unreachable"])
def test_stopping_the_app_leaves_no_task_of_the_live_feed(
    broker: str, console_app: Starlette, console_context: ConsoleContext
) -> None:
    if broker == "live" and not broker_reachable():
        if os.environ.get("CI") == "true":
            pytest.fail(f"Mosquitto is not reachable at {BROKER[0]}:{BROKER[1]}")
        pytest.skip(f"Mosquitto is not reachable at {BROKER[0]}:{BROKER[1]}")
    point_at(console_context, BROKER[1] if broker == "live" else free_port())
    console_context.users = UserStore(console_context.engine, FAST_HASHER)
    name = f"sup-{uuid.uuid4().hex[:6]}"
    console_context.users.add(name, "supervisor", PASSWORD, utcnow())
    watch = TaskWatch(console_app)
    started = time.monotonic()
    with TestClient(watch) as client:
        log_in(client, name)
        expected = "live" if broker == "live" else "broker unreachable, retrying"
        feed = watch_until(client, lambda: getattr(console_app.state, "live_feed", None), expected)
        assert feed.running
    assert watch.left == [], f"tasks left running after shutdown: {watch.left}"
    assert not feed.running and feed.status == "closed"
    assert time.monotonic() - started < 30  # the stop did not wait out a retry or a broker


def test_without_its_lifespan_the_app_never_subscribes_and_says_so(
    console_app: Starlette, console_context: ConsoleContext
) -> None:
    """A test client used without ``with`` runs each request on a loop of its own and never
    stops the app: a subscription started there would be left behind, so none is started."""
    point_at(console_context, BROKER[1])
    console_context.users = UserStore(console_context.engine, FAST_HASHER)
    name = f"sup-{uuid.uuid4().hex[:6]}"
    console_context.users.add(name, "supervisor", PASSWORD, utcnow())
    client = log_in(TestClient(console_app), name)
    for _ in range(2):
        page = client.get("/live")
        assert page.status_code == 200 and html.escape(NO_LIFESPAN, quote=True) in page.text
    feed: LiveFeed = console_app.state.live_feed
    assert not feed.running and feed.status == NO_LIFESPAN


def test_a_closed_feed_is_not_started_again() -> None:
    """A page opened while the app stops (a stream's last round) must not revive the feed."""

    async def scenario() -> tuple[bool, bool]:
        feed = LiveFeed(MqttSettings(enabled=True, host="127.0.0.1", port=free_port(), topic_prefix="t"))
        feed.ensure_started()
        await asyncio.sleep(0.05)
        was_running = feed.running
        await feed.aclose()
        feed.ensure_started()
        names = {t.get_name() for t in asyncio.all_tasks() if not t.done()}
        return was_running, feed.running or TASK_NAME in names

    was_running, running_again = asyncio.run(scenario())
    assert was_running and not running_again
