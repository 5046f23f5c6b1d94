"""Tones are not speech: the guard flags steady tones and leaves voices alone."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from config.settings import MediaSettings
from media.asr.base import Expectation
from media.endpointer import FRAME_S
from media.frames import split_frames
from media.pipeline import AsrCancel, AsrFinish, CallMediaPipeline, NonSpeech
from media.tone_guard import ToneGuard
from media.vad import VadBackend

T = np.arange(16000) / 8000.0  # 2 s


def sine(*hz: float, amplitude: float = 8000.0) -> npt.NDArray[np.float64]:
    return sum((amplitude / len(hz)) * np.sin(2 * np.pi * f * T) for f in hz)  # type: ignore[return-value]


def voice_like() -> npt.NDArray[np.float64]:
    """A glottal-pulse-like harmonic series whose pitch and vowel move, as a voice's do."""
    f0 = 110 + 40 * np.sin(2 * np.pi * 1.5 * T)
    phase = 2 * np.pi * np.cumsum(f0) / 8000.0
    formant = 1 + 0.8 * np.sin(2 * np.pi * 3.0 * T)
    return sum((3000 / k) * formant**k * np.sin(k * phase) for k in range(1, 15))  # type: ignore[return-value]


def judged(signal: npt.NDArray[np.float64]) -> bool:
    guard = ToneGuard()
    for frame in split_frames(np.clip(signal, -32768, 32767).astype(np.int16)):
        guard.push(frame)
    return guard.is_tone()


@pytest.mark.parametrize(
    ("name", "signal"),
    [
        ("test tone 440 Hz", sine(440)),
        ("North American dial tone 350+440 Hz", sine(350, 440)),
        ("busy tone 480+620 Hz", sine(480, 620)),
        ("fax answer tone 2100 Hz", sine(2100)),
        ("fax calling tone, 1100 Hz beeps", np.where((T % 1.0) < 0.5, sine(1100), 0.0)),
    ],
)
def test_steady_tones_are_flagged(name: str, signal: npt.NDArray[np.float64]) -> None:
    assert judged(signal), name


def test_voices_noise_and_short_sounds_are_not() -> None:
    assert not judged(voice_like())
    assert not judged(np.random.default_rng(3).normal(0, 3000, T.size))
    assert not judged(sine(440)[:1200])  # 150 ms: too short to judge, left to the recognizer
    assert not judged(sine(440, amplitude=100))  # too quiet to judge


class LoudnessVad(VadBackend):
    def score(self, frame: npt.NDArray[np.int16]) -> float:
        return 1.0 if float(np.sqrt(np.mean(frame.astype(np.float64) ** 2))) > 1000 else 0.0


def test_the_pipeline_never_hands_a_tone_to_the_recognizer() -> None:
    pipeline = CallMediaPipeline(MediaSettings(), vad=LoudnessVad(), in_band_dtmf=False)
    pipeline.start_listening(Expectation(("yes", "no", "bye")), 5.0, 0.0)
    audio = np.concatenate([sine(440), np.zeros(8000)]).astype(np.int16)
    events = []
    for n, frame in enumerate(split_frames(audio)):
        events += pipeline.push_caller_frame(frame, n * FRAME_S)
    work = pipeline.take_asr_work()
    assert [e for e in events if isinstance(e, NonSpeech)], events
    assert any(isinstance(w, AsrCancel) for w in work) and not any(isinstance(w, AsrFinish) for w in work)
