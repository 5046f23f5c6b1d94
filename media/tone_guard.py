"""Is this "utterance" a steady tone (fax, dial tone, busy tone, a test tone), not speech?

A grammar recognizer forces any sound onto some phrase: a steady 440 Hz tone was heard as
"bye" (0.92) and hung a call up. Tones are easy to tell apart from speech: nearly all of a
tone's energy sits in one or two spectral peaks that stay put from frame to frame, while
speech spreads its energy over many harmonics and formants that move with every syllable.
Pure and cheap (one 256-point FFT per loud frame of an utterance).
"""

from __future__ import annotations

import numpy as np

from media.frames import Frame

_N_FFT = 256
_LOUD_RMS = 300.0  # frames quieter than this (pre-roll silence, line noise) are not judged
_PEAK_SHARE = 0.75  # energy in the two strongest peaks (each +-1 bin) for a frame to be "tonal"
_TONAL_SHARE = 0.8  # share of loud frames that must be tonal, with peaks that do not move
_MIN_LOUD_FRAMES = 10  # 200 ms: shorter sounds are left to the recognizer and the flow
_WINDOW = np.hanning(160)
_WINDOW_RMS = float(np.sqrt(np.mean(_WINDOW**2)))  # what the window does to a steady signal's RMS
_BELOW_BAND = 3  # FFT bins (31.25 Hz each) under the telephone band's tones


class ToneGuard:
    """Fed an utterance's frames; :meth:`is_tone` says whether it was a steady tone."""

    def __init__(self) -> None:
        self._loud = 0
        self._steady_tonal = 0
        self._last_peaks: frozenset[int] | None = None

    def reset(self) -> None:
        """A new utterance begins."""
        self._loud = 0
        self._steady_tonal = 0
        self._last_peaks = None

    def push(self, frame: Frame) -> None:
        samples = np.asarray(frame, dtype=np.float64)
        if samples.size != _WINDOW.size:
            return
        windowed = (samples - samples.mean()) * _WINDOW  # a DC offset is neither speech nor a tone
        if float(np.sqrt(np.mean(windowed**2))) < _LOUD_RMS * _WINDOW_RMS:
            return
        self._loud += 1
        power = np.abs(np.fft.rfft(windowed, _N_FFT)) ** 2
        power[:_BELOW_BAND] = 0.0  # DC and hum under ~90 Hz are no telephone tone
        total = float(power.sum())
        if total <= 0.0:
            return
        peaks = self._two_peaks(power)
        share = sum(float(power[max(0, p - 1) : p + 2].sum()) for p in peaks) / total
        # A peak may wander by a bin between frames (window edges); more than that is a voice.
        steady = self._last_peaks is None or all(
            any(abs(p - q) <= 1 for q in self._last_peaks) for p in peaks
        )
        self._last_peaks = frozenset(peaks)
        if share >= _PEAK_SHARE and steady:
            self._steady_tonal += 1

    def is_tone(self) -> bool:
        return self._loud >= _MIN_LOUD_FRAMES and self._steady_tonal >= _TONAL_SHARE * self._loud

    @staticmethod
    def _two_peaks(power: np.ndarray) -> list[int]:
        first = int(np.argmax(power))
        masked = power.copy()
        masked[max(0, first - 2) : first + 3] = 0.0
        second = int(np.argmax(masked))
        # A single tone: the "second peak" is just leakage; count it only when it matters.
        return [first, second] if masked[second] > 0.05 * power[first] else [first]
