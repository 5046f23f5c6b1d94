"""End of turn in two tiers: a complete phrase ends the turn at a short pause, anything else waits.

Replays frames through the endpointer and the pipeline with a fake recognizer that says whether
the audio so far is a complete phrase: no sockets, no sleeps.
"""

from __future__ import annotations

import numpy as np
import pytest

from config.errors import MediaError
from config.settings import MediaSettings
from media.asr import wire
from media.asr.base import AsrResult, AsrStream, Expectation, FinalResult
from media.asr.grammar import PhraseSet
from media.asr.wire import Op
from media.endpointer import Endpointer, EndpointerConfig, EndpointerEvent, SpeechEnded, SpeechPaused
from media.frames import FRAME_SAMPLES, Frame
from media.pipeline import (
    AsrCheck,
    AsrFeed,
    AsrFeeder,
    AsrFinal,
    AsrFinish,
    AsrPrepare,
    AsrWork,
    CallMediaPipeline,
    MediaEvent,
)
from media.vad import EnergyVad

WHEN = Expectation(phrases=("tomorrow", "ten in the morning"), open_vocabulary=False)


def run(ep: Endpointer, timeline: str) -> list[tuple[str, float]]:
    events: list[EndpointerEvent] = []
    for i, ch in enumerate(timeline):
        events += ep.process(ch == "#", i * 0.02)
    return [(type(e).__name__, round(e.at, 3)) for e in events]


def test_media_endpointer_without_hold_ends_at_end_silence() -> None:
    ep = Endpointer(EndpointerConfig(end_silence_ms=300))
    assert run(ep, "#" * 10 + "." * 20) == [("SpeechStarted", 0.0), ("SpeechEnded", 0.2)]


def test_media_endpointer_hold_pauses_then_resumes_the_same_utterance() -> None:
    ep = Endpointer(EndpointerConfig(end_silence_ms=300))
    ep.hold_silence_ms = 1000
    # 10 voiced, 25 silent (a 500 ms pause), 10 voiced, 60 silent.
    events = run(ep, "#" * 10 + "." * 25 + "#" * 10 + "." * 60)
    assert events == [
        ("SpeechStarted", 0.0),
        ("SpeechPaused", 0.2),  # after 300 ms of silence: maybe the end
        ("SpeechPaused", 0.9),  # the caller went on: same utterance, paused again
        ("SpeechEnded", 0.9),  # 1000 ms of silence: the end, whatever was said
    ]


def test_media_endpointer_checks_at_each_pause_point_before_the_hold() -> None:
    ep = Endpointer(EndpointerConfig(end_silence_ms=300))
    ep.hold_silence_ms = 1000
    ep.pause_points_ms = (150, 300)
    events = run(ep, "#" * 10 + "." * 60)
    # The silence starts at 0.2 s; checks after 160 ms and 300 ms of it, the end after 1000 ms.
    assert events == [
        ("SpeechStarted", 0.0),
        ("SpeechPaused", 0.2),
        ("SpeechPaused", 0.2),
        ("SpeechEnded", 0.2),
    ]
    ep.reset()
    ep.hold_silence_ms = 1000
    pauses: list[EndpointerEvent] = []
    for i, ch in enumerate("#" * 10 + "." * 8):
        pauses += [e for e in ep.process(ch == "#", i * 0.02) if isinstance(e, SpeechPaused)]
    assert len(pauses) == 1  # 160 ms of silence passed the 150 ms point only


def test_media_pipeline_first_check_at_the_short_pause_ends_a_complete_phrase_sooner() -> None:
    stream = PauseAwareStream(FinalResult("tomorrow", 0.9, in_grammar=True))
    settings = MediaSettings(end_silence_incomplete_ms=1000, end_silence_complete_ms=150)
    pipeline = CallMediaPipeline(settings, vad=EnergyVad(-40.0))
    feeder = AsrFeeder(stream)
    pipeline.start_listening(WHEN, 10.0, now=0.0)
    decided_at = None
    for i, ch in enumerate("." * 10 + "#" * 20 + "." * 30):
        pipeline.push_caller_frame(frame(ch == "#"), i * 0.02)
        if any(isinstance(r, AsrFinal) for r in feeder.run(pipeline.take_asr_work())):
            decided_at = (i + 1) * 0.02
            break
    assert decided_at == pytest.approx(0.6 + 0.16)  # speech ended at 0.6 s, decided 160 ms later


def test_media_endpointer_end_utterance_ends_only_a_paused_utterance() -> None:
    ep = Endpointer(EndpointerConfig(end_silence_ms=300))
    ep.hold_silence_ms = 1000
    run(ep, "#" * 10)
    assert ep.end_utterance() is None  # still speaking
    for i in range(15):
        ep.process(False, 0.2 + i * 0.02)
    ended = ep.end_utterance()
    assert isinstance(ended, SpeechEnded) and ended.at == pytest.approx(0.2)
    assert not ep.in_speech and ep.end_utterance() is None


def test_media_grammar_a_prefix_of_a_longer_phrase_does_not_end_the_turn() -> None:
    phrases = PhraseSet.build(("ten", "ten in the morning", "Tomorrow"))
    assert not phrases.ends_turn("ten")
    assert phrases.ends_turn("ten in the morning") and phrases.ends_turn("Tomorrow")
    assert not phrases.ends_turn("something else")


class PauseAwareStream(AsrStream):
    """Answers the pause check with ``complete`` (a result, or None: keep listening)."""

    def __init__(self, complete: FinalResult | None) -> None:
        self.complete = complete
        self.fed = 0
        self.checks = 0
        self.flushes = 0
        self.resets = 0
        self.prepared_at: list[int] = []  # frames fed when each decode ahead was asked for
        self.prepared_with: list[tuple[int, int]] = []

    def prepare(self, silence_ms: int, pad_ms: int) -> None:
        self.prepared_at.append(self.fed)
        self.prepared_with.append((silence_ms, pad_ms))

    def push_frame(self, frame: Frame) -> list[AsrResult]:
        self.fed += 1
        return []

    def complete_phrase(self) -> FinalResult | None:
        self.checks += 1
        return self.complete

    def flush(self) -> FinalResult:
        self.flushes += 1
        return FinalResult("ten in the morning", 0.9, in_grammar=True)

    def reset(self) -> None:
        self.resets += 1

    def set_expectation(self, expectation: Expectation) -> None:
        pass


def frame(loud: bool) -> Frame:
    return np.full(FRAME_SAMPLES, 4000 if loud else 3, dtype=np.int16)


def drive(
    stream: PauseAwareStream, timeline: str, expectation: Expectation = WHEN, stop_on_final: bool = True
) -> list[MediaEvent]:
    """'#' loud, '.' quiet; stops listening at a final, as the call does."""
    pipeline = CallMediaPipeline(MediaSettings(end_silence_incomplete_ms=1000), vad=EnergyVad(-40.0))
    feeder = AsrFeeder(stream)
    pipeline.start_listening(expectation, 10.0, now=0.0)
    events: list[MediaEvent] = []
    for i, ch in enumerate(timeline):
        events += pipeline.push_caller_frame(frame(ch == "#"), i * 0.02)
        results = feeder.run(pipeline.take_asr_work())
        events += results
        if stop_on_final and any(isinstance(r, AsrFinal) for r in results):
            pipeline.stop_listening()
            assert not pipeline.endpointer.in_speech  # what follows is a new utterance
            events += feeder.run(pipeline.take_asr_work())
    return events


def kinds(events: list[MediaEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


def test_media_pipeline_complete_phrase_ends_the_turn_at_the_short_pause() -> None:
    stream = PauseAwareStream(FinalResult("tomorrow", 0.9, in_grammar=True))
    events = drive(stream, "." * 10 + "#" * 20 + "." * 60)
    assert kinds(events) == ["SpeechStarted", "SpeechPaused", "AsrFinal"]
    final = events[-1]
    assert isinstance(final, AsrFinal) and final.result.text == "tomorrow"
    assert (final.speech_started_at, final.speech_ended_at) == pytest.approx((0.2, 0.6))
    assert stream.checks == 1 and stream.flushes == 0 and stream.resets == 1


def test_media_pipeline_incomplete_phrase_keeps_the_utterance_open_across_a_pause() -> None:
    stream = PauseAwareStream(None)  # "ten" so far: wait for the rest
    events = drive(stream, "." * 10 + "#" * 10 + "." * 25 + "#" * 20 + "." * 60)
    assert kinds(events) == ["SpeechStarted", "SpeechPaused", "SpeechPaused", "SpeechEnded", "AsrFinal"]
    final = events[-1]
    assert isinstance(final, AsrFinal) and final.result.text == "ten in the morning"
    assert (final.speech_started_at, final.speech_ended_at) == pytest.approx((0.2, 1.3))
    assert stream.checks == 2 and stream.flushes == 1
    # Everything from the pre-roll (all 10 quiet frames) to the end of the second word reached
    # the recognizer, the pause included (held back after the first decode ahead, then fed when
    # the caller went on); of the final silence only the 100 ms before the decode ahead.
    assert stream.fed == 10 + 10 + 25 + 20 + 5
    assert stream.prepared_at == [10 + 10 + 5, 10 + 10 + 25 + 20 + 5]
    assert stream.prepared_with == [(100, 200)] * 2  # the check would have seen 300 ms


def queued_work(settings: MediaSettings, expectation: Expectation, timeline: str) -> list[AsrWork]:
    """The ASR work a pipeline queues over ``timeline`` ('#' loud, '.' quiet)."""
    pipeline = CallMediaPipeline(settings, vad=EnergyVad(-40.0))
    pipeline.start_listening(expectation, 10.0, now=0.0)
    work: list[AsrWork] = []
    for i, ch in enumerate(timeline):
        pipeline.push_caller_frame(frame(ch == "#"), i * 0.02)
        work += pipeline.take_asr_work()
    return work


def test_media_pipeline_decodes_ahead_once_per_silence_and_holds_the_rest_back() -> None:
    settings = MediaSettings(end_silence_incomplete_ms=1000, end_silence_prepare_ms=200)
    work = queued_work(settings, WHEN, "." * 10 + "#" * 20 + "." * 12)
    fed = sum(len(item.frames) for item in work if isinstance(item, AsrFeed))
    assert [type(item).__name__ for item in work].count("AsrPrepare") == 1
    assert fed == 10 + 20 + 10  # pre-roll, speech, 200 ms of its silence; 2 frames held back
    assert isinstance(work[-1], AsrPrepare)  # nothing fed after it


@pytest.mark.parametrize(
    ("settings", "expectation"),
    [
        (MediaSettings(end_silence_incomplete_ms=1000, end_silence_prepare_ms=300), WHEN),
        (MediaSettings(end_silence_incomplete_ms=1000), Expectation()),
        (MediaSettings(end_silence_incomplete_ms=1000, asr_engine="vosk"), WHEN),
    ],
    ids=["prepare-not-before-the-check", "open-vocabulary", "vosk-decodes-as-audio-arrives"],
)
def test_media_pipeline_no_decode_ahead(settings: MediaSettings, expectation: Expectation) -> None:
    work = queued_work(settings, expectation, "." * 10 + "#" * 20 + "." * 60)
    assert not any(isinstance(item, AsrPrepare) for item in work)
    assert isinstance(work[-1], AsrFinish | AsrCheck)


def test_media_pipeline_open_vocabulary_has_no_pause_check() -> None:
    stream = PauseAwareStream(FinalResult("tomorrow", 0.9, in_grammar=True))
    events = drive(stream, "." * 10 + "#" * 20 + "." * 30, expectation=Expectation())
    assert kinds(events) == ["SpeechStarted", "SpeechEnded", "AsrFinal"]
    assert stream.checks == 0


def test_media_feeder_after_a_decided_check_ignores_the_rest_of_the_utterance() -> None:
    stream = PauseAwareStream(FinalResult("tomorrow", 0.9, in_grammar=True))
    feeder = AsrFeeder(stream)
    first = feeder.run([AsrCheck(0.2, 0.6)])
    assert kinds(list(first)) == ["AsrFinal"]
    assert feeder.run([AsrCheck(0.2, 0.9), AsrFinish(0.2, 1.0)]) == []  # one final per utterance
    assert stream.checks == 1 and stream.flushes == 0 and stream.resets == 1


def test_media_wire_check_ops_round_trip() -> None:
    for op in (Op.CHECK, Op.INCOMPLETE):
        message = wire.decode(wire.encode(op, 7))
        assert (message.op, message.stream, message.payload) == (op, 7, b"")


def test_media_wire_prepare_round_trips_and_refuses_bad_payloads() -> None:
    message = wire.decode(wire.encode(Op.PREPARE, 7, wire.prepare_payload(100, 200)))
    assert message.op is Op.PREPARE and wire.payload_prepare(message.payload) == (100, 200)
    with pytest.raises(MediaError, match="PREPARE payload is 3 bytes"):
        wire.payload_prepare(b"abc")
    with pytest.raises(MediaError, match=r"out of 0\.\.65535"):
        wire.prepare_payload(-1, 200)


def test_media_pause_events_are_not_emitted_without_listening() -> None:
    pipeline = CallMediaPipeline(MediaSettings(end_silence_incomplete_ms=1000), vad=EnergyVad(-40.0))
    events: list[MediaEvent] = []
    for i, ch in enumerate("#" * 10 + "." * 20):
        events += pipeline.push_caller_frame(frame(ch == "#"), i * 0.02)
    assert not any(isinstance(e, SpeechPaused) for e in events)
    assert kinds(events) == ["SpeechStarted", "SpeechEnded"]
