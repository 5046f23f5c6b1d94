"""The aligner keeps both channels on one timeline whatever order frames arrive in."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from config.errors import MediaError
from media.frames import FRAME_SAMPLES, Frame
from recordings.track_aligner import PauseSpan, TrackAligner


def tone(value: int) -> Frame:
    """A frame whose every sample is ``value``, so the output can be read back frame by frame."""
    return np.full(FRAME_SAMPLES, value, dtype=np.int16)


def frames_of(stereo: npt.NDArray[np.int16], channel: int) -> list[int]:
    """The per-frame value of one channel (each test frame is constant)."""
    column = stereo[:, channel].reshape(-1, FRAME_SAMPLES)
    assert (column == column[:, :1]).all(), "a frame was split or mixed"
    return [int(v) for v in column[:, 0]]


def test_pairs_frames_in_lockstep() -> None:
    aligner = TrackAligner()
    for i in range(1, 6):
        aligner.push_caller(tone(i))
        aligner.push_bot(tone(-i))
    out = aligner.pull()
    assert out.shape == (5 * FRAME_SAMPLES, 2)
    assert frames_of(out, 0) == [1, 2, 3, 4, 5]
    assert frames_of(out, 1) == [-1, -2, -3, -4, -5]


def test_jitter_within_bound_keeps_pairs_together() -> None:
    aligner = TrackAligner(max_lead=3)
    # Caller arrives in bursts of 3, bot one by one: never more than 3 ahead.
    order = ["c", "c", "c", "b", "b", "b", "c", "b", "c", "c", "b", "b"]
    counters = {"c": 0, "b": 0}
    for side in order:
        counters[side] += 1
        if side == "c":
            aligner.push_caller(tone(counters[side]))
        else:
            aligner.push_bot(tone(-counters[side]))
    out = np.concatenate([aligner.pull(), aligner.finish()])
    assert frames_of(out, 0) == [1, 2, 3, 4, 5, 6]
    assert frames_of(out, 1) == [-1, -2, -3, -4, -5, -6]


def test_missing_side_is_written_as_silence() -> None:
    aligner = TrackAligner(max_lead=3)
    for i in range(1, 11):
        aligner.push_caller(tone(i))
    out = aligner.pull()
    # Everything beyond the lead bound is already out, with silence on the bot channel.
    assert frames_of(out, 0) == [1, 2, 3, 4, 5, 6, 7]
    assert frames_of(out, 1) == [0] * 7
    rest = aligner.finish()
    assert frames_of(rest, 0) == [8, 9, 10]
    assert frames_of(rest, 1) == [0, 0, 0]


def test_side_that_returns_after_silence_is_placed_now() -> None:
    aligner = TrackAligner(max_lead=2)
    for i in range(1, 11):
        aligner.push_caller(tone(i))
    aligner.push_bot(tone(-1))  # the bot starts a prompt while the caller is at frame 10
    out = np.concatenate([aligner.pull(), aligner.finish()])
    bot = frames_of(out, 1)
    assert len(bot) == 10
    assert bot.index(-1) == 8  # placed within the lead bound of "now", not back at frame 0
    assert bot[:8] == [0] * 8


def test_burst_beyond_bound_pads_other_side_and_lengths_stay_equal() -> None:
    aligner = TrackAligner(max_lead=3)
    for i in range(1, 21):
        aligner.push_bot(tone(-i))  # a whole prompt arrives at once
    for i in range(1, 21):
        aligner.push_caller(tone(i))  # then the caller's backlog
    out = np.concatenate([aligner.pull(), aligner.finish()])
    caller, bot = frames_of(out, 0), frames_of(out, 1)
    assert len(caller) == len(bot)
    assert bot[:20] == [-i for i in range(1, 21)]
    assert [v for v in caller if v] == list(range(1, 21))  # nothing dropped, order kept


def test_finish_pads_shorter_side_and_to_minimum_length() -> None:
    aligner = TrackAligner(max_lead=3)
    aligner.push_caller(tone(1))
    aligner.push_caller(tone(2))
    aligner.push_bot(tone(-1))
    out = aligner.finish(min_frames=5)
    assert frames_of(out, 0) == [1, 2, 0, 0, 0]
    assert frames_of(out, 1) == [-1, 0, 0, 0, 0]
    assert aligner.emitted_frames == 5
    with pytest.raises(MediaError, match="after the recording was finished"):
        aligner.push_caller(tone(3))


def test_advance_pads_both_sides_when_media_stalls() -> None:
    aligner = TrackAligner(max_lead=3, clock_slack=10)
    aligner.push_caller(tone(1))
    aligner.push_bot(tone(-1))
    aligner.advance(50)  # one second by the clock, no frames from either side
    out = aligner.pull()
    assert len(frames_of(out, 0)) == 40  # 50 minus the slack
    assert frames_of(out, 0)[1:] == [0] * 39
    aligner.advance(5)  # the clock never moves the timeline backwards
    assert aligner.pull().shape[0] == 0


def test_pause_writes_silence_on_both_sides_and_is_reported() -> None:
    aligner = TrackAligner(max_lead=3)
    for i in range(1, 4):
        aligner.push_caller(tone(i))
        aligner.push_bot(tone(-i))
    aligner.pause()
    assert aligner.paused
    for i in range(4, 7):
        aligner.push_caller(tone(i))
        aligner.push_bot(tone(-i))
    aligner.resume()
    for i in range(7, 9):
        aligner.push_caller(tone(i))
        aligner.push_bot(tone(-i))
    out = aligner.finish()
    assert frames_of(out, 0) == [1, 2, 3, 0, 0, 0, 7, 8]
    assert frames_of(out, 1) == [-1, -2, -3, 0, 0, 0, -7, -8]
    assert aligner.pauses == (PauseSpan(3, 6),)


def test_pause_still_open_at_finish_is_closed() -> None:
    aligner = TrackAligner()
    aligner.push_caller(tone(1))
    aligner.pause()
    assert aligner.pauses == (PauseSpan(1, None),)
    aligner.push_caller(tone(2))
    aligner.finish()
    assert aligner.pauses == (PauseSpan(1, 2),)


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (np.zeros(80, dtype=np.int16), r"shape \(80,\)"),
        (np.zeros(FRAME_SAMPLES, dtype=np.float32), r"shape \(160,\) float32"),
        (np.zeros((FRAME_SAMPLES, 2), dtype=np.int16), r"shape \(160, 2\)"),
    ],
)
def test_malformed_frame_is_refused_with_its_side(frame: npt.NDArray[np.generic], problem: str) -> None:
    aligner = TrackAligner()
    with pytest.raises(MediaError, match=f"bot frame must be 160 int16 samples, got {problem}"):
        aligner.push_bot(frame)  # type: ignore[arg-type]
