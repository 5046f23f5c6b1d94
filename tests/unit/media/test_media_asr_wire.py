"""The speech service's wire format: round trips, and broken messages named, never crashing."""

from __future__ import annotations

import numpy as np
import pytest

from config.errors import MediaError
from media.asr import wire
from media.asr.base import Expectation, FinalResult, PartialResult, WordTiming
from media.asr.wire import Op
from media.frames import FRAME_SAMPLES


def test_messages_round_trip() -> None:
    data = wire.encode(Op.FEED, 4_000_000_000, b"abc")
    assert wire.decode(data) == wire.Message(Op.FEED, 4_000_000_000, b"abc")


def test_frames_travel_as_raw_pcm() -> None:
    frames = [np.arange(FRAME_SAMPLES, dtype=np.int16), np.full(FRAME_SAMPLES, -7, dtype=np.int16)]
    payload = wire.frames_payload(frames)
    assert len(payload) == 2 * FRAME_SAMPLES * 2
    back = wire.payload_frames(payload)
    assert all(np.array_equal(a, b) for a, b in zip(frames, back, strict=True))


def test_results_and_expectations_round_trip() -> None:
    expectation = Expectation(("pay a bill", "agent"), open_vocabulary=False)
    assert wire.payload_expectation(wire.expectation_payload(expectation)) == expectation
    final = FinalResult("pay a bill", 0.8, (WordTiming("pay", 0.1, 0.3, 0.9),), in_grammar=True)
    assert wire.payload_final(wire.final_payload(final)) == final
    mixed: list[PartialResult | FinalResult] = [PartialResult("pay"), final]
    assert wire.payload_partials(wire.partials_payload(mixed)) == mixed


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x03", "shorter than its 5-byte header"),
        (bytes([99, 0, 0, 0, 1]), "unknown op 99"),
        (b"\x03" + b"\x00" * (4 * 1024 * 1024 + 1), "exceeds"),
    ],
)
def test_broken_messages_are_named(data: bytes, message: str) -> None:
    with pytest.raises(MediaError, match=message):
        wire.decode(data)


def test_broken_payloads_are_named() -> None:
    with pytest.raises(MediaError, match="not a whole number of 20 ms frames"):
        wire.payload_frames(b"\x00" * 3)
    with pytest.raises(MediaError, match="expectation payload is not JSON"):
        wire.payload_expectation(b"\xff")
    with pytest.raises(MediaError, match="phrases must be a list of strings"):
        wire.payload_expectation(b'{"phrases": [1]}')
    with pytest.raises(MediaError, match="final result payload is malformed"):
        wire.payload_final(b'{"text": "x"}')
    with pytest.raises(MediaError, match="unknown item"):
        wire.payload_partials(b'[{"x": 1}]')
