"""Should the caller's voice stop the prompt that is playing?

Barge-in must be fast (the prompt stops within 100 ms of the caller starting to talk) and
must not fire on the bot's own prompt leaking back on the caller track (line echo, a
speakerphone). The VAD cannot tell the two apart: echoed speech is speech. So a caller
frame only counts as the caller talking when its power is above what the echo of the
prompt could explain:

    echo estimate = echo gain x (loudest prompt frame sent within ``max_echo_delay_ms``)

The max over the delay window makes the estimate an upper bound whatever the actual echo
delay. The echo gain starts at ``assumed_echo_gain_db`` (echo 12 dB down, what a line with
a working hybrid or echo canceller leaves) and rises when the line measures worse: it is
the 90th percentile of caller power over that reference across the last ``adapt_window_s``
of prompt playback, learned only from frames not judged to be the caller (so the caller
talking over a prompt does not teach the detector to ignore them) and capped at
``max_echo_gain_db``. The caller must beat the estimate by ``echo_margin_db`` for
``min_speech_ms`` of consecutive frames.

Limits: the estimate never goes below the assumption (weak echo does not make barge-in
more sensitive), and on a line whose echo is louder than ``assumed_echo_gain_db +
echo_margin_db`` (-6 dB by default) the very first prompt may be barged in by its own
echo before the estimate has learned the line (about 10 frames).

:meth:`BargeInDetector.update` also returns that echo-guarded "caller is speaking" flag, so
the endpointer does not mistake the prompt's echo for an utterance.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from config.errors import MediaError
from media.frames import FRAME_MS, FRAME_SAMPLES, Frame

_FULL_SCALE = 32767.0**2


@dataclass(frozen=True)
class BargeIn:
    """Stop the prompt: the caller started talking at ``onset``; decided at ``at``."""

    at: float
    onset: float


@dataclass(frozen=True)
class BargeInConfig:
    min_speech_ms: int = 60
    echo_margin_db: float = 6.0
    assumed_echo_gain_db: float = -12.0
    max_echo_delay_ms: int = 240
    min_level_dbfs: float = -50.0
    adapt_window_s: float = 2.0
    max_echo_gain_db: float = -3.0

    def __post_init__(self) -> None:
        if self.min_speech_ms < FRAME_MS:
            raise MediaError(f"barge-in min_speech_ms must be at least one frame ({FRAME_MS} ms)")
        if self.max_echo_delay_ms < 0:
            raise MediaError("barge-in max_echo_delay_ms must not be negative")
        if self.adapt_window_s <= 0:
            raise MediaError("barge-in adapt_window_s must be positive")


def frame_power(frame: Frame) -> float:
    """Mean square of the samples (int16 units squared)."""
    return float(np.dot(frame.astype(np.float64), frame.astype(np.float64))) / max(frame.size, 1)


class BargeInDetector:
    """One per call. Feed the bot's outgoing frames and the caller's incoming frames."""

    def __init__(self, config: BargeInConfig | None = None) -> None:
        self.config = config or BargeInConfig()
        cfg = self.config
        self._min_frames = -(-cfg.min_speech_ms // FRAME_MS)
        self._assumed_gain = 10 ** (cfg.assumed_echo_gain_db / 10)
        self._margin = 10 ** (cfg.echo_margin_db / 10)
        self._max_gain = 10 ** (cfg.max_echo_gain_db / 10)
        self._min_power = _FULL_SCALE * 10 ** (cfg.min_level_dbfs / 10)
        self._prompt_powers: deque[float] = deque([0.0] * (cfg.max_echo_delay_ms // FRAME_MS + 1))
        self._ratios: deque[float] = deque(maxlen=max(1, round(cfg.adapt_window_s * 1000 / FRAME_MS)))
        self._gain = self._assumed_gain
        self._since_estimate = 0
        self._pending: float | None = None
        self._playing = False
        self._allowed = False
        self._fired = False
        self._run = 0
        self._onset = 0.0

    @property
    def prompt_playing(self) -> bool:
        return self._playing

    @property
    def must_be_heard(self) -> bool:
        """A prompt that may not be interrupted (a disclosure) is playing now."""
        return self._playing and not self._allowed

    @property
    def echo_gain_db(self) -> float:
        """Current echo path gain estimate (power ratio, dB)."""
        return 10 * float(np.log10(self._gain))

    def prompt_started(self, barge_in_allowed: bool, now: float) -> None:
        """A prompt begins; ``barge_in_allowed`` False for steps that must be heard in full."""
        self._playing = True
        self._allowed = barge_in_allowed
        self._fired = False
        self._run = 0

    def prompt_finished(self, now: float) -> None:
        """The prompt ended or was stopped; its echo tail is still guarded against."""
        self._playing = False
        self._run = 0

    def prompt_frame(self, frame: Frame) -> None:
        """The bot is sending ``frame`` now (called at the send pace, any jitter is fine)."""
        if frame.shape != (FRAME_SAMPLES,):
            raise MediaError(f"prompt frame must be {FRAME_SAMPLES} samples, got {frame.shape}")
        self.prompt_power(frame_power(frame))

    def prompt_power(self, power: float) -> None:
        """:meth:`prompt_frame` given the frame's power (computed for a whole batch at once)."""
        self._pending = power if self._pending is None else max(self._pending, power)

    def update(self, frame: Frame, voiced: bool, now: float) -> tuple[bool, BargeIn | None]:
        """Judge one caller frame starting at ``now``.

        Returns whether the caller (not the echo) is speaking in this frame, and a
        :class:`BargeIn` the first time that has lasted ``min_speech_ms`` during a prompt
        that allows barge-in.
        """
        return self.judge(frame_power(frame), voiced, now)

    def judge(self, power: float, voiced: bool, now: float) -> tuple[bool, BargeIn | None]:
        """:meth:`update` given the caller frame's power (computed for a whole batch at once)."""
        self._prompt_powers.append(self._pending or 0.0)
        self._prompt_powers.popleft()
        self._pending = None
        reference = max(self._prompt_powers)
        threshold = max(self._min_power, self._gain * reference * self._margin)
        speaking = voiced and power > threshold
        if self._playing and reference > self._min_power and power <= threshold:
            self._ratios.append(power / reference)
            self._since_estimate += 1
            if self._since_estimate >= 5:  # re-estimate every 100 ms of prompt: percentiles cost
                self._since_estimate = 0
                self._gain = self._estimate_gain()
        if not speaking:
            self._run = 0
            return False, None
        if self._run == 0:
            self._onset = now
        self._run += 1
        if self._playing and self._allowed and not self._fired and self._run >= self._min_frames:
            self._fired = True
            return True, BargeIn(at=now + FRAME_MS / 1000, onset=self._onset)
        return True, None

    def _estimate_gain(self) -> float:
        if len(self._ratios) < 10:
            return self._assumed_gain
        ratios = np.fromiter(self._ratios, dtype=np.float64)
        return min(self._max_gain, max(self._assumed_gain, float(np.percentile(ratios, 90))))
