from __future__ import annotations

import threading

import pytest

from ivr.media_bridge import MediaBridge
from media.frames import FRAME_BYTES

SILENCE = bytes(FRAME_BYTES)


def frame(value: int) -> bytes:
    return bytes([value]) * FRAME_BYTES


def test_bot_frames_are_the_prompt_then_silence_and_every_tick_is_recorded() -> None:
    bridge = MediaBridge()
    bridge.play(7, [frame(1), frame(2)])
    sent = [bridge.take_bot_frame() for _ in range(3)]
    assert sent == [frame(1), frame(2), SILENCE]
    records = bridge.drain()
    assert [(r.side, r.prompt_id, r.last_of_prompt) for r in records] == [
        ("bot", 7, False),
        ("bot", 7, True),
        ("bot", None, False),
    ]
    assert records[2].pcm is None
    assert bridge.drain() == []


def test_caller_frames_keep_order_and_short_frames_are_padded() -> None:
    bridge = MediaBridge()
    bridge.put_caller_frame(frame(3))
    bridge.put_caller_frame(None)
    bridge.put_caller_frame(b"\x01\x02")
    records = bridge.drain()
    assert [r.pcm for r in records] == [frame(3), None, b"\x01\x02" + bytes(FRAME_BYTES - 2)]


def test_stop_playback_drops_queued_frames_at_once() -> None:
    bridge = MediaBridge()
    bridge.play(1, [frame(1)] * 50)
    bridge.take_bot_frame()
    bridge.stop_playback()
    assert not bridge.playing
    assert bridge.take_bot_frame() == SILENCE


def test_a_closed_bridge_sends_silence_and_records_nothing() -> None:
    bridge = MediaBridge()
    bridge.play(1, [frame(1)])
    bridge.close()
    bridge.put_caller_frame(frame(2))
    assert bridge.take_bot_frame() == SILENCE
    assert bridge.drain() == []


def test_prompt_frames_of_the_wrong_size_are_refused_naming_the_frame() -> None:
    with pytest.raises(ValueError, match="prompt 3 frame 1 has 10 bytes"):
        MediaBridge().play(3, [frame(1), b"0" * 10])


def test_two_threads_lose_nothing() -> None:
    bridge = MediaBridge()
    ticks = 1000  # 2000 records: under the inbox bound, so nothing may be dropped

    def media_thread() -> None:
        for _ in range(ticks):
            bridge.put_caller_frame(frame(5))
            bridge.take_bot_frame()

    worker = threading.Thread(target=media_thread)
    worker.start()
    seen: list[str] = []
    while worker.is_alive():
        seen += [r.side for r in bridge.drain()]
    worker.join()
    seen += [r.side for r in bridge.drain()]
    assert seen.count("caller") == ticks and seen.count("bot") == ticks
    assert bridge.dropped == 0


def test_a_stalled_consumer_loses_the_oldest_records_and_counts_them() -> None:
    bridge = MediaBridge()
    for _ in range(2000):
        bridge.put_caller_frame(frame(5))
        bridge.take_bot_frame()
    assert len(bridge.drain()) == 3000
    assert bridge.dropped == 1000
