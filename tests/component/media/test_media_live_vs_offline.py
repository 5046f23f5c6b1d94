"""Live vs offline: a callee's answer, frame by frame through the call pipeline, gets the words the
offline decoder gets from the whole utterance.

The answers are rendered like the e2e callers: espeak-ng, several voices and rates, through sox to
8 kHz µ-law and back, after the bot's question whose echo leaks onto the caller track. "ten ...
in the morning" carries a 450 ms pause inside the phrase, longer than the 300 ms end of turn:
before the fix the live path cut it into "ten" (forced onto "today") and "in the morning"
(heard as "in the afternoon").
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from config.settings import MediaSettings
from media import g711
from media.asr.base import AsrEngine, Expectation
from media.asr.pocketsphinx_engine import PocketsphinxEngine
from media.endpointer import SpeechEnded
from media.frames import split_frames
from media.pipeline import AsrFeeder, AsrFinal, CallMediaPipeline, MediaEvent
from media.speech_pool import SpeechPool

pytestmark = pytest.mark.component
PHRASES = ("tomorrow", "today", "next week", "ten in the morning", "in the afternoon", "ten", "yes", "no")
WHEN = Expectation(phrases=PHRASES, open_vocabulary=False)
QUESTION = "When would you like us to call you back?"
RATE = 8000


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed")
        pytest.skip(f"{name} is not installed")
    return path


def _speak(tmp_path: Path, text: str, voice: str, rate: int) -> npt.NDArray[np.float64]:
    """espeak-ng -> sox 8 kHz µ-law -> our G.711 decoder, trimmed to the speech."""
    wav, ulaw = tmp_path / "say.wav", tmp_path / "say.ul"
    subprocess.run([_tool("espeak-ng"), "-v", voice, "-s", str(rate), "-w", str(wav), text], check=True)
    subprocess.run(
        [_tool("sox"), "-V1", str(wav), "-r", "8000", "-c", "1", "-t", "ul", str(ulaw)], check=True
    )
    audio = g711.ulaw_decode(ulaw.read_bytes()).astype(np.float64)
    blocks = audio[: audio.size // 80 * 80].reshape(-1, 80)
    level = 10 * np.log10(np.mean(blocks**2, axis=1) + 1.0)
    active = np.flatnonzero(level > level.max() - 40)
    return audio[active[0] * 80 : (active[-1] + 1) * 80]


def _answer(tmp_path: Path, parts: tuple[str | float, ...], voice: str, rate: int) -> npt.NDArray[np.float64]:
    """The callee's answer: words, with pauses (floats, seconds) where they hesitate."""
    pieces = [
        np.zeros(int(p * RATE)) if isinstance(p, float) else _speak(tmp_path, p, voice, rate) for p in parts
    ]
    return np.concatenate(pieces)


def _line(audio: npt.NDArray[np.float64], seed: int) -> npt.NDArray[np.int16]:
    """A quiet line's hiss (about -64 dBFS) under ``audio``, as int16."""
    noisy = audio + np.random.default_rng(seed).standard_normal(audio.size) * 20
    out: npt.NDArray[np.int16] = np.clip(noisy, -32768, 32767).astype(np.int16)
    return out


@pytest.fixture(scope="module")
def engine() -> PocketsphinxEngine:
    return PocketsphinxEngine()


def _live(
    engine: AsrEngine, question: npt.NDArray[np.float64], answer: npt.NDArray[np.float64]
) -> list[MediaEvent]:
    """The call: the question plays (its echo 20 dB down, 60 ms late), the callee answers 0.3 s after it."""
    start = question.size + int(0.3 * RATE)
    total = start + answer.size + 2 * RATE
    caller = np.zeros(total)
    caller[: question.size] += np.concatenate([np.zeros(480), question])[: question.size] * 0.1
    caller[start : start + answer.size] += answer
    bot = split_frames(np.concatenate([question, np.zeros(total - question.size)]).astype(np.int16))
    prompt_frames = question.size // 160
    pipeline = CallMediaPipeline(MediaSettings())
    feeder = AsrFeeder(engine.open_stream(WHEN))
    pipeline.start_listening(WHEN, 8.0, now=0.0)
    pipeline.prompt_started(barge_in_allowed=True, now=0.0)
    events: list[MediaEvent] = []
    for i, (sent, heard) in enumerate(zip(bot, split_frames(_line(caller, 1)), strict=True)):
        now = i * 0.02
        if i < prompt_frames:
            pipeline.prompt_frame(sent)
        elif i == prompt_frames:
            pipeline.prompt_finished(now)
        events += pipeline.push_caller_frame(heard, now)
        results = feeder.run(pipeline.take_asr_work())
        events += results
        if any(isinstance(r, AsrFinal) for r in results):
            pipeline.stop_listening()  # as the call does: the answer is taken
            feeder.run(pipeline.take_asr_work())
    return events


def _offline(engine: PocketsphinxEngine, answer: npt.NDArray[np.float64]) -> str:
    """The whole utterance at once, with the recording's silence around it."""
    stream = engine.open_stream(WHEN)
    audio = np.concatenate([np.zeros(int(0.3 * RATE)), answer, np.zeros(int(0.3 * RATE))])
    for frame in split_frames(_line(audio, 2)):
        stream.push_frame(frame)
    return stream.flush().text


@pytest.mark.parametrize(
    ("parts", "expected"),
    [(("tomorrow",), "tomorrow"), (("ten", 0.45, "in the morning"), "ten in the morning")],
    ids=["tomorrow", "ten-pause-in-the-morning"],
)
@pytest.mark.parametrize(
    "speaker",
    [("en-us", 160), ("en+f3", 190), ("en-gb", 140), ("en-us+m3", 175)],
    ids=lambda v: f"{v[0]}-{v[1]}",
)
def test_media_live_pipeline_hears_the_words_the_offline_decoder_hears(
    tmp_path: Path,
    engine: PocketsphinxEngine,
    parts: tuple[str | float, ...],
    expected: str,
    speaker: tuple[str, int],
) -> None:
    voice, rate = speaker
    (tmp_path / "q").mkdir()
    question = _speak(tmp_path / "q", QUESTION, "en+m3", 165)
    answer = _answer(tmp_path, parts, voice, rate)
    events = _live(engine, question, answer)
    finals = [e for e in events if isinstance(e, AsrFinal)]
    assert [f.result.text for f in finals] == [expected], [type(e).__name__ for e in events]
    assert _offline(engine, answer) == expected
    assert not any(isinstance(e, SpeechEnded) for e in events)  # decided at the 300 ms pause, not the hold
    # One turn, spanning the whole answer (pause included), ending within 150 ms of its last word.
    answer_start = (question.size + 0.3 * RATE) / RATE
    answer_end = answer_start + answer.size / RATE
    assert abs(finals[0].speech_started_at - answer_start) <= 0.08
    assert abs(finals[0].speech_ended_at - answer_end) <= 0.15


@pytest.fixture(scope="module")
def speech_service() -> Iterator[SpeechPool]:
    pool = SpeechPool(MediaSettings(), workers=1, log_level="warning")
    pool.start()
    yield pool
    pool.stop()


@pytest.mark.parametrize(
    ("parts", "expected"),
    [(("tomorrow",), "tomorrow"), (("ten", 0.5, "in the morning"), "ten in the morning")],
    ids=["tomorrow", "ten-pause-in-the-morning"],
)
def test_media_live_pipeline_over_the_speech_service_checks_pauses_in_the_worker(
    tmp_path: Path, speech_service: SpeechPool, parts: tuple[str | float, ...], expected: str
) -> None:
    """The production path: the recognizer (and the pause check) run in a speech worker."""
    (tmp_path / "q").mkdir()
    question = _speak(tmp_path / "q", QUESTION, "en+m3", 165)
    answer = _answer(tmp_path, parts, "en-us", 165)
    events = _live(speech_service.engine(), question, answer)
    finals = [e for e in events if isinstance(e, AsrFinal)]
    assert [f.result.text for f in finals] == [expected]
    # Not asserted: in_grammar. A single word such as "tomorrow" fits the model near the menu
    # fit floor, so the verdict may be a reprompt (docs/asr.md); the words and the moment of the
    # decision are what this test guards.
    assert not any(isinstance(e, SpeechEnded) for e in events)  # decided at the 300 ms pause, not the hold
