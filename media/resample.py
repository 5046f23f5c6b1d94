"""Sample-rate conversion with a proper anti-aliasing filter (libsoxr).

Telephony runs at 8 kHz, ASR models want 16 kHz and espeak-ng speaks at 22.05 kHz. Naive
decimation folds everything above the new Nyquist back into the band as noise; soxr's
filter removes it first. :func:`resample` converts a whole buffer; :class:`Resampler` keeps
the filter state between chunks so a stream (a TTS render, a live call) has no clicks at
chunk boundaries.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr

from config.errors import MediaError
from media.frames import SAMPLE_RATE

_MIN_RATE = 4000
_MAX_RATE = 192000


def _check_rate(rate: int, what: str) -> None:
    if isinstance(rate, bool) or not isinstance(rate, int | np.integer):
        raise MediaError(f"{what} sample rate must be an integer in Hz, got {rate!r}")
    if not _MIN_RATE <= rate <= _MAX_RATE:
        raise MediaError(f"{what} sample rate {rate} Hz is outside {_MIN_RATE}..{_MAX_RATE} Hz")


def _check_samples(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    array = np.asarray(samples)
    if array.dtype != np.int16:
        raise MediaError(f"resampler expects int16 samples, got dtype {array.dtype}")
    if array.ndim != 1:
        raise MediaError(f"resampler expects mono (1-D) samples, got shape {array.shape}")
    return array


def resample(
    samples: npt.NDArray[np.int16], from_rate: int, to_rate: int = SAMPLE_RATE, quality: str = "HQ"
) -> npt.NDArray[np.int16]:
    """Convert mono int16 audio from ``from_rate`` to ``to_rate`` (default 8 kHz)."""
    _check_rate(from_rate, "input")
    _check_rate(to_rate, "output")
    array = _check_samples(samples)
    if from_rate == to_rate or array.size == 0:
        return array.copy()
    out: npt.NDArray[np.int16] = soxr.resample(array, from_rate, to_rate, quality=quality)
    return out


class Resampler:
    """A streaming converter: feed chunks of any size, get the converted audio so far."""

    def __init__(self, from_rate: int, to_rate: int = SAMPLE_RATE, quality: str = "HQ") -> None:
        _check_rate(from_rate, "input")
        _check_rate(to_rate, "output")
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._stream = (
            None
            if from_rate == to_rate
            else soxr.ResampleStream(from_rate, to_rate, 1, dtype="int16", quality=quality)
        )

    def process(self, samples: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
        """Convert the next chunk; the output lags the input by the filter delay."""
        array = _check_samples(samples)
        if self._stream is None:
            return array.copy()
        out: npt.NDArray[np.int16] = self._stream.resample_chunk(array, last=False)
        return out

    def flush(self) -> npt.NDArray[np.int16]:
        """Drain the filter at the end of the stream; the resampler is then finished."""
        if self._stream is None:
            return np.zeros(0, dtype=np.int16)
        out: npt.NDArray[np.int16] = self._stream.resample_chunk(np.zeros(0, dtype=np.int16), last=True)
        return out
