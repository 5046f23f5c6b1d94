"""The C++ frame ring (pjsua2 patch 0003) under a real pjmedia conference clock.

Each scenario runs in its own process: one pjsua2 Endpoint per process, and a crash in the
native code must fail the test, not take the test runner with it. Two ``RingMediaPort``s are
wired A -> B on the null sound device's clock, so B's caller frames are exactly what A sent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any, cast

import pytest

from ivr.media_bridge import MediaBridge
from ivr.native_bridge import PLAY_FRAMES, NativeBridge, native_available, ring_lib
from media.frames import FRAME_BYTES

ROOT = Path(__file__).resolve().parents[3]

needs_native = pytest.mark.skipif(
    not native_available() and os.environ.get("CI") != "true",
    reason="the installed pjsua2 has no RingMediaPort (PyPI wheel): build the vendored one",
)

_PRELUDE = """
import json, select, sys, threading, time
import pjsua2 as pj
from ivr.bridge_port import create_bridge_port, release_bridge_port
from ivr.native_bridge import NativeBridge, ring_lib

ep = pj.Endpoint()
ep.libCreate()
cfg = pj.EpConfig()
cfg.uaConfig.threadCnt = 0
cfg.logConfig.level = 1
cfg.logConfig.consoleLevel = 1
cfg.medConfig.clockRate = 8000
cfg.medConfig.sndClockRate = 8000
cfg.medConfig.channelCount = 1
cfg.medConfig.audioFramePtime = 20
cfg.medConfig.maxMediaPorts = 300
ep.libInit(cfg)
ep.libStart()
ep.audDevManager().setNullDev()
lib = ring_lib()
assert lib is not None
result = {}

def frame(value):
    return int(value).to_bytes(2, "little", signed=True) * 160

def first(record):
    return int.from_bytes(record.pcm[:2], "little", signed=True)

def wired(**kw):
    a, b = NativeBridge(lib, **kw), NativeBridge(lib, **kw)
    pa, pb = create_bridge_port("a", a), create_bridge_port("b", b)
    pa.startTransmit(pb)
    return a, b, pa, pb

def collect(bridge, until, timeout=5.0):
    out = []
    end = time.monotonic() + timeout
    while time.monotonic() < end and not until(out):
        time.sleep(0.02)
        out += bridge.drain()
    return out
"""

_EPILOGUE = """
ep.libDestroy()
print("RESULT " + json.dumps(result))
"""


def run_scenario(body: str, timeout: float = 90.0) -> dict[str, Any]:
    script = _PRELUDE + textwrap.dedent(body) + _EPILOGUE
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, (
        f"scenario exited {done.returncode}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    )
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return result


@needs_native
def test_played_frames_go_out_in_order_with_their_tags_and_come_back_as_caller_audio() -> None:
    result = run_scenario(
        """
        a, b, pa, pb = wired()
        fd = a.wake_fd
        readable_before = bool(select.select([fd], [], [], 0.5)[0])
        a.drain(); b.drain()
        a.play(7, [frame(i) for i in range(1, 41)])
        a.relay(frame(-5))
        result["backlog_after_play"] = a.backlog
        sent = collect(a, lambda out: sum(r.side == "bot" and r.pcm is None for r in out) >= 5)
        heard = collect(b, lambda out: any(r.pcm == frame(-5) for r in out))
        bots = [r for r in sent if r.side == "bot" and r.pcm is not None]
        result["sent"] = [[r.prompt_id, r.last_of_prompt, first(r)] for r in bots]
        result["sides_a"] = sorted({r.side for r in sent})
        audio = [r for r in heard if r.side == "caller" and r.pcm and r.pcm != frame(0)]
        result["heard"] = [first(r) for r in audio]
        result["heard_whole"] = all(r.pcm == frame(first(r)) for r in heard if r.pcm)
        records, frames = b.drain_frames()
        pairs = zip(records, frames)
        result["frames_match"] = all(f.tobytes() == r.pcm if r.pcm else not f.any() for r, f in pairs)
        result["readable_before"] = readable_before
        result["backlog_end"] = a.backlog
        result["stats"] = a.stats()
        release_bridge_port(pa); release_bridge_port(pb)
        """
    )
    assert result["readable_before"], "the eventfd signals arriving frames"
    assert result["backlog_after_play"] == 41
    assert result["sent"] == [[7, i == 40, i] for i in range(1, 41)] + [[None, False, -5]]
    assert result["sides_a"] == ["bot", "caller"]
    assert result["heard"] == [*range(1, 41), -5], "B hears exactly what A sent, in order"
    assert result["heard_whole"] and result["frames_match"]
    assert result["backlog_end"] == 0
    assert result["stats"]["ticks"] > 40 and result["stats"]["dropped"] == 0


@needs_native
def test_flush_drops_what_is_queued_and_long_prompts_wait_in_python() -> None:
    result = run_scenario(
        f"""
        a, b, pa, pb = wired()
        n = {PLAY_FRAMES} + 300
        a.play(3, [frame(1000 + (i % 500)) for i in range(n)])
        result["backlog_long"] = a.backlog
        time.sleep(0.3)
        played_before = sum(1 for r in a.drain() if r.prompt_id == 3)
        a.stop_playback()
        result["backlog_flushed"] = a.backlog
        time.sleep(0.3)
        after = a.drain()
        result["played_before"] = played_before
        result["tagged_after_flush"] = sum(1 for r in after if r.prompt_id == 3)
        result["silent_after_flush"] = sum(1 for r in after if r.side == "bot" and r.pcm is None)
        a.play(4, [frame(9)] * 3)
        later = collect(a, lambda out: any(r.last_of_prompt for r in out))
        result["next_prompt"] = [r.prompt_id for r in later if r.prompt_id is not None]
        a.close()
        time.sleep(0.1)
        a.drain()
        time.sleep(0.1)
        result["after_close"] = len(a.drain())
        a.play(5, [frame(1)])
        result["backlog_closed"] = a.backlog
        release_bridge_port(pa); release_bridge_port(pb)
        """
    )
    assert result["backlog_long"] == PLAY_FRAMES + 300
    assert 5 <= result["played_before"] <= 30
    assert result["backlog_flushed"] == 0
    assert result["tagged_after_flush"] <= 1, "at most the frame the clock thread was taking"
    assert result["silent_after_flush"] >= 10
    assert result["next_prompt"] == [4, 4, 4]
    assert result["after_close"] == 0 and result["backlog_closed"] == 0


class _CloseDuringPlay:
    """The ring library, except that its ``play`` lets another thread close the bridge while
    the frames are being copied, as the pjsua2 thread may at hang-up (ctypes releases the GIL
    for the copy). The ring has room for part of the batch, so the bridge must keep the rest."""

    def __init__(self, lib: Any) -> None:
        self._lib = lib
        self.bridge: NativeBridge | None = None
        self.closer: threading.Thread | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lib, name)

    def play(self, ring: int, data: int, count: int) -> int:
        if self.closer is None and self.bridge is not None:
            self.closer = threading.Thread(target=self.bridge.close)
            self.closer.start()
            self.closer.join(0.2)  # closed by now unless the bridge holds it off
        return int(self._lib.play(ring, data, min(count, 3)))


@needs_native
def test_close_from_another_thread_while_frames_move_to_the_play_queue() -> None:
    """It once emptied the waiting deque under the call task (IndexError in _top_up, seen in CI)."""
    lib = ring_lib()
    assert lib is not None
    racing = _CloseDuringPlay(lib)
    bridge = NativeBridge(cast(Any, racing))
    racing.bridge = bridge
    bridge.play(1, [bytes(FRAME_BYTES)] * 10)  # raises IndexError without the bridge's lock
    assert racing.closer is not None
    racing.closer.join(5)
    assert not racing.closer.is_alive() and bridge.backlog == 0


@needs_native
def test_overflow_is_counted_and_never_blocks_the_clock() -> None:
    result = run_scenario(
        """
        a, b, pa, pb = wired(inbox_records=20)
        a.play(1, [frame(i) for i in range(1, 101)])
        time.sleep(1.0)
        kept = b.drain()
        result["kept"] = len(kept)
        result["stats_b"] = b.stats()
        result["stats_a"] = a.stats()
        result["a_still_playing"] = a.backlog < 100
        release_bridge_port(pa); release_bridge_port(pb)
        """
    )
    assert result["kept"] == 20, "the oldest 20 records stay; newer ones are dropped"
    assert result["stats_b"]["dropped"] > 20
    assert result["stats_a"]["dropped"] > 20 and result["stats_a"]["ticks"] >= 40, (
        "the clock kept taking A's frames with A's inbox full too"
    )
    assert result["a_still_playing"]


@needs_native
def test_ports_come_and_go_under_a_running_conference_while_another_thread_uses_the_rings() -> None:
    result = run_scenario(
        """
        stop = threading.Event()
        bridges = []
        errors = []

        def reader():
            while not stop.is_set():
                for bridge in list(bridges):
                    try:
                        bridge.drain()
                        if bridge.backlog < 5:
                            bridge.play(1, [frame(3)] * 10)
                        bridge.stop_playback()
                    except Exception as exc:
                        errors.append(repr(exc))
                time.sleep(0.001)

        thread = threading.Thread(target=reader)
        thread.start()
        live = []
        for round_ in range(60):
            bridge = NativeBridge(lib)
            port = create_bridge_port(f"p{round_}", bridge)
            for other, other_port in live[-3:]:
                port.startTransmit(other_port)
                other_port.startTransmit(port)
            bridges.append(bridge)
            live.append((bridge, port))
            time.sleep(0.01)
            if len(live) > 8:
                old_bridge, old_port = live.pop(0)
                old_bridge.close()
                release_bridge_port(old_port)
                if round_ % 2:
                    bridges.remove(old_bridge)  # the other half: dropped while still drained
        time.sleep(0.2)
        for bridge, port in live:
            bridge.close()
            release_bridge_port(port)
        time.sleep(0.1)
        stop.set()
        thread.join()
        bridges.clear()
        result["errors"] = errors
        """
    )
    assert result["errors"] == []


@needs_native
def test_bad_input_is_refused_with_a_clear_error() -> None:
    lib = ring_lib()
    assert lib is not None
    bridge = NativeBridge(lib)
    with pytest.raises(ValueError, match="prompt 2 frame 1 has 10 bytes"):
        bridge.play(2, [bytes(FRAME_BYTES), bytes(10)])
    with pytest.raises(ValueError, match="prompt id -1"):
        bridge.play(-1, [bytes(FRAME_BYTES)])
    assert bridge.backlog == 0
    bridge.relay(b"\x01\x00" * 10)  # short relayed audio is padded, as MediaBridge does
    assert bridge.backlog == 1
    with pytest.raises(TypeError, match="RingMediaPort"):
        bridge.take_bot_frame()


def test_the_python_bridge_decodes_a_whole_drain_at_once_as_the_native_one_does() -> None:
    bridge = MediaBridge()
    bridge.play(1, [(5).to_bytes(2, "little") * 160, (-7).to_bytes(2, "little", signed=True) * 160])
    bridge.put_caller_frame((3).to_bytes(2, "little") * 160)
    bridge.take_bot_frame()
    bridge.put_caller_frame(None)
    bridge.take_bot_frame()
    bridge.take_bot_frame()
    records, frames = bridge.drain_frames()
    assert [(r.side, r.prompt_id, r.last_of_prompt) for r in records] == [
        ("caller", None, False),
        ("bot", 1, False),
        ("caller", None, False),
        ("bot", 1, True),
        ("bot", None, False),
    ]
    assert [int(f[0]) for f in frames] == [3, 5, 0, -7, 0]
    assert all(f.shape == (160,) and f.dtype.name == "int16" for f in frames)
    assert bridge.drain_frames() == ([], [])
    assert bridge.wake_fd is None
