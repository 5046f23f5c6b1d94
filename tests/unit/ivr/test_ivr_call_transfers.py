"""A call's side of its transfers (ivr.transfer.CallTransfers): what the core hears, what is
logged and published, and that a SIP URI target never appears unmasked."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from config.logs import KeyValueFormatter
from config.settings import TransferSettings
from ivr.call_vocabulary import TransferUpdate
from ivr.media_bridge import MediaBridge
from ivr.sip_events import CallOffered
from ivr.transfer import AgentLeg, CallTransfers

TARGET = "sip:+15550100123@pbx.example"
MASKED = "sip:+*********23@pbx.example"


class FakeDialer:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.placed: list[str] = []
        self.hung_up: list[int] = []
        self.future: asyncio.Future[AgentLeg] = loop.create_future()

    def place_call(
        self, uri: str, ring_timeout_s: float, factory: Callable[[CallOffered], AgentLeg]
    ) -> tuple[int, asyncio.Future[AgentLeg]]:
        self.placed.append(uri)
        return 7, self.future

    def hangup(self, call_key: int) -> None:
        self.hung_up.append(call_key)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def transfers(dialer: FakeDialer | None, published: list[tuple[str, dict[str, object]]]) -> CallTransfers:
    settings = TransferSettings(queues={"cards": TARGET})
    return CallTransfers("c1", settings, MediaBridge(), dialer, lambda e, p: published.append((e, p)))


def test_an_unknown_queue_fails_at_once_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    published: list[tuple[str, dict[str, object]]] = []
    calls = transfers(None, published)
    assert calls.start("queue:loans") == TransferUpdate(success=False, reason="no_route")
    assert calls.tick(ringback=True) is None and published == []
    (record,) = [r for r in caplog.records if r.getMessage() == "call.transfer_unavailable"]
    assert record.fields["target"] == "queue:loans"  # type: ignore[attr-defined]


def test_a_sip_uri_target_is_masked_in_logs_and_events(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    published: list[tuple[str, dict[str, object]]] = []
    dialer = FakeDialer(loop)
    calls = transfers(dialer, published)
    caplog.set_level("INFO")
    assert calls.start(TARGET) is None
    assert dialer.placed == [TARGET]
    assert published == [("transferring", {"target": MASKED})]
    lines = "\n".join(KeyValueFormatter().format(r) for r in caplog.records)
    assert "event=call.transferring" in lines and f"target={MASKED}" in lines
    assert "+15550100123" not in lines


def test_a_leg_that_fails_while_ringing_is_reported_once_and_closing_hangs_up_a_ringing_leg(
    loop: asyncio.AbstractEventLoop,
) -> None:
    published: list[tuple[str, dict[str, object]]] = []
    dialer = FakeDialer(loop)
    calls = transfers(dialer, published)
    assert calls.start("queue:cards") is None
    assert calls.tick(ringback=True) is None, "still ringing"
    dialer.future.set_exception(OSError("busy"))
    assert calls.tick(ringback=True) == TransferUpdate(success=False, reason="failed: busy")
    assert calls.tick(ringback=True) is None, "a failed transfer is over"
    calls.close()
    assert dialer.hung_up == [], "nothing left to hang up"

    ringing = FakeDialer(loop)
    again = transfers(ringing, published)
    assert again.start("queue:cards") is None
    again.close()
    assert ringing.hung_up == [7], "the caller left: the agent's phone stops ringing"
