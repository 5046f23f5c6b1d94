"""The emotion signal on synthetic voices: pitch, level and rate are measured, and scored
against the caller's own baseline (a naturally loud or high voice is not agitation)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from supervision.emotion import EmotionTracker, frame_features, score, utterance_voice

RATE = 8000


def voice(f0: float, syllables_per_s: float, amplitude: float, seconds: float = 2.0) -> npt.NDArray[np.int16]:
    """A glottal-pulse-like harmonic tone at ``f0``, its loudness pulsing once per syllable."""
    t = np.arange(int(seconds * RATE)) / RATE
    tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 8))
    envelope = 0.15 + 0.85 * np.abs(np.sin(np.pi * syllables_per_s * t)) ** 2
    signal = amplitude * tone * envelope / 2.0
    return np.clip(signal, -32767, 32767).astype(np.int16)


def frames(samples: npt.NDArray[np.int16]) -> list[npt.NDArray[np.int16]]:
    return [samples[i : i + 160] for i in range(0, len(samples) - 159, 160)]


def features(samples: npt.NDArray[np.int16]) -> list[tuple[float, float]]:
    chunks = frames(samples)
    return [frame_features(f, chunks[i - 1] if i else None) for i, f in enumerate(chunks)]


@pytest.mark.parametrize("f0", [90.0, 140.0, 220.0, 330.0])
def test_pitch_is_found_on_voiced_frames(f0: float) -> None:
    pitches = [p for _, p in features(voice(f0, 0.0001, 8000, 0.5))[1:]]
    assert np.median(pitches) == pytest.approx(f0, rel=0.05)


def test_silence_is_quiet_and_unvoiced_and_noise_is_unvoiced() -> None:
    level, pitch = frame_features(np.zeros(160, dtype=np.int16))
    assert level < -100 and pitch == 0.0
    noise = np.random.default_rng(1).normal(0, 3000, 320).astype(np.int16)
    assert frame_features(noise[160:], noise[:160])[1] == 0.0


def test_level_and_speaking_rate_are_measured() -> None:
    def summary(samples: npt.NDArray[np.int16]):  # type: ignore[no-untyped-def]
        found = features(samples)
        result = utterance_voice([lv for lv, _ in found], [p for _, p in found])
        assert result is not None
        return result

    slow, fast = summary(voice(150, 3.0, 6000)), summary(voice(150, 6.0, 6000))
    loud = summary(voice(150, 3.0, 12000))
    assert loud.level_db - slow.level_db == pytest.approx(6.0, abs=0.5)
    assert fast.rate_per_s > 1.5 * slow.rate_per_s


def test_the_first_utterance_is_the_baseline_and_a_raised_voice_scores_high() -> None:
    tracker = EmotionTracker(baseline_utterances=1)
    for frame in frames(voice(130, 3.5, 5000)):
        tracker.push(frame)
    assert tracker.end_utterance() is None, "the baseline"
    for frame in frames(voice(131, 3.5, 5100)):
        tracker.push(frame)
    calm = tracker.end_utterance()
    for frame in frames(voice(180, 5.0, 12000)):
        tracker.push(frame)
    agitated = tracker.end_utterance()
    assert calm is not None and agitated is not None
    assert calm.arousal < 0.15
    assert agitated.arousal > 0.7
    assert set(agitated.parts) == {"level", "pitch", "rate"}


def test_a_naturally_loud_high_voice_is_its_own_baseline() -> None:
    tracker = EmotionTracker()
    for samples in (voice(260, 4.5, 14000), voice(262, 4.5, 14000)):
        for frame in frames(samples):
            tracker.push(frame)
        reading = tracker.end_utterance()
    assert reading is not None and reading.arousal < 0.2


def test_negative_words_raise_the_score_and_short_utterances_give_no_reading() -> None:
    tracker = EmotionTracker()
    baseline = utterance_voice([-20.0] * 20, [150.0] * 20)
    assert baseline is not None
    reading = score(baseline, [baseline], negative_words=2)
    assert reading.arousal == pytest.approx(0.5) and reading.parts["words"] == pytest.approx(0.5)
    for frame in frames(voice(150, 3.0, 6000, 0.2)):
        tracker.push(frame)
    assert tracker.end_utterance() is None
