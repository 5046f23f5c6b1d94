"""What every engine does to incoming frames: check them, then bring them to the model's rate.

Phone audio is 8 kHz; both bundled models were trained on 16 kHz. Upsampling with soxr keeps
the model's filterbank as trained (the 4-8 kHz band is simply empty), which recognised far
better in our measurements than re-configuring pocketsphinx's front end for 8 kHz.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr

from config.errors import MediaError
from media.frames import FRAME_SAMPLES, SAMPLE_RATE, Frame


def check_frame(frame: object, where: str) -> Frame:
    """``frame`` if it is one 20 ms frame of 8 kHz int16 audio, else a :class:`MediaError`."""
    if not isinstance(frame, np.ndarray):
        raise MediaError(f"{where}: a frame must be a numpy int16 array, got {type(frame).__name__}")
    if frame.dtype != np.int16 or frame.ndim != 1 or frame.size != FRAME_SAMPLES:
        raise MediaError(
            f"{where}: a frame must be 1-D int16 with {FRAME_SAMPLES} samples (20 ms at {SAMPLE_RATE} Hz), "
            f"got shape {frame.shape} dtype {frame.dtype}"
        )
    return frame


class Upsampler:
    """Streaming 8 kHz to ``rate`` conversion that keeps filter state across frames."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._stream: soxr.ResampleStream | None = None

    def push(self, frame: Frame) -> npt.NDArray[np.int16]:
        if self.rate == SAMPLE_RATE:
            return frame
        if self._stream is None:
            self._stream = soxr.ResampleStream(SAMPLE_RATE, self.rate, 1, dtype="int16", quality="HQ")
        out: npt.NDArray[np.int16] = self._stream.resample_chunk(frame)
        return out

    def drain(self) -> npt.NDArray[np.int16]:
        """The samples the filter still holds; the next ``push`` starts a fresh stream."""
        if self._stream is None:
            return np.zeros(0, dtype=np.int16)
        out: npt.NDArray[np.int16] = self._stream.resample_chunk(np.zeros(0, dtype=np.int16), last=True)
        self._stream = None
        return out

    def reset(self) -> None:
        self._stream = None


class NoiseFloor:
    """Adds a fixed, seeded noise floor (like a real line's) to audio before recognition.

    G.711 silence decodes to exact zeros and synthetic speech has none of a telephone line's
    hiss; pocketsphinx's front end then normalizes on near-zero energy frames and recognition
    collapses. About -47 dBFS of noise (sigma 150) restores it and is inaudible on a real line.
    """

    def __init__(self, sigma: float = 150.0, seed: int = 0) -> None:
        self.sigma = sigma
        self._rng = np.random.default_rng(seed)

    def apply(self, frame: Frame) -> npt.NDArray[np.int16]:
        if self.sigma <= 0:
            return frame
        noisy = frame.astype(np.float32) + self._rng.normal(0.0, self.sigma, frame.size).astype(np.float32)
        return np.clip(noisy, -32768, 32767).astype(np.int16)
