"""CallMediaPipeline over synthetic frames, with a scripted fake ASR stream."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from config.errors import MediaError
from config.settings import MediaSettings
from media.asr.base import AsrResult, AsrStream, Expectation, FinalResult, PartialResult
from media.barge_in import BargeIn
from media.dtmf_detector import DtmfDigit, dtmf_tone
from media.endpointer import NoInput, SpeechEnded, SpeechStarted, UtteranceTooLong
from media.frames import FRAME_SAMPLES, Frame, split_frames
from media.pipeline import (
    AsrCancel,
    AsrFailed,
    AsrFeed,
    AsrFeeder,
    AsrFinal,
    AsrFinish,
    AsrPartial,
    AsrSetExpectation,
    AudioRejected,
    CallMediaPipeline,
    MediaEvent,
)
from media.vad import EnergyVad

MENU = Expectation(phrases=("billing", "support"), open_vocabulary=False)


class ScriptedAsrStream(AsrStream):
    """Replays a timeline: partials after the n-th frame of an utterance, then a final."""

    def __init__(
        self,
        partials: Sequence[tuple[int, str]] = (),
        final: FinalResult | None = None,
        endpoint_after: int | None = None,
    ) -> None:
        self.partials = dict(partials)
        self.final = final or FinalResult("billing", 0.9)
        self.endpoint_after = endpoint_after
        self.frames: list[Frame] = []
        self.expectations: list[Expectation] = []
        self.flushes = 0
        self.resets = 0

    def push_frame(self, frame: Frame) -> list[AsrResult]:
        self.frames.append(frame)
        n = len(self.frames)
        out: list[AsrResult] = []
        if n in self.partials:
            out.append(PartialResult(self.partials[n]))
        if self.endpoint_after is not None and n == self.endpoint_after:
            out.append(self.final)
        return out

    def flush(self) -> FinalResult:
        self.flushes += 1
        result = FinalResult("", 0.0) if self.endpoint_after is not None else self.final
        self.frames = []
        return result

    def reset(self) -> None:
        self.resets += 1
        self.frames = []

    def set_expectation(self, expectation: Expectation) -> None:
        self.expectations.append(expectation)


def marked(index: int, loud: bool) -> Frame:
    """A frame whose first sample is its index (to see which frames reached the ASR)."""
    frame = np.full(FRAME_SAMPLES, 4000 if loud else 3, dtype=np.int16)
    frame[0] = index
    return frame


class Harness:
    def __init__(self, pipeline: CallMediaPipeline, stream: ScriptedAsrStream) -> None:
        self.pipeline = pipeline
        self.stream = stream
        self.feeder = AsrFeeder(stream)
        self.index = 0

    @property
    def now(self) -> float:
        return self.index * 0.02

    def push(self, timeline: str, prompt: Sequence[Frame] | None = None) -> list[MediaEvent]:
        """'#' loud frame, '.' quiet frame; optional prompt frames sent alongside."""
        events: list[MediaEvent] = []
        for k, ch in enumerate(timeline):
            if prompt is not None:
                self.pipeline.prompt_frame(prompt[k])
            events += self.pipeline.push_caller_frame(marked(self.index, ch == "#"), self.now)
            events += self.feeder.run(self.pipeline.take_asr_work())
            self.index += 1
        return events


# One end of turn (300 ms) for every utterance: the pause check has its own tests below.
ONE_TIER = MediaSettings(end_silence_incomplete_ms=300)


def make(settings: MediaSettings | None = None, stream: ScriptedAsrStream | None = None) -> Harness:
    pipeline = CallMediaPipeline(settings or ONE_TIER, vad=EnergyVad(-40.0))
    return Harness(pipeline, stream or ScriptedAsrStream())


def kinds(events: Sequence[MediaEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


def test_media_pipeline_utterance_is_recognised_with_pre_roll_and_times() -> None:
    h = make(stream=ScriptedAsrStream(partials=[(20, "bil")]))
    h.pipeline.start_listening(MENU, 5.0, now=0.0)
    events = h.push("." * 30 + "#" * 40 + "." * 20)
    assert kinds(events) == ["SpeechStarted", "AsrPartial", "SpeechEnded", "AsrFinal"]
    started, partial, ended, final = events
    assert isinstance(started, SpeechStarted) and started.at == pytest.approx(0.6)
    assert isinstance(ended, SpeechEnded) and ended.at == pytest.approx(1.4)
    assert isinstance(partial, AsrPartial) and partial.text == "bil"
    assert isinstance(final, AsrFinal) and final.result.text == "billing"
    assert (final.speech_started_at, final.speech_ended_at) == pytest.approx((0.6, 1.4))
    assert h.stream.expectations == [MENU] and h.stream.flushes == 1


def test_media_pipeline_asr_gets_300_ms_of_pre_roll_then_the_utterance_only() -> None:
    stream = ScriptedAsrStream()
    seen: list[int] = []
    original = stream.push_frame

    def spy(frame: Frame) -> list[AsrResult]:
        seen.append(int(frame[0]))
        return original(frame)

    stream.push_frame = spy  # type: ignore[method-assign]
    h = make(stream=stream)
    h.pipeline.start_listening(MENU, 5.0, now=0.0)
    h.push("." * 30 + "#" * 40 + "." * 40)
    # Onset at frame 30: 15 frames (300 ms) of pre-roll, the speech, then 100 ms of the trailing
    # silence (media.end_silence_prepare_ms: the rest is held back after the decode ahead).
    assert seen == list(range(15, 30 + 40 + 5))


def test_media_pipeline_no_asr_work_while_not_listening() -> None:
    h = make()
    events = h.push("." * 10 + "#" * 20 + "." * 20)
    assert kinds(events) == ["SpeechStarted", "SpeechEnded"]
    assert h.stream.frames == [] and h.stream.flushes == 0


def test_media_pipeline_no_input_after_the_timeout_only_when_listening() -> None:
    h = make()
    assert h.push("." * 200) == []
    h.pipeline.start_listening(MENU, 2.0, now=h.now)
    events = h.push("." * 150)
    assert kinds(events) == ["NoInput"]
    assert isinstance(events[0], NoInput) and events[0].waited == pytest.approx(2.0)


def test_media_pipeline_no_input_counts_from_the_end_of_the_prompt() -> None:
    h = make()
    h.pipeline.prompt_started(barge_in_allowed=True, now=0.0)
    h.pipeline.start_listening(MENU, 1.0, now=0.0)
    assert h.push("." * 150) == []  # 3 s of prompt: no timer yet
    h.pipeline.prompt_finished(now=h.now)
    events = h.push("." * 60)
    assert kinds(events) == ["NoInput"] and events[0].at == pytest.approx(4.0)


def test_media_pipeline_check_timers_without_frames() -> None:
    h = make()
    h.pipeline.start_listening(MENU, 1.0, now=0.0)
    assert h.pipeline.check_timers(0.5) == []
    assert kinds(h.pipeline.check_timers(1.0)) == ["NoInput"]


def test_media_pipeline_barge_in_within_100_ms_and_speech_is_captured() -> None:
    h = make()
    quiet_prompt = [np.zeros(FRAME_SAMPLES, dtype=np.int16)] * 100
    h.pipeline.prompt_started(barge_in_allowed=True, now=0.0)
    h.pipeline.start_listening(MENU, 5.0, now=0.0)
    events = h.push("." * 20 + "#" * 30 + "." * 20, prompt=quiet_prompt)
    barge = [e for e in events if isinstance(e, BargeIn)]
    assert len(barge) == 1 and barge[0].onset == pytest.approx(0.4)
    assert barge[0].at - 0.4 <= 0.1
    assert kinds(events)[-1] == "AsrFinal"


def test_media_pipeline_barge_in_forbidden() -> None:
    h = make()
    h.pipeline.prompt_started(barge_in_allowed=False, now=0.0)
    events = h.push("." * 10 + "#" * 30)
    assert not any(isinstance(e, BargeIn) for e in events)


def test_media_pipeline_speech_over_a_prompt_that_must_be_heard_answers_nothing() -> None:
    """A "yes" said over the disclosure is not consent: the question queued after it waits."""
    h = make()
    quiet_prompt = [np.zeros(FRAME_SAMPLES, dtype=np.int16)] * 200
    h.pipeline.prompt_started(barge_in_allowed=False, now=0.0)
    h.pipeline.start_listening(MENU, 5.0, now=0.0)
    over = h.push("." * 10 + "#" * 30 + "." * 20, prompt=quiet_prompt)
    assert not any(isinstance(e, AsrFinal | BargeIn) for e in over)
    assert h.stream.frames == [] and h.stream.flushes == 0
    h.pipeline.prompt_finished(h.now)
    after = h.push("." * 10 + "#" * 30 + "." * 20)
    final = after[-1]  # the answer after the prompt is heard, and only it
    assert isinstance(final, AsrFinal) and final.speech_started_at == pytest.approx(1.4)
    assert h.stream.flushes == 1


def test_media_pipeline_a_prompt_that_must_be_heard_cancels_an_utterance_in_progress() -> None:
    h = make()
    h.pipeline.start_listening(MENU, 5.0, now=0.0)
    h.push("." * 10 + "#" * 10)  # the caller starts talking between two prompts
    h.pipeline.prompt_started(barge_in_allowed=False, now=h.now)
    work = h.pipeline.take_asr_work()
    assert work == [AsrCancel()]
    events = h.push("#" * 20 + "." * 20)
    assert not any(isinstance(e, AsrFinal) for e in events)


def test_media_pipeline_prompt_echo_is_not_an_utterance() -> None:
    h = make()
    prompt = [np.full(FRAME_SAMPLES, 12000, dtype=np.int16)] * 100
    h.pipeline.prompt_started(barge_in_allowed=True, now=0.0)
    h.pipeline.start_listening(MENU, 30.0, now=0.0)
    events: list[MediaEvent] = []
    for i in range(100):
        h.pipeline.prompt_frame(prompt[i])
        echo = (prompt[max(i - 3, 0)] // 10).astype(np.int16)  # -20 dB, 60 ms late
        events += h.pipeline.push_caller_frame(echo, i * 0.02)
    assert events == [] and h.pipeline.take_asr_work() == [AsrSetExpectation(MENU)]


def test_media_pipeline_in_band_dtmf_is_a_digit_not_speech() -> None:
    h = make()
    h.pipeline.start_listening(MENU, 10.0, now=0.0)
    audio = np.concatenate([np.zeros(1600, np.int16), dtmf_tone("7", 0.08), np.zeros(8000, np.int16)])
    events: list[MediaEvent] = []
    for i, frame in enumerate(split_frames(audio)):
        events += h.pipeline.push_caller_frame(frame, i * 0.02)
    assert kinds(events) == ["DtmfDigit"]
    assert isinstance(events[0], DtmfDigit) and events[0].digit == "7"
    assert events[0].at == pytest.approx(0.2, abs=0.011)
    assert not any(isinstance(w, AsrFeed) for w in h.pipeline.take_asr_work())


def test_media_pipeline_stop_listening_mid_utterance_cancels_the_asr() -> None:
    h = make()
    h.pipeline.start_listening(MENU, 5.0, now=0.0)
    h.push("#" * 20)
    h.pipeline.stop_listening()
    assert h.pipeline.take_asr_work() == [AsrCancel()]
    h.feeder.run([AsrCancel()])
    events = h.push("#" * 5 + "." * 30)
    assert kinds(events) == ["SpeechEnded"]
    assert h.stream.resets == 1 and h.stream.flushes == 0


def test_media_pipeline_listening_that_starts_mid_utterance_gets_the_start() -> None:
    h = make()
    h.push("." * 10 + "#" * 20)  # the caller talks over a prompt the flow did not listen to
    h.pipeline.start_listening(MENU, 5.0, now=h.now)
    work = h.pipeline.take_asr_work()
    assert isinstance(work[0], AsrSetExpectation) and isinstance(work[1], AsrFeed)
    assert int(work[1].frames[0][0]) == 0  # onset at frame 10 minus 300 ms of pre-roll
    assert work[1].speech_started_at == pytest.approx(0.2)


def test_media_pipeline_engine_endpointing_gives_one_final() -> None:
    h = make(stream=ScriptedAsrStream(endpoint_after=30))
    h.pipeline.start_listening(MENU, 5.0, now=0.0)
    events = h.push("." * 10 + "#" * 40 + "." * 20)
    finals = [e for e in events if isinstance(e, AsrFinal)]
    assert len(finals) == 1 and finals[0].result.text == "billing"


def test_media_pipeline_utterance_too_long_is_finished() -> None:
    h = make(MediaSettings(max_utterance_s=1.0))
    h.pipeline.start_listening(MENU, 5.0, now=0.0)
    events = h.push("#" * 80)
    assert kinds(events) == ["SpeechStarted", "UtteranceTooLong", "AsrFinal"]
    too_long, final = events[1], events[2]
    assert isinstance(too_long, UtteranceTooLong) and isinstance(final, AsrFinal)
    assert final.speech_ended_at == pytest.approx(1.0)


def test_media_pipeline_malformed_frames_are_replaced_not_fatal() -> None:
    h = make()
    h.pipeline.start_listening(MENU, 1.0, now=0.0)
    events = h.pipeline.push_caller_frame(np.zeros(80, dtype=np.int16), 0.0)
    events += h.pipeline.push_caller_frame(np.array([np.nan] * FRAME_SAMPLES), 0.02)
    assert kinds(events) == ["AudioRejected", "AudioRejected"]
    assert isinstance(events[0], AudioRejected) and "got 80" in events[0].reason
    assert h.pipeline.frames_rejected == 2
    h.pipeline.prompt_frame(np.zeros(3, dtype=np.int16))  # a bad prompt frame is skipped
    h.index = 2
    assert kinds(h.push("." * 50)) == ["NoInput"]


def test_media_pipeline_clipped_audio_is_counted_and_still_heard() -> None:
    h = make()
    h.pipeline.start_listening(MENU, 5.0, now=0.0)
    square = np.where(np.arange(FRAME_SAMPLES) % 16 < 8, 32767, -32768).astype(np.int16)
    events: list[MediaEvent] = []
    for i in range(40):
        events += h.pipeline.push_caller_frame(square if 5 <= i < 25 else marked(i, False), i * 0.02)
    # Heard as sound (not rejected); and a steady square wave is a tone, so the recognizer is
    # spared it (media.tone_guard).
    assert kinds(events) == ["SpeechStarted", "SpeechEnded", "NonSpeech"]
    assert h.pipeline.frames_clipped == 20 and h.pipeline.frames_rejected == 0


def test_media_pipeline_work_batches_when_not_drained() -> None:
    h = make()
    h.pipeline.start_listening(MENU, 5.0, now=0.0)
    for i in range(60):
        h.pipeline.push_caller_frame(marked(i, 5 <= i < 40), i * 0.02)
    work = h.pipeline.take_asr_work()
    assert [type(w).__name__ for w in work] == ["AsrSetExpectation", "AsrFeed", "AsrPrepare", "AsrFinish"]
    feed, finish = work[1], work[3]
    assert isinstance(feed, AsrFeed) and isinstance(finish, AsrFinish)
    assert len(feed.frames) == 5 + 35 + 5 and finish.speech_ended_at == pytest.approx(0.8)


class BrokenAsrStream(ScriptedAsrStream):
    """Fails on the 5th frame of the first utterance, like an engine losing its model."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = True

    def push_frame(self, frame: Frame) -> list[AsrResult]:
        if self.broken and len(self.frames) == 4:
            self.broken = False
            raise MediaError("decoder lost its model")
        return super().push_frame(frame)


def test_media_pipeline_asr_failure_is_an_event_and_the_next_utterance_works() -> None:
    h = make(stream=BrokenAsrStream())
    h.pipeline.start_listening(MENU, 5.0, now=0.0)
    events = h.push("." * 10 + "#" * 20 + "." * 20 + "#" * 20 + "." * 20)
    assert kinds(events) == [
        "SpeechStarted",
        "AsrFailed",
        "SpeechEnded",
        "SpeechStarted",
        "SpeechEnded",
        "AsrFinal",
    ]
    failed = events[1]
    assert isinstance(failed, AsrFailed) and "lost its model" in failed.reason
    assert failed.at == pytest.approx(0.30)  # end of the first feed (pre-roll + onset)
    assert h.stream.resets == 1 and h.stream.flushes == 1


def test_media_pipeline_argument_errors() -> None:
    with pytest.raises(MediaError, match="pre_roll_ms"):
        CallMediaPipeline(pre_roll_ms=5000)
    with pytest.raises(MediaError, match="no-input timeout"):
        CallMediaPipeline(vad=EnergyVad()).start_listening(MENU, 0.0, now=0.0)
    pipeline = CallMediaPipeline(MediaSettings(no_input_timeout_s=2.5), vad=EnergyVad())
    pipeline.start_listening(MENU, None, now=1.0)
    assert pipeline.listening and pipeline.endpointer.no_input_deadline == pytest.approx(3.5)
    pipeline.stop_listening()
    pipeline.stop_listening()
    assert not pipeline.listening


def test_media_pipeline_takes_its_tuning_from_settings() -> None:
    settings = MediaSettings(pre_roll_ms=100, in_band_dtmf=False, barge_in_min_speech_ms=120)
    pipeline = CallMediaPipeline(settings)
    assert pipeline.pre_roll_s == pytest.approx(0.1)
    assert pipeline.dtmf is None
    assert pipeline.barge_in.config.min_speech_ms == 120
    assert CallMediaPipeline(settings, pre_roll_ms=200).pre_roll_s == pytest.approx(0.2)  # explicit wins
