"""Endpointer timelines: one character per 20 ms frame, '#' voiced, '.' silent."""

from __future__ import annotations

import numpy as np
import pytest

from config.errors import MediaError
from config.settings import MediaSettings
from media.endpointer import (
    Endpointer,
    EndpointerConfig,
    EndpointerEvent,
    EndpointState,
    NoInput,
    SpeechEnded,
    SpeechStarted,
    UtteranceTooLong,
)
from media.frames import FRAME_SAMPLES
from media.vad import EnergyVad


def run(ep: Endpointer, timeline: str, start: float = 0.0) -> list[EndpointerEvent]:
    events: list[EndpointerEvent] = []
    for i, ch in enumerate(timeline.replace(" ", "")):
        events += ep.process(ch == "#", start + i * 0.02)
    return events


def approx_events(events: list[EndpointerEvent]) -> list[tuple[str, float]]:
    return [(type(e).__name__, round(e.at, 3)) for e in events]


def test_media_endpointer_one_utterance_surrounded_by_silence() -> None:
    ep = Endpointer(EndpointerConfig(speech_start_ms=100, end_silence_ms=300))
    events = run(ep, "." * 10 + "#" * 30 + "." * 20)
    assert approx_events(events) == [("SpeechStarted", 0.2), ("SpeechEnded", 0.8)]
    ended = events[1]
    assert isinstance(ended, SpeechEnded)
    assert ended.duration == pytest.approx(0.6) and ended.started_at == pytest.approx(0.2)
    assert ep.state is EndpointState.QUIET


def test_media_endpointer_start_is_reported_when_enough_voice_was_heard() -> None:
    ep = Endpointer(EndpointerConfig(speech_start_ms=100))
    assert run(ep, "####") == []
    assert ep.state is EndpointState.STARTING
    assert ep.process(True, 0.08) == [SpeechStarted(at=0.0)]


def test_media_endpointer_short_clicks_never_start_speech() -> None:
    ep = Endpointer(EndpointerConfig(speech_start_ms=100, start_gap_ms=40))
    assert run(ep, "##...##...#.#...###....") == []
    assert ep.state is EndpointState.QUIET


def test_media_endpointer_tolerates_a_short_gap_while_starting() -> None:
    ep = Endpointer(EndpointerConfig(speech_start_ms=100, start_gap_ms=40))
    assert approx_events(run(ep, "###..##")) == [("SpeechStarted", 0.0)]


def test_media_endpointer_pauses_shorter_than_end_silence_keep_one_utterance() -> None:
    ep = Endpointer(EndpointerConfig(end_silence_ms=300))
    events = run(ep, "#" * 20 + "." * 14 + "#" * 20 + "." * 15)
    assert approx_events(events) == [("SpeechStarted", 0.0), ("SpeechEnded", 1.08)]


def test_media_endpointer_end_silence_is_configurable() -> None:
    fast = Endpointer(EndpointerConfig(end_silence_ms=200))
    events = run(fast, "#" * 10 + "." * 10)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    # SpeechEnded is emitted by the frame that completes 200 ms of silence: frame 19.
    assert run(Endpointer(EndpointerConfig(end_silence_ms=200)), "#" * 10 + "." * 9)[-1] == SpeechStarted(0.0)


def test_media_endpointer_no_input_fires_once_after_the_timeout() -> None:
    ep = Endpointer()
    ep.arm_no_input(2.0, now=1.0)
    events = run(ep, "." * 200, start=1.0)
    assert len(events) == 1 and isinstance(events[0], NoInput)
    assert events[0].at == pytest.approx(3.0) and events[0].waited == pytest.approx(2.0)
    assert ep.no_input_deadline is None


def test_media_endpointer_speech_disarms_no_input() -> None:
    ep = Endpointer()
    ep.arm_no_input(1.0, now=0.0)
    events = run(ep, "." * 20 + "#" * 10 + "." * 100)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]


def test_media_endpointer_no_input_waits_for_a_starting_utterance() -> None:
    ep = Endpointer(EndpointerConfig(speech_start_ms=100))
    ep.arm_no_input(0.5, now=0.0)
    # Voice starts at 0.44 s, just before the deadline; it becomes speech at 0.54 s.
    events = run(ep, "." * 22 + "#" * 10)
    assert approx_events(events) == [("SpeechStarted", 0.44)]
    # A blip that does not become speech lets the timer fire once it is over.
    ep2 = Endpointer(EndpointerConfig(speech_start_ms=100, start_gap_ms=20))
    ep2.arm_no_input(0.5, now=0.0)
    events2 = run(ep2, "." * 23 + "##" + "." * 5)
    assert [type(e) for e in events2] == [NoInput]
    assert events2[0].at == pytest.approx(0.54)  # the frame that ends the blip


def test_media_endpointer_arming_while_speaking_is_a_no_op() -> None:
    ep = Endpointer()
    run(ep, "#" * 10)
    ep.arm_no_input(0.1, now=0.2)
    assert ep.no_input_deadline is None
    assert [type(e) for e in run(ep, "#" * 5 + "." * 50, start=0.2)] == [SpeechEnded]


def test_media_endpointer_check_timers_fires_without_frames() -> None:
    ep = Endpointer()
    ep.arm_no_input(3.0, now=10.0)
    assert ep.check_timers(12.99) == []
    assert ep.check_timers(13.0) == [NoInput(at=13.0, waited=3.0)]
    assert ep.check_timers(14.0) == []


def test_media_endpointer_utterance_too_long_then_needs_a_pause() -> None:
    ep = Endpointer(EndpointerConfig(max_utterance_s=1.0, end_silence_ms=100))
    events = run(ep, "#" * 100)
    assert [type(e) for e in events] == [SpeechStarted, UtteranceTooLong]
    too_long = events[1]
    assert isinstance(too_long, UtteranceTooLong)
    assert too_long.at == pytest.approx(1.0) and too_long.duration == pytest.approx(1.0)
    # Continuous voice after the cut does not start a new utterance...
    assert ep.state is EndpointState.QUIET
    # ...until the caller pauses for end_silence_ms.
    later = run(ep, "....." + "#" * 10, start=2.0)
    assert approx_events(later) == [("SpeechStarted", 2.1)]


def test_media_endpointer_push_frame_uses_the_vad_backend() -> None:
    ep = Endpointer(EndpointerConfig(speech_start_ms=40), vad=EnergyVad(-40.0))
    loud = np.full(FRAME_SAMPLES, 3000, dtype=np.int16)
    quiet = np.zeros(FRAME_SAMPLES, dtype=np.int16)
    assert ep.push_frame(loud, 0.0) == []
    assert ep.push_frame(loud, 0.02) == [SpeechStarted(at=0.0)]
    assert ep.push_frame(quiet, 0.04) == []
    with pytest.raises(MediaError, match="needs a VAD backend"):
        Endpointer().push_frame(loud, 0.0)


def test_media_endpointer_config_validation_and_settings() -> None:
    with pytest.raises(MediaError, match="speech_start_ms"):
        EndpointerConfig(speech_start_ms=0)
    with pytest.raises(MediaError, match="end_silence_ms"):
        EndpointerConfig(end_silence_ms=10)
    with pytest.raises(MediaError, match="max_utterance_s"):
        EndpointerConfig(max_utterance_s=0.05)
    with pytest.raises(MediaError, match="no-input timeout"):
        Endpointer().arm_no_input(0, now=0.0)
    cfg = EndpointerConfig.from_settings(MediaSettings(speech_start_ms=60, end_silence_ms=240))
    assert (cfg.speech_start_ms, cfg.end_silence_ms, cfg.max_utterance_s) == (60, 240, 15.0)


def test_media_endpointer_reset_clears_state_and_timer() -> None:
    ep = Endpointer()
    ep.arm_no_input(1.0, 0.0)
    run(ep, "#" * 3)
    ep.reset()
    assert ep.state is EndpointState.QUIET and ep.no_input_deadline is None and ep.speech_onset is None
