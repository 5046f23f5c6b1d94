"""The supervisor's leg replayed over real media bridges: who hears whom in each mode, the keys."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np
import pytest

from ivr.media_bridge import MediaBridge
from ivr.sip_events import CallEnded, CallOffered, DtmfReceived
from ivr.supervisor_leg import Supervision, SupervisorLeg, mix
from media.frames import FRAME_BYTES
from supervision.supervisor_modes import Mode


def pcm(value: int) -> bytes:
    return np.full(FRAME_BYTES // 2, value, dtype="<i2").tobytes()


class FakeDialer:
    """The hub's part: hands out the leg and a future that resolves when it is over."""

    loop = asyncio.new_event_loop()  # never run: the future only records that the call is over

    def __init__(self) -> None:
        self.hung_up: list[int] = []
        self.leg: SupervisorLeg | None = None
        self.future: asyncio.Future[SupervisorLeg] | None = None

    def place_call(
        self, uri: str, ring_timeout_s: float, factory: Callable[[CallOffered], SupervisorLeg]
    ) -> tuple[int, asyncio.Future[SupervisorLeg]]:
        self.leg = factory(CallOffered(7, "outbound", "sip-id", uri, "sip:ivr@127.0.0.1", 0.0))
        self.future = self.loop.create_future()
        return 7, self.future

    def hangup(self, call_key: int) -> None:
        self.hung_up.append(call_key)


def answered(mode: Mode = "listen") -> tuple[Supervision, MediaBridge, SupervisorLeg, FakeDialer]:
    caller = MediaBridge()
    dialer = FakeDialer()
    supervision = Supervision("call-1", "alice", "sip:alice@pbx", mode, caller=caller, dialer=dialer)
    supervision.start()
    assert dialer.leg is not None
    dialer.leg.bridge = MediaBridge()  # what the hub's CallConnected gives the leg's run()
    changes = supervision.tick(1.0)
    assert [(c.kind, c.mode) for c in changes] == [("started", mode)]
    return supervision, caller, dialer.leg, dialer


def caller_tick(caller: MediaBridge, said: bytes) -> None:
    """One media tick on the caller's line: the caller speaks, the bot sends what is queued."""
    caller.put_caller_frame(said)
    caller.take_bot_frame()


def test_mix_sums_and_clips() -> None:
    assert mix(None, None) is None and mix(pcm(5), None) == pcm(5)
    assert mix(pcm(30000), pcm(10000)) == pcm(32767)


def test_listen_the_supervisor_hears_caller_and_prompt_but_nobody_hears_them() -> None:
    supervision, caller, leg, _ = answered("listen")
    assert leg.bridge is not None
    caller.play(1, [pcm(100)])
    caller_tick(caller, pcm(1000))
    supervision.call_frames(caller.drain())
    assert leg.bridge.take_bot_frame() == pcm(1100), "caller and bot, mixed"
    leg.bridge.put_caller_frame(pcm(5000))  # the supervisor talks
    supervision.tick(1.02)
    assert caller.backlog == 0, "the caller hears nothing of the supervisor"


def test_barge_by_key_the_caller_hears_the_supervisor_who_never_hears_themself() -> None:
    supervision, caller, leg, _ = answered("listen")
    assert leg.bridge is not None
    leg.on_dtmf(DtmfReceived(7, "5", "rfc2833", 2.0))
    leg.bridge.put_caller_frame(pcm(5000))
    changes = supervision.tick(2.0)
    assert [(c.kind, c.mode, c.previous) for c in changes] == [("mode_changed", "barge", "listen")]
    assert caller.take_bot_frame() == pcm(5000), "relayed to the caller"
    caller.put_caller_frame(pcm(0))
    supervision.call_frames(caller.drain())
    assert leg.bridge.take_bot_frame() == pcm(0), "the supervisor's own voice is not sent back"


def test_take_over_is_final_and_a_hang_up_ends_the_supervision() -> None:
    supervision, _, leg, dialer = answered("takeover")
    leg.on_dtmf(DtmfReceived(7, "4", "rfc2833", 2.0))
    changes = supervision.tick(2.0)
    assert [(c.kind, c.mode) for c in changes] == [("key_ignored", "takeover")]
    leg.on_ended(CallEnded(7, 200, "Normal call clearing", True, 3.0, False, "remote", 3.0))
    (ended,) = supervision.tick(3.0)
    assert (ended.kind, ended.previous, ended.reason) == ("ended", "takeover", "supervisor hung up")
    assert supervision.over and supervision.tick(3.1) == []
    assert supervision.close(3.2, "the call ended") == [] and dialer.hung_up == []


def test_a_phone_that_never_answers_ends_it_with_the_reason() -> None:
    caller, dialer = MediaBridge(), FakeDialer()
    supervision = Supervision("call-1", "alice", "sip:alice@pbx", "listen", caller=caller, dialer=dialer)
    supervision.start()
    assert dialer.leg is not None
    assert supervision.tick(1.0) == []
    dialer.leg.on_ended(CallEnded(7, 486, "Busy Here", False, 0.0, False, "remote", 2.0))
    (ended,) = supervision.tick(2.0)
    assert ended.kind == "ended" and "486 Busy Here" in ended.reason


def test_the_call_ending_hangs_up_a_ringing_supervisor() -> None:
    caller, dialer = MediaBridge(), FakeDialer()
    supervision = Supervision("call-1", "alice", "sip:alice@pbx", "barge", caller=caller, dialer=dialer)
    supervision.start()
    (ended,) = supervision.close(1.0, "the call ended")
    assert dialer.hung_up == [7] and ended.previous is None


@pytest.mark.parametrize("digit", ["1", "#", "*", "9"])
def test_other_keys_change_nothing(digit: str) -> None:
    supervision, _, leg, _ = answered("barge")
    leg.on_dtmf(DtmfReceived(7, digit, "rfc2833", 2.0))
    assert supervision.tick(2.0) == [] and supervision.modes.mode == "barge"
