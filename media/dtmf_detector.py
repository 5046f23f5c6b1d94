"""In-band DTMF: keypad tones heard in the audio, for gateways that do not send RFC 4733.

The detector measures the eight DTMF frequencies with single-bin DFTs: exactly the value
the Goertzel recursion computes, evaluated as one matrix product because a per-sample
recursion in Python costs a hundred times more. Windows are 20 ms (Hann) every 10 ms.

A window holds a digit when all of these hold (tolerances after ITU-T Q.24 / Bellcore):

* the strongest row and column tone are each above ``min_level_dbfs``;
* twist: the column (high) tone is at most ``normal_twist_db`` above the row tone, the row
  (low) tone at most ``reverse_twist_db`` above the column tone;
* the two tones hold at least ``min_purity`` of the window's power (speech and noise
  spread their power over many frequencies);
* each tone's measured frequency (from the phase advance between windows 5 ms apart) is
  within ``max_freq_deviation`` of nominal: 1.5 % off is accepted, 3.5 % rejected;
* the window is steady: its two halves differ by at most ``max_step_db`` (a window that
  only partly overlaps a tone does not count, which makes the duration checks honest).

A digit is reported after ``min_on_windows`` consecutive windows agree (3 = tones of
40 ms are always accepted, tones under about 25 ms never) and the next digit needs
``min_off_windows`` windows without it first (the pause between two presses).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from config.errors import MediaError
from media.frames import FRAME_SAMPLES, SAMPLE_RATE, Frame

ROW_HZ = (697.0, 770.0, 852.0, 941.0)
COL_HZ = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = ("123A", "456B", "789C", "*0#D")

_WIN = FRAME_SAMPLES  # 160 samples = 20 ms per analysis window
_HOP = FRAME_SAMPLES // 2  # a decision every 10 ms
_PHASE_LAG = 40  # samples between the two windows whose phase gives the frequency
_HISTORY = _HOP + _PHASE_LAG  # samples kept from the previous frame
_FREQS = np.array(ROW_HZ + COL_HZ)
_WINDOW = np.hanning(_WIN)
_BASIS: npt.NDArray[np.complex128] = (
    _WINDOW[:, None] * np.exp(-2j * np.pi * np.outer(np.arange(_WIN), _FREQS) / SAMPLE_RATE)
).astype(np.complex128)  # already complex128: the cast only tells the type checker
_TONE_SCALE = 2.0 / float(np.sum(_WINDOW)) ** 2  # |X|^2 -> tone power A^2/2
_WINDOW_POWER = float(np.sum(_WINDOW**2))
_FULL_SCALE = 32767.0**2
_EXPECTED_ADVANCE = 2 * np.pi * _FREQS * _PHASE_LAG / SAMPLE_RATE
# Sample indices of the four windows (offsets 0, 40, 80, 120) within history + frame.
_WINDOW_INDEX = np.arange(0, _HISTORY + 1, _PHASE_LAG)[:, None] + np.arange(_WIN)[None, :]
_INDEX_CACHE: dict[int, npt.NDArray[np.intp]] = {}


def _window_index(frames: int) -> npt.NDArray[np.intp]:
    """Indices of every frame's four windows within history + ``frames`` frames (n x 4 x 160)."""
    index = _INDEX_CACHE.get(frames)
    if index is None:
        index = _WINDOW_INDEX[None, :, :] + (np.arange(frames) * _WIN)[:, None, None]
        if frames <= 64:  # drains are short; a rare long one is not worth keeping
            _INDEX_CACHE[frames] = index
    return index


@dataclass(frozen=True)
class DtmfDigit:
    """A key press heard in-band; ``at`` is when its tone started."""

    digit: str
    at: float


@dataclass(frozen=True)
class DtmfConfig:
    min_level_dbfs: float = -36.0
    normal_twist_db: float = 8.0
    reverse_twist_db: float = 4.0
    min_purity: float = 0.8
    max_freq_deviation: float = 0.025
    max_step_db: float = 6.0
    min_on_windows: int = 3
    min_off_windows: int = 2

    def __post_init__(self) -> None:
        if self.min_on_windows < 1 or self.min_off_windows < 1:
            raise MediaError("DTMF min_on_windows and min_off_windows must be at least 1")
        if not 0.0 < self.min_purity <= 1.0:
            raise MediaError(f"DTMF min_purity must be in (0, 1], got {self.min_purity}")
        if not 0.0 < self.max_freq_deviation < 0.05:
            raise MediaError("DTMF max_freq_deviation must be in (0, 0.05): rows are 9 % apart")


class DtmfDetector:
    """Feed every caller frame with its start time; returns the digits that completed."""

    def __init__(self, config: DtmfConfig | None = None) -> None:
        self.config = config or DtmfConfig()
        cfg = self.config
        self._min_power = _FULL_SCALE * 10 ** (cfg.min_level_dbfs / 10)
        self._normal_twist = 10 ** (cfg.normal_twist_db / 10)
        self._reverse_twist = 10 ** (cfg.reverse_twist_db / 10)
        self._max_step = 10 ** (cfg.max_step_db / 10)
        self.reset()

    def reset(self) -> None:
        self._history = np.zeros(_HISTORY, dtype=np.float64)
        self._candidate: str | None = None
        self._candidate_count = 0
        self._candidate_at = 0.0
        self._active: str | None = None
        self._off_count = 0

    @property
    def tone_present(self) -> bool:
        """A DTMF tone is sounding (a digit is held, or one is being confirmed)."""
        return self._active is not None or self._candidate is not None

    def push_frame(self, frame: Frame, now: float) -> list[DtmfDigit]:
        """Analyse one 20 ms frame starting at ``now``."""
        if frame.shape != (FRAME_SAMPLES,):
            raise MediaError(f"DTMF detector expects frames of {FRAME_SAMPLES} samples, got {frame.shape}")
        return self.decide(self.analyse(frame[None, :])[0], now)

    def analyse(
        self, frames: npt.NDArray[np.int16] | npt.NDArray[np.float64]
    ) -> list[tuple[str | None, str | None]]:
        """The keys heard in the two decision windows of each row of ``frames`` (n x 160 samples,
        int16 or their float64 copy), in order.

        The numeric half of :meth:`push_frame` for a whole batch at once (one stacked matrix
        product instead of one per frame); it advances the sample history, so every frame must
        pass through here exactly once, followed by :meth:`decide` for each frame in order. The
        product is stacked per frame (n x 4 x 160), never flattened: BLAS rounds a 4-row product
        differently from a 200-row one, and a batch must decide exactly as frame by frame does.
        """
        if frames.ndim != 2 or frames.shape[1] != FRAME_SAMPLES:
            raise MediaError(f"DTMF detector expects n x {FRAME_SAMPLES} samples, got {frames.shape}")
        n = frames.shape[0]
        buf: npt.NDArray[np.float64] = np.concatenate((self._history, frames.reshape(-1)), dtype=np.float64)
        self._history = buf[-_HISTORY:]
        # Per frame, windows start at offsets 0, 40, 80, 120 of its history + frame; 40 and 120 are
        # the decision windows (10 ms before the frame and with the frame), 0 and 80 give their phase.
        windows = buf[_window_index(n)]  # (n, 4, 160), contiguous: the same BLAS call per frame
        spectra: npt.NDArray[np.complex128] = windows @ _BASIS  # (n, 4, 8)
        powers = (np.abs(spectra) ** 2 * _TONE_SCALE)[:, 1::2].reshape(-1, 8)  # the decision windows
        if n == 0 or powers.max() < self._min_power:  # silence and quiet speech stop here
            return [(None, None)] * n
        keys: list[str | None] = [None] * (2 * n)
        loud = np.flatnonzero(powers.max(axis=1) >= self._min_power)
        frame, index = loud // 2, 1 + 2 * (loud % 2)
        found = self._classify(
            windows[frame, index], powers[loud], spectra[frame, index], spectra[frame, index - 1]
        )
        for at, key in zip(loud.tolist(), found, strict=True):
            keys[at] = key
        return list(zip(keys[0::2], keys[1::2], strict=True))

    def decide(self, keys: tuple[str | None, str | None], now: float) -> list[DtmfDigit]:
        """Debounce one frame's two decisions (from :meth:`analyse`); ``now`` = the frame's start."""
        events: list[DtmfDigit] = []
        for key, start in ((keys[0], now - _HOP / SAMPLE_RATE), (keys[1], now)):
            digit = self._debounce(key, start)
            if digit is not None:
                events.append(digit)
        return events

    def _classify(
        self,
        window: npt.NDArray[np.float64],
        powers: npt.NDArray[np.float64],
        spectrum: npt.NDArray[np.complex128],
        earlier: npt.NDArray[np.complex128],
    ) -> list[str | None]:
        """The key each loud decision window holds (rows of ``window``), or None; see the module
        doc. Each check only looks at the windows that passed the ones before."""
        cfg = self.config
        none: list[str | None] = [None] * window.shape[0]
        rows = np.arange(window.shape[0])
        row = np.argmax(powers[:, :4], axis=1)
        col = 4 + np.argmax(powers[:, 4:], axis=1)
        p_row, p_col = powers[rows, row], powers[rows, col]
        ok = (p_row >= self._min_power) & (p_col >= self._min_power)
        ok &= ~((p_col > p_row * self._normal_twist) | (p_row > p_col * self._reverse_twist))
        if not ok.any():
            return none
        total = np.sum((window * _WINDOW) ** 2, axis=1) / _WINDOW_POWER
        ok &= ~(p_row + p_col < cfg.min_purity * total)
        if not ok.any():
            return none
        first = np.mean(window[:, : _WIN // 2] ** 2, axis=1)
        second = np.mean(window[:, _WIN // 2 :] ** 2, axis=1)
        ok &= ~(np.maximum(first, second) > self._max_step * np.maximum(np.minimum(first, second), 1e-9))
        for tone in (row, col):
            advance = np.angle(spectrum[rows, tone] * np.conj(earlier[rows, tone]))
            error = (advance - _EXPECTED_ADVANCE[tone] + np.pi) % (2 * np.pi) - np.pi
            offset_hz = error * SAMPLE_RATE / (2 * np.pi * _PHASE_LAG)
            ok &= ~(np.abs(offset_hz) > cfg.max_freq_deviation * _FREQS[tone])
        picks = zip(row.tolist(), col.tolist(), ok.tolist(), strict=True)
        return [KEYS[r][c - 4] if good else None for r, c, good in picks]

    def _debounce(self, key: str | None, start: float) -> DtmfDigit | None:
        cfg = self.config
        if self._active is not None:
            if key == self._active:
                self._off_count = 0
                return None
            self._off_count += 1
            if self._off_count < cfg.min_off_windows:
                return None
            self._active = None
            self._candidate = None
        if key is None or key != self._candidate:
            self._candidate = key
            self._candidate_count = 1 if key is not None else 0
            self._candidate_at = start
        else:
            self._candidate_count += 1
        if self._candidate is not None and self._candidate_count >= cfg.min_on_windows:
            self._active = self._candidate
            self._off_count = 0
            self._candidate = None
            return DtmfDigit(digit=self._active, at=self._candidate_at)
        return None


def dtmf_tone(
    digit: str,
    duration_s: float,
    row_dbfs: float = -10.0,
    col_dbfs: float = -10.0,
    *,
    row_shift: float = 0.0,
    col_shift: float = 0.0,
) -> npt.NDArray[np.int16]:
    """Synthesize a key's tone pair at 8 kHz (levels per tone; shifts as fractions, 0.015 = +1.5 %)."""
    row = next((r for r, keys in enumerate(KEYS) if digit and digit in keys), None)
    if row is None or len(digit) != 1:
        raise MediaError(f"{digit!r} is not a DTMF key: expected one of 0-9, *, #, A-D")
    col = KEYS[row].index(digit)
    t = np.arange(round(duration_s * SAMPLE_RATE)) / SAMPLE_RATE
    a_row = np.sqrt(2 * _FULL_SCALE * 10 ** (row_dbfs / 10))
    a_col = np.sqrt(2 * _FULL_SCALE * 10 ** (col_dbfs / 10))
    signal = a_row * np.sin(2 * np.pi * ROW_HZ[row] * (1 + row_shift) * t) + a_col * np.sin(
        2 * np.pi * COL_HZ[col] * (1 + col_shift) * t
    )
    tone: npt.NDArray[np.int16] = np.clip(np.rint(signal), -32768, 32767).astype(np.int16)
    return tone
