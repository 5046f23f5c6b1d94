"""Answering-machine detection: is the first audio after answer a person or a greeting?

The rules are Asterisk's ``AMD()`` (app_amd.c) over 20 ms frames, counted in audio time since
answer: a long initial silence is a machine; voice longer than ``greeting_ms`` in total, or
``max_words`` words (voiced runs of at least ``min_word_ms`` separated by at least
``between_words_ms`` of silence), or one word longer than ``max_word_ms`` is a machine; a
short greeting followed by ``after_greeting_silence_ms`` of silence is a person waiting for
us to speak. A steady tone (a voicemail beep) is a machine at once. If nothing decides by
``total_analysis_ms`` the verdict is NOTSURE (callers treat it as a person).

With ``wait_for_beep`` the detector keeps listening after a MACHINE verdict and emits one
:class:`MessageCue` when the message should start: when the beep ends, after
``message_silence_ms`` of silence once the greeting is over, or at ``max_message_wait_ms``.

Sans-I/O: ``push_frame(frame, now)`` and ``poll(now)`` take a monotonic time in seconds; a gap
in the audio (no RTP during silence suppression) counts as silence. Whether a frame is
voiced is decided by a scorer (webrtcvad gated by an adaptive noise floor by default), so
another VAD can be plugged in as ``scorer=vad.is_speech``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

import numpy as np
import webrtcvad

from config.errors import MediaError
from media.frames import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, SILENCE, Frame

FrameScorer = Callable[[Frame], bool]


class Verdict(StrEnum):
    HUMAN = "human"
    MACHINE = "machine"
    NOTSURE = "notsure"


class AmdReason(StrEnum):
    INITIAL_SILENCE = "initial_silence"
    HUMAN_GREETING = "human_greeting"
    """A short greeting, then silence: a person waiting for an answer."""
    MAX_WORDS = "max_words"
    LONG_GREETING = "long_greeting"
    MAX_WORD_LENGTH = "max_word_length"
    BEEP = "beep"
    TOO_LONG = "too_long"


class CueReason(StrEnum):
    BEEP = "beep"
    SILENCE = "silence"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class AmdVerdict:
    """The detector's decision, ``after_s`` seconds of audio after answer."""

    verdict: Verdict
    reason: AmdReason
    after_s: float
    words: int
    voice_s: float


@dataclass(frozen=True)
class MessageCue:
    """Start the voicemail message now (``wait_for_beep`` mode only)."""

    reason: CueReason
    after_s: float


AmdEvent = AmdVerdict | MessageCue


@dataclass(frozen=True)
class AmdConfig:
    """Timings in milliseconds; defaults are Asterisk's except the 2.5 s decision budget."""

    initial_silence_ms: int = 2500
    greeting_ms: int = 1500
    after_greeting_silence_ms: int = 800
    total_analysis_ms: int = 2500
    deadline_pause_ms: int = 300
    """At ``total_analysis_ms``, a pause this long after a short greeting means HUMAN."""
    deadline_voice_ms: int = 1000
    """At ``total_analysis_ms``, still talking with this much voice so far means MACHINE."""
    min_word_ms: int = 100
    between_words_ms: int = 60
    max_words: int = 3
    max_word_ms: int = 5000
    beep_min_ms: int = 100
    beep_low_hz: int = 300
    beep_high_hz: int = 2500
    wait_for_beep: bool = False
    message_silence_ms: int = 1500
    max_message_wait_ms: int = 30000
    vad_aggressiveness: int = 3

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "wait_for_beep":
                continue
            if item.name == "vad_aggressiveness":
                if value not in (0, 1, 2, 3):
                    raise MediaError(f"amd.vad_aggressiveness: {value!r} is not 0, 1, 2 or 3")
            elif value < 1:
                raise MediaError(f"amd.{item.name}: {value!r} must be at least 1")
        if not self.beep_low_hz < self.beep_high_hz < SAMPLE_RATE // 2:
            raise MediaError(f"amd.beep_low_hz..beep_high_hz {self.beep_low_hz}..{self.beep_high_hz} "
                              f"must be increasing and below {SAMPLE_RATE // 2} Hz")

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None, where: str = "amd") -> AmdConfig:
        """Build from data (a campaign's ``amd:`` settings); unknown keys and wrong types are
        reported with ``where`` and the key."""
        known = {item.name: item for item in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in dict(config or {}).items():
            if key not in known:
                raise MediaError(f"{where}.{key}: unknown AMD setting (expected one of {', '.join(known)})")
            if key == "wait_for_beep":
                if not isinstance(value, bool):
                    raise MediaError(f"{where}.{key}: expected true or false, got {value!r}")
            elif isinstance(value, bool) or not isinstance(value, int):
                raise MediaError(f"{where}.{key}: expected a whole number, got {value!r}")
            kwargs[key] = value
        try:
            return cls(**kwargs)
        except MediaError as exc:
            raise MediaError(f"{where}: {exc}") from None


class SpeechScorer:
    """webrtcvad, but only where the frame also stands out from the line's noise floor.

    On a noisy line webrtcvad calls much of the noise speech; requiring ``margin_db`` above a
    tracked floor (the quietest recent frames, rising slowly) keeps pauses visible.
    """

    def __init__(self, aggressiveness: int = 3, margin_db: float = 3.0, min_dbfs: float = -55.0) -> None:
        self._vad = webrtcvad.Vad(aggressiveness)
        self._margin = margin_db
        self._min_dbfs = min_dbfs
        self._floor: float | None = None

    def __call__(self, frame: Frame) -> bool:
        level = _dbfs(frame)
        # The floor follows quiet frames at once and louder ones by 0.1 dB per frame (5 dB/s).
        self._floor = level if self._floor is None else min(level, self._floor + 0.1)
        if level < self._min_dbfs or level < self._floor + self._margin:
            return False
        return bool(self._vad.is_speech(frame.tobytes(), SAMPLE_RATE))


class ToneTracker:
    """Finds a steady tone: one narrow spectral peak in a band, at a stable frequency."""

    _FFT = 512

    def __init__(self, low_hz: int, high_hz: int, purity: float = 0.8) -> None:
        self._window = np.hanning(FRAME_SAMPLES)
        freqs = np.fft.rfftfreq(self._FFT, 1.0 / SAMPLE_RATE)
        self._band = np.flatnonzero((freqs >= low_hz) & (freqs <= high_hz))
        self._bin_hz = SAMPLE_RATE / self._FFT
        self._purity = purity
        self._last_hz = 0.0
        self.run_ms = 0
        """How long the current tone has lasted (0 when none)."""

    def push(self, frame: Frame, loud: bool) -> int:
        """Feed one frame; returns the length in ms of the tone that just ended, else 0."""
        hz = self._tone_hz(frame) if loud else 0.0
        steady = hz > 0 and (self.run_ms == 0 or abs(hz - self._last_hz) <= 2 * self._bin_hz)
        ended = 0
        if steady:
            self.run_ms += FRAME_MS
        else:
            ended, self.run_ms = self.run_ms, (FRAME_MS if hz > 0 else 0)
        self._last_hz = hz
        return ended

    def _tone_hz(self, frame: Frame) -> float:
        spectrum = np.abs(np.fft.rfft(frame.astype(np.float64) * self._window, self._FFT)) ** 2
        total = float(spectrum.sum())
        if total <= 0.0:
            return 0.0
        peak = int(self._band[np.argmax(spectrum[self._band])])
        share = float(spectrum[max(peak - 3, 0) : peak + 4].sum()) / total
        return peak * self._bin_hz if share >= self._purity else 0.0


class AnsweringMachineDetector:
    """One per answered call; see the module docstring."""

    def __init__(self, config: AmdConfig | None = None, answered_at: float = 0.0,
                 scorer: FrameScorer | None = None) -> None:
        self.config = config or AmdConfig()
        self._answered_at = answered_at
        self._scorer = scorer or SpeechScorer(self.config.vad_aggressiveness)
        self._tones = ToneTracker(self.config.beep_low_hz, self.config.beep_high_hz)
        self._ms = 0
        self._silence_ms = 0
        self._word_ms = 0  # consecutive voice
        self._voice_ms = 0  # total voice
        self._words = 0
        self._in_word = False
        self._in_greeting = False
        self._heard_beep = False
        self._verdict: AmdVerdict | None = None
        self._cue: MessageCue | None = None

    @property
    def verdict(self) -> AmdVerdict | None:
        return self._verdict

    @property
    def cue(self) -> MessageCue | None:
        return self._cue

    @property
    def done(self) -> bool:
        """Nothing more will be emitted; stop feeding audio."""
        if self._verdict is None:
            return False
        waiting = self.config.wait_for_beep and self._verdict.verdict is Verdict.MACHINE
        return not waiting or self._cue is not None

    def push_frame(self, frame: Frame, now: float) -> list[AmdEvent]:
        """Analyse the next 20 ms, due at ``now``; audio missing before it counts as silence.

        Raises :class:`~config.errors.MediaError` for a frame that is not 160 int16 samples."""
        if frame.shape != (FRAME_SAMPLES,) or frame.dtype != np.int16:
            raise MediaError(f"AMD expects {FRAME_SAMPLES} int16 samples per frame, got "
                              f"{frame.dtype} {frame.shape}")
        events = self.poll(now - FRAME_MS / 1000)
        if not self.done:
            events.extend(self._step(frame))
        return events

    def poll(self, now: float) -> list[AmdEvent]:
        """Account for time without audio up to ``now`` (keep 60 ms for jitter)."""
        events: list[AmdEvent] = []
        behind_ms = (now - self._answered_at) * 1000 - self._ms - 3 * FRAME_MS
        while behind_ms >= FRAME_MS and not self.done:
            events.extend(self._step(SILENCE))
            behind_ms -= FRAME_MS
        return events

    def _step(self, frame: Frame) -> list[AmdEvent]:
        cfg = self.config
        self._ms += FRAME_MS
        voiced = self._scorer(frame)
        loud = voiced or _dbfs(frame) > -45.0
        tone_ended_ms = self._tones.push(frame, loud)
        if self._tones.run_ms >= cfg.beep_min_ms:
            voiced = False  # a beep is not a word
            self._heard_beep = True
        events: list[AmdEvent] = []
        if self._verdict is None:
            if self._heard_beep:
                events.append(self._decide(Verdict.MACHINE, AmdReason.BEEP))
            else:
                decision = self._analyse(voiced)
                if decision is not None:
                    events.append(self._decide(*decision))
        elif self._verdict.verdict is Verdict.MACHINE and cfg.wait_for_beep and self._cue is None:
            self._track_greeting(voiced)
        if self._verdict is not None and self._verdict.verdict is Verdict.MACHINE and cfg.wait_for_beep \
                and self._cue is None:
            cue = self._cue_reason(tone_ended_ms)
            if cue is not None:
                self._cue = MessageCue(cue, self._ms / 1000)
                events.append(self._cue)
        return events

    def _analyse(self, voiced: bool) -> tuple[Verdict, AmdReason] | None:
        cfg = self.config
        if not voiced:
            self._silence_ms += FRAME_MS
            if self._silence_ms >= cfg.between_words_ms:
                self._in_word = False
                self._word_ms = 0
            if not self._in_greeting and self._silence_ms >= cfg.initial_silence_ms:
                return Verdict.MACHINE, AmdReason.INITIAL_SILENCE
            if self._in_greeting and self._silence_ms >= cfg.after_greeting_silence_ms:
                return Verdict.HUMAN, AmdReason.HUMAN_GREETING
        else:
            self._word_ms += FRAME_MS
            self._voice_ms += FRAME_MS
            if self._word_ms >= cfg.min_word_ms:
                self._silence_ms = 0
                self._in_greeting = True
                if not self._in_word:
                    self._in_word = True
                    self._words += 1
            if self._words >= cfg.max_words:
                return Verdict.MACHINE, AmdReason.MAX_WORDS
            if self._in_greeting and self._voice_ms >= cfg.greeting_ms:
                return Verdict.MACHINE, AmdReason.LONG_GREETING
            if self._word_ms >= cfg.max_word_ms:
                return Verdict.MACHINE, AmdReason.MAX_WORD_LENGTH
        if self._ms >= cfg.total_analysis_ms:
            # Out of time: a short greeting already followed by a pause is most likely a person
            # waiting (Asterisk would wait for the full after-greeting silence, up to 5 s).
            if self._in_greeting and self._silence_ms >= cfg.deadline_pause_ms:
                return Verdict.HUMAN, AmdReason.HUMAN_GREETING
            # Still talking after this much voice: a recorded greeting, not a "hello".
            if self._voice_ms >= cfg.deadline_voice_ms:
                return Verdict.MACHINE, AmdReason.LONG_GREETING
            return Verdict.NOTSURE, AmdReason.TOO_LONG
        return None

    def _track_greeting(self, voiced: bool) -> None:
        if voiced:
            self._word_ms += FRAME_MS
            if self._word_ms >= self.config.min_word_ms:
                self._silence_ms = 0
        else:
            self._word_ms = 0
            self._silence_ms += FRAME_MS

    def _cue_reason(self, tone_ended_ms: int) -> CueReason | None:
        cfg = self.config
        if tone_ended_ms >= cfg.beep_min_ms:
            return CueReason.BEEP
        if self._silence_ms >= cfg.message_silence_ms and self._tones.run_ms == 0:
            return CueReason.SILENCE
        if self._ms >= cfg.max_message_wait_ms:
            return CueReason.TIMEOUT
        return None

    def _decide(self, verdict: Verdict, reason: AmdReason) -> AmdVerdict:
        self._verdict = AmdVerdict(verdict, reason, self._ms / 1000, self._words, self._voice_ms / 1000)
        return self._verdict


def _dbfs(frame: Frame) -> float:
    rms = float(np.sqrt(np.mean(np.square(frame, dtype=np.float64))))
    return 20.0 * float(np.log10(max(rms, 1e-3) / 32768.0))
