"""The transcript column beside the waveform lanes: turns and pauses in time order, with long
silences between turns shown as gaps."""

from __future__ import annotations

from console.recording_transcript import timeline
from recordings.sidecar import Pause, Turn


def test_turns_pauses_and_gaps_come_in_time_order() -> None:
    turns = [
        Turn("caller", "my card number is", 4.0, 5.0, 0.9),
        Turn("bot", "Welcome", 0.0, 1.0),
        Turn("bot", "Thank you", 20.0, 21.0),
        Turn("caller", "bye", 24.5, 25.0, 0.8, interrupted=True),
    ]
    items = timeline(turns, [Pause(6.0, 19.0, "card number")])
    assert [(i.kind, i.start_s, i.end_s) for i in items] == [
        ("turn", 0.0, 1.0),
        ("gap", 1.0, 4.0),  # 3 s before the caller spoke
        ("turn", 4.0, 5.0),
        ("pause", 6.0, 19.0),  # the pause explains the silence: no gap around it
        ("turn", 20.0, 21.0),
        ("gap", 21.0, 24.5),
        ("turn", 24.5, 25.0),
    ]
    assert items[1].length_s == 3.0 and items[0].clock == "0:00.0" and items[-1].clock == "0:24.5"
    assert items[-1].interrupted and items[3].text == "card number"


def test_short_silences_and_an_open_pause_are_not_gaps() -> None:
    items = timeline([Turn("bot", "Hi", 0.0, 1.0), Turn("caller", "hello", 2.5, 3.0)], [Pause(5.0, None)])
    assert [i.kind for i in items] == ["turn", "turn", "pause"]
    assert items[2].length_s is None
    assert timeline([], []) == []
