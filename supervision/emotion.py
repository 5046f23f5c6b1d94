"""The caller's arousal, from the caller's own track, against the caller's own baseline.

Per 20 ms frame (160 samples at 8 kHz) of an utterance: the level (RMS, dBFS) and, on voiced
frames, the pitch (F0 by normalized autocorrelation, 70-400 Hz). Per utterance: the median level
of voiced frames, the median pitch, and the speaking rate (energy peaks, a proxy for syllable
nuclei, per second of speech). The first ``baseline_utterances`` utterances of the call set the
caller's baseline; each later utterance is scored by how far it rises above it (level in dB,
pitch in semitones, rate as a ratio), plus a bump per negative word of a lexicon in its final
transcript. The result is an arousal score from 0 (calm) to 1 (agitated).

Pure numpy, no state outside the tracker, cheap enough for the call loop: a frame costs a few
tens of microseconds (``bench/bench_emotion.py``) and the utterance's score is a handful of
medians over at most a few hundred numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 8000
F0_MIN_HZ, F0_MAX_HZ = 70.0, 400.0
_LAG_MIN = int(SAMPLE_RATE / F0_MAX_HZ)  # 20 samples
_LAG_MAX = int(SAMPLE_RATE / F0_MIN_HZ)  # 114 samples
VOICED_MIN_DB = -45.0
"""Frames quieter than this (dBFS) are pauses, not speech."""
VOICING_MIN = 0.45
"""Normalized autocorrelation peak above which a frame counts as voiced."""
MIN_UTTERANCE_FRAMES = 15
"""Utterances shorter than 300 ms say too little about the voice: no reading."""

# How much of a rise counts as fully agitated on each scale (the score saturates there).
LEVEL_SPAN_DB = 8.0
PITCH_SPAN_ST = 4.0
RATE_SPAN = 0.45
WORD_BUMP = 0.25
WEIGHTS = (0.4, 0.4, 0.2)  # level, pitch, rate


@dataclass(frozen=True)
class UtteranceVoice:
    """One utterance's voice: median level of voiced frames, median F0, energy peaks per second."""

    level_db: float
    pitch_hz: float
    rate_per_s: float
    frames: int


@dataclass(frozen=True)
class EmotionReading:
    """An utterance scored against the baseline; ``parts`` are each scale's 0..1 contribution."""

    arousal: float
    voice: UtteranceVoice
    parts: dict[str, float] = field(default_factory=dict)

    def evidence(self) -> str:
        shown = ", ".join(f"{name} {value:.2f}" for name, value in self.parts.items())
        return shown or "no baseline"


def frame_features(
    frame: npt.NDArray[np.int16], previous: npt.NDArray[np.int16] | None = None
) -> tuple[float, float]:
    """(level dBFS, F0 Hz or 0.0 when unvoiced) of one 20 ms ``frame``; the pitch is found over
    ``previous`` + ``frame`` (40 ms: two periods of a 70 Hz voice). About ten numpy calls, so
    the per-call overhead, not the arithmetic, is most of its cost."""
    n = len(frame)
    x = np.empty(2 * n, dtype=np.float32)
    x[:n] = frame if previous is None else previous
    x[n:] = frame
    tail = x[n:]
    level = 10.0 * math.log10(float(np.dot(tail, tail)) / (n * 32768.0**2) + 1e-12)
    if level < VOICED_MIN_DB or previous is None:
        return level, 0.0
    # No DC removal: telephone audio is band-limited above ~300 Hz, so it carries none (and a
    # mean costs as much as the correlation itself at this size).
    # Autocorrelation of the window's head with the signal ``lag`` samples later, over the
    # lags of 70-400 Hz, normalized by the head's energy.
    ac = np.correlate(x, x[: 2 * n - _LAG_MAX], mode="valid")
    window = ac[_LAG_MIN:]
    peak = float(window.max())
    if peak < VOICING_MIN * float(ac[0]):
        return level, 0.0
    # The first lag close to the best: a period's multiples correlate almost as well (octave errors).
    lag = int(np.argmax(window >= 0.9 * peak))
    while lag + 1 < len(window) and window[lag + 1] > window[lag]:
        lag += 1
    return level, SAMPLE_RATE / (lag + _LAG_MIN)


def utterance_voice(levels: list[float], pitches: list[float]) -> UtteranceVoice | None:
    """Summarize an utterance's frames; None when it is too short or has no voiced frame."""
    if len(levels) < MIN_UTTERANCE_FRAMES:
        return None
    voiced = [p for p in pitches if p > 0]
    if len(voiced) < 3:
        return None
    loud = [lv for lv in levels if lv >= VOICED_MIN_DB]
    return UtteranceVoice(
        level_db=float(np.median(loud)),
        pitch_hz=float(np.median(voiced)),
        rate_per_s=_peak_rate(levels),
        frames=len(levels),
    )


def _peak_rate(levels: list[float]) -> float:
    """Energy peaks per second of speech: local maxima of the smoothed envelope that stand
    3 dB above the dip since the previous peak (syllable nuclei, roughly)."""
    env = np.convolve(np.asarray(levels), np.ones(3) / 3, mode="same")
    peaks, last_peak, dip = 0, -math.inf, math.inf
    for i in range(1, len(env) - 1):
        value = float(env[i])
        dip = min(dip, value)
        if value <= VOICED_MIN_DB or value < env[i - 1] or value <= env[i + 1]:
            continue
        if last_peak == -math.inf or (last_peak - dip >= 3.0 and value - dip >= 3.0):
            peaks += 1
            last_peak, dip = value, value
        elif value > last_peak:
            last_peak, dip = value, value  # the same syllable, louder
    speech_s = sum(1 for lv in levels if lv >= VOICED_MIN_DB) * 0.02
    return peaks / speech_s if speech_s > 0 else 0.0


class EmotionTracker:
    """One caller's utterances: :meth:`push` frames of an utterance, :meth:`end_utterance`."""

    def __init__(self, baseline_utterances: int = 1) -> None:
        self.baseline_utterances = baseline_utterances
        self._levels: list[float] = []
        self._pitches: list[float] = []
        self._baseline: list[UtteranceVoice] = []
        self._previous: npt.NDArray[np.int16] | None = None

    @property
    def in_utterance(self) -> bool:
        return bool(self._levels)

    def push(self, frame: npt.NDArray[np.int16]) -> None:
        level, pitch = frame_features(frame, self._previous)
        self._previous = frame
        self._levels.append(level)
        self._pitches.append(pitch)

    def end_utterance(self) -> EmotionReading | None:
        """Score the utterance (None while the baseline is being learned or it was too short)."""
        voice = utterance_voice(self._levels, self._pitches)
        self._levels, self._pitches, self._previous = [], [], None
        if voice is None:
            return None
        if len(self._baseline) < self.baseline_utterances:
            self._baseline.append(voice)
            return None
        return score(voice, self._baseline)


def score(voice: UtteranceVoice, baseline: list[UtteranceVoice], negative_words: int = 0) -> EmotionReading:
    """Arousal of ``voice`` against the mean of ``baseline`` (0..1); see the module docstring."""
    level = float(np.mean([b.level_db for b in baseline]))
    pitch = float(np.mean([b.pitch_hz for b in baseline]))
    rate = float(np.mean([b.rate_per_s for b in baseline]))
    parts = {
        "level": _clip((voice.level_db - level) / LEVEL_SPAN_DB),
        "pitch": _clip(12.0 * math.log2(voice.pitch_hz / pitch) / PITCH_SPAN_ST) if pitch > 0 else 0.0,
        "rate": _clip((voice.rate_per_s / rate - 1.0) / RATE_SPAN) if rate > 0 else 0.0,
    }
    acoustic = sum(w * v for w, v in zip(WEIGHTS, parts.values(), strict=True))
    return with_words(EmotionReading(acoustic, voice, parts), negative_words)


def with_words(reading: EmotionReading, negative_words: int) -> EmotionReading:
    """The reading with ``negative_words`` words of the lexicon heard in the utterance's final."""
    if negative_words <= 0:
        return reading
    bump = min(1.0, WORD_BUMP * negative_words)
    parts = {**reading.parts, "words": bump}
    return EmotionReading(min(1.0, reading.arousal + bump), reading.voice, parts)


def _clip(value: float) -> float:
    return min(1.0, max(0.0, value))
