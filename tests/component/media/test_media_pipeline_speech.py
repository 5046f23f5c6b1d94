"""Real speech (espeak-ng -> WAV -> sox µ-law -> our decoder) through the endpointer and pipeline."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from config.settings import MediaSettings
from media import g711
from media.asr.base import AsrResult, AsrStream, Expectation, FinalResult
from media.barge_in import BargeIn
from media.endpointer import Endpointer, EndpointerConfig, SpeechEnded, SpeechStarted
from media.frames import Frame, split_frames
from media.pipeline import AsrFeeder, AsrFinal, CallMediaPipeline, MediaEvent
from media.vad import WebRtcVad

pytestmark = pytest.mark.component
MENU = Expectation(phrases=("check my balance", "talk to an agent"), open_vocabulary=False)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed (apt-get install {name})")
        pytest.skip(f"{name} is not installed")
    return path


def telephone_speech(tmp_path: Path, text: str, voice: str = "en-us", speed: int = 160) -> np.ndarray:
    """espeak-ng at 22.05 kHz, to 8 kHz µ-law with sox, decoded by media.g711."""
    wav = tmp_path / "speech.wav"
    subprocess.run([_tool("espeak-ng"), "-v", voice, "-s", str(speed), "-w", str(wav), text], check=True)
    ulaw = tmp_path / "speech.ul"
    subprocess.run(
        [_tool("sox"), "-V1", str(wav), "-r", "8000", "-c", "1", "-t", "ul", str(ulaw)], check=True
    )
    return g711.ulaw_decode(ulaw.read_bytes())


def speech_bounds(samples: np.ndarray, rel_db: float = -35.0) -> tuple[float, float]:
    """First and last 10 ms block within ``rel_db`` of the loudest block: the truth to compare with."""
    blocks = samples[: samples.size // 80 * 80].reshape(-1, 80).astype(np.float64)
    level = 10 * np.log10(np.mean(blocks**2, axis=1) + 1.0)
    active = np.flatnonzero(level > level.max() + rel_db)
    return active[0] * 0.01, (active[-1] + 1) * 0.01


def with_silence(speech: np.ndarray, before_s: float, after_s: float, noise: float = 20.0) -> np.ndarray:
    rng = np.random.default_rng(5)
    audio = np.concatenate([np.zeros(int(before_s * 8000)), speech, np.zeros(int(after_s * 8000))])
    audio = audio + rng.standard_normal(audio.size) * noise  # a quiet line, about -64 dBFS
    out: np.ndarray = np.clip(audio, -32768, 32767).astype(np.int16)
    return out


class EchoingAsrStream(AsrStream):
    """Counts what it is fed and answers a fixed phrase: the recognizer is not under test here."""

    def __init__(self) -> None:
        self.fed = 0

    def push_frame(self, frame: Frame) -> list[AsrResult]:
        self.fed += 1
        return []

    def flush(self) -> FinalResult:
        return FinalResult("check my balance", 0.8)

    def reset(self) -> None:
        self.fed = 0

    def set_expectation(self, expectation: Expectation) -> None:
        self.expectation = expectation


@pytest.mark.parametrize(("voice", "speed"), [("en-us", 160), ("en+f3", 190), ("en-gb", 140)])
def test_media_endpointer_one_utterance_in_real_speech(tmp_path: Path, voice: str, speed: int) -> None:
    speech = telephone_speech(tmp_path, "I would like to check my balance", voice, speed)
    audio = with_silence(speech, 1.0, 1.5)
    first, last = speech_bounds(audio)
    endpointer = Endpointer(EndpointerConfig.from_settings(MediaSettings()), vad=WebRtcVad(2))
    events = [e for i, f in enumerate(split_frames(audio)) for e in endpointer.push_frame(f, i * 0.02)]
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    started, ended = events
    assert isinstance(started, SpeechStarted) and isinstance(ended, SpeechEnded)
    assert abs(started.at - first) <= 0.08
    assert abs(ended.at - last) <= 0.15  # webrtcvad's hangover is about 100 ms


def test_media_pipeline_real_speech_gives_one_recognised_utterance(tmp_path: Path) -> None:
    speech = telephone_speech(tmp_path, "I want to talk to an agent")
    audio = with_silence(speech, 1.0, 1.5)
    first, last = speech_bounds(audio)
    pipeline = CallMediaPipeline(MediaSettings(end_silence_incomplete_ms=300))  # no pause check here
    stream = EchoingAsrStream()
    feeder = AsrFeeder(stream)
    pipeline.start_listening(MENU, 6.0, now=0.0)
    events: list[MediaEvent] = []
    for i, frame in enumerate(split_frames(audio)):
        events += pipeline.push_caller_frame(frame, i * 0.02)
        events += feeder.run(pipeline.take_asr_work())
    assert [type(e).__name__ for e in events] == ["SpeechStarted", "SpeechEnded", "AsrFinal"]
    final = events[-1]
    assert isinstance(final, AsrFinal) and final.result.text == "check my balance"
    assert abs(final.speech_started_at - first) <= 0.08 and abs(final.speech_ended_at - last) <= 0.15
    # The recognizer heard pre-roll + speech + the trailing silence up to the decode ahead
    # (media.end_silence_prepare_ms), not the whole call.
    utterance_frames = (final.speech_ended_at - final.speech_started_at + 0.3 + 0.1) / 0.02
    assert abs(stream.fed - utterance_frames) <= 2


def test_media_pipeline_silence_only_gives_no_input_after_the_timeout(tmp_path: Path) -> None:
    audio = with_silence(np.zeros(0), 0.0, 5.0)
    pipeline = CallMediaPipeline(MediaSettings())
    pipeline.start_listening(MENU, 3.0, now=0.0)
    events: list[MediaEvent] = []
    for i, frame in enumerate(split_frames(audio)):
        events += pipeline.push_caller_frame(frame, i * 0.02)
    assert [type(e).__name__ for e in events] == ["NoInput"]
    assert events[0].at == pytest.approx(3.0, abs=0.021)


def _prompt_with_echo(tmp_path: Path, echo_db: float, delay_ms: int) -> tuple[np.ndarray, np.ndarray]:
    text = "Welcome to the hotline. Please tell me what you need today."
    prompt = telephone_speech(tmp_path, text, "en+m3")
    shift = delay_ms * 8
    echo = np.concatenate([np.zeros(shift), prompt.astype(np.float64)])[: prompt.size] * 10 ** (echo_db / 20)
    return prompt, echo


def _play(pipeline: CallMediaPipeline, prompt: np.ndarray, caller: np.ndarray) -> list[MediaEvent]:
    caller16 = np.clip(caller + np.random.default_rng(1).standard_normal(caller.size) * 20, -32768, 32767)
    events: list[MediaEvent] = []
    pipeline.prompt_started(barge_in_allowed=True, now=0.0)
    pairs = zip(split_frames(prompt), split_frames(caller16.astype(np.int16)), strict=True)
    for i, (sent, heard) in enumerate(pairs):
        pipeline.prompt_frame(sent)
        events += pipeline.push_caller_frame(heard, i * 0.02)
        if any(isinstance(e, BargeIn) for e in events):
            break
    return events


@pytest.mark.parametrize(("echo_db", "delay_ms"), [(-20.0, 40), (-20.0, 160), (-14.0, 80)])
def test_media_pipeline_prompt_echo_never_barges_in(tmp_path: Path, echo_db: float, delay_ms: int) -> None:
    prompt, echo = _prompt_with_echo(tmp_path, echo_db, delay_ms)
    events = _play(CallMediaPipeline(MediaSettings()), prompt, echo)
    assert events == []


def test_media_pipeline_caller_over_the_prompt_barges_in_within_100_ms(tmp_path: Path) -> None:
    prompt, echo = _prompt_with_echo(tmp_path, -20.0, 60)
    (tmp_path / "caller").mkdir()
    talk = telephone_speech(tmp_path / "caller", "agent please", "en+f2", 170).astype(np.float64)
    caller = echo.copy()
    start = int(1.5 * 8000)
    end = min(caller.size, start + talk.size)
    caller[start:end] += talk[: end - start]
    onset, _ = speech_bounds(talk)
    events = _play(CallMediaPipeline(MediaSettings()), prompt, caller)
    barge = [e for e in events if isinstance(e, BargeIn)]
    assert len(barge) == 1
    assert barge[0].at - (1.5 + onset) <= 0.1
