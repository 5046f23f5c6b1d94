"""The turn-latency bench's measuring (bench/turn_measure.py) on hand-made stereo channels: a
wrong edge or a wrong pairing here would report a latency no caller heard."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from bench.turn_measure import (
    EnergyTurn,
    Segment,
    energy_segments,
    first_pause_s,
    match_marks,
    pair_turns,
    percentile,
    sidecar_marks,
    stats,
)

RATE = 8000


def channel(seconds: float, *loud: tuple[float, float], level: int = 3000) -> npt.NDArray[np.int16]:
    """Silence with a 400 Hz tone of ``level`` amplitude over each (start, end) in seconds."""
    samples = np.zeros(round(seconds * RATE), dtype=np.int16)
    for start, end in loud:
        first, last = round(start * RATE), round(end * RATE)
        t = np.arange(last - first) / RATE
        samples[first:last] = (level * np.sin(2 * np.pi * 400 * t)).astype(np.int16)
    return samples


def test_segments_edges_to_the_window() -> None:
    found = energy_segments(channel(3.0, (0.5, 1.23), (2.0, 2.5)))
    assert found == [Segment(0.5, 1.23), Segment(2.0, 2.5)]


def test_pauses_between_words_are_bridged_but_a_turn_gap_is_not() -> None:
    words = channel(4.0, (0.5, 0.8), (0.9, 1.2), (1.45, 1.7), (2.5, 3.0))
    assert energy_segments(words) == [Segment(0.5, 1.7), Segment(2.5, 3.0)]
    assert energy_segments(words, merge_gap_s=0.0)[:3] == [
        Segment(0.5, 0.8),
        Segment(0.9, 1.2),
        Segment(1.45, 1.7),
    ]


def test_quiet_audio_and_clicks_are_not_speech() -> None:
    assert energy_segments(channel(2.0, (0.5, 1.5), level=200)) == []  # RMS about 140: under -40 dBFS
    assert energy_segments(channel(2.0, (0.5, 0.52))) == []  # a 20 ms click
    assert energy_segments(channel(2.0, (0.5, 0.52)), min_segment_s=0.0) == [Segment(0.5, 0.52)]


def test_segments_reject_what_is_not_one_channel() -> None:
    with pytest.raises(ValueError, match="one channel"):
        energy_segments(np.zeros((10, 2), dtype=np.int16))
    with pytest.raises(ValueError, match="no samples"):
        energy_segments(np.zeros(10, dtype=np.int16), rate=0)


def test_a_reply_is_the_first_bot_speech_after_the_caller_stops() -> None:
    caller = [Segment(7.0, 8.7)]
    bot = [Segment(0.0, 4.8), Segment(4.84, 6.7), Segment(9.26, 15.8)]
    [turn] = pair_turns(caller, bot)
    assert turn == EnergyTurn(8.7, 9.26)
    assert turn.latency_ms == pytest.approx(560.0)


def test_turns_without_a_reply_to_measure_are_left_out() -> None:
    bot = [Segment(0.0, 3.0), Segment(5.0, 6.0)]
    talk_over = [Segment(1.0, 2.0)]  # the bot was speaking when the caller stopped
    assert pair_turns(talk_over, bot) == []
    went_on = [Segment(3.2, 3.6), Segment(4.0, 4.5)]  # the caller spoke again before the bot
    assert pair_turns(went_on, bot) == [EnergyTurn(4.5, 5.0)]
    assert pair_turns([Segment(6.5, 7.0)], bot) == []  # no bot speech after it at all
    assert pair_turns([Segment(3.1, 3.5)], [Segment(9.0, 9.5)], max_reply_s=5.0) == []  # too late


def reply(text: str, **marks: float) -> dict[str, object]:
    return {
        "speaker": "bot",
        "text": text,
        "start_s": marks.get("reply_start_s", 0.0),
        "end_s": 15.8,
        "latency": marks,
    }


MARKS = {"speech_end_s": 8.82, "decided_s": 9.12, "asr_final_s": 9.2, "reply_start_s": 9.26}


def test_sidecar_marks_need_every_key_on_a_bot_turn() -> None:
    turns = [
        {"speaker": "caller", "text": "i lost my card", "start_s": 7.0, "end_s": 8.8, "latency": MARKS},
        reply("Sorry?", speech_end_s=1.0, decided_s=1.3),  # half the marks: not a measured reply
        {"speaker": "bot", "text": "Hello", "start_s": 0.0, "end_s": 4.8},
        reply("I heard: i lost my card.", **MARKS),
    ]
    [marks] = sidecar_marks(turns)
    assert (marks.speech_end_s, marks.decided_s, marks.asr_final_s, marks.reply_start_s) == (
        8.82,
        9.12,
        9.2,
        9.26,
    )
    assert marks.text == "I heard: i lost my card." and marks.end_s == 15.8
    assert marks.span_ms("decided_s", "reply_start_s") == pytest.approx(140.0)


def test_marks_match_the_reply_that_became_audible() -> None:
    early = sidecar_marks([reply("A", **{**MARKS, "reply_start_s": 5.0})])
    right = sidecar_marks([reply("B", **MARKS)])
    turn = EnergyTurn(8.7, 9.3)
    assert match_marks(turn, early + right) == right[0]
    assert match_marks(turn, early) is None  # 4.3 s before the audio: some other prompt
    assert match_marks(EnergyTurn(8.7, 9.24), right) == right[0]  # one frame early: recorder's rounding
    assert match_marks(EnergyTurn(8.7, 9.2), right) is None  # audible before its first frame left


def test_first_pause_is_the_one_after_the_first_piece() -> None:
    bot = [Segment(9.26, 9.36), Segment(9.38, 9.72), Segment(10.0, 11.56), Segment(12.04, 12.5)]
    assert first_pause_s(bot, 9.26, 15.8) == pytest.approx(0.28)
    assert first_pause_s(bot, 9.26, 9.7) == 0.0  # no pause of 150 ms before the end


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]  # 1 .. 20
    assert percentile(values, 50) == 10.0
    assert percentile(values, 95) == 19.0
    assert percentile(values, 100) == 20.0
    assert percentile([400.0], 95) == 400.0
    summary = stats([300.0, 500.0, 410.0])
    assert (summary.n, summary.p50, summary.p95, summary.max) == (3, 410.0, 500.0, 500.0)
    assert summary.cells() == "410 / 500 / 500"
    assert math.isnan(stats([]).p50) and stats([]).cells() == "-"
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="not in"):
        percentile([1.0], 0)
