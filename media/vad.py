"""Voice activity backends: each one only scores a frame; :mod:`media.endpointer` debounces.

Keeping backends this narrow means a new detector (a neural VAD, an energy gate for tests)
is one small class, and the timing rules live in one place.

:class:`WebRtcVad` wraps the WebRTC GMM detector. It has no model file to load; its state
adapts to the line's noise, so make one per call (construction costs about a microsecond).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import numpy.typing as npt
import webrtcvad

from config.errors import MediaError
from config.settings import MediaSettings
from media.audio_checks import frame_dbfs, frame_powers, power_dbfs
from media.frames import FRAME_SAMPLES, SAMPLE_RATE, Frame


class VadBackend(ABC):
    """Scores one 20 ms frame as speech (1.0) or not (0.0)."""

    threshold: float = 0.5

    @abstractmethod
    def score(self, frame: Frame) -> float:
        """Probability-like speech score in 0..1 for one frame."""

    def is_speech(self, frame: Frame) -> bool:
        return self.score(frame) >= self.threshold

    def is_speech_batch(self, frames: npt.NDArray[np.int16]) -> list[bool]:
        """:meth:`is_speech` for each row of an n x 160 block, in order (stateful backends adapt
        exactly as frame by frame); backends override it when a block is cheaper than n frames."""
        return [self.is_speech(frame) for frame in frames]

    def reset(self) -> None:  # noqa: B027 - stateless backends have nothing to forget
        """Forget any adaptation (a new call on a reused backend)."""


def _check_frame(frame: Frame) -> None:
    if frame.dtype != np.int16 or frame.shape != (FRAME_SAMPLES,):
        raise MediaError(
            f"VAD expects one frame of {FRAME_SAMPLES} int16 samples, got {frame.dtype} {frame.shape}"
        )


def _check_block(frames: npt.NDArray[np.int16]) -> None:
    if frames.dtype != np.int16 or frames.ndim != 2 or frames.shape[1] != FRAME_SAMPLES:
        raise MediaError(f"VAD expects n x {FRAME_SAMPLES} int16 samples, got {frames.dtype} {frames.shape}")


class WebRtcVad(VadBackend):
    """The WebRTC detector; ``aggressiveness`` 0 (keeps most speech) to 3 (rejects most noise)."""

    def __init__(self, aggressiveness: int = 2) -> None:
        if isinstance(aggressiveness, bool) or aggressiveness not in (0, 1, 2, 3):
            raise MediaError(f"webrtcvad aggressiveness must be 0, 1, 2 or 3, got {aggressiveness!r}")
        self.aggressiveness = aggressiveness
        self._vad = webrtcvad.Vad(aggressiveness)

    def score(self, frame: Frame) -> float:
        _check_frame(frame)
        return 1.0 if self._vad.is_speech(frame.tobytes(), SAMPLE_RATE) else 0.0

    def is_speech_batch(self, frames: npt.NDArray[np.int16]) -> list[bool]:
        if type(self).score is not WebRtcVad.score or not 0.0 < self.threshold <= 1.0:
            return super().is_speech_batch(frames)  # a subclass scoring differently
        _check_block(frames)
        data = frames.tobytes()
        step = FRAME_SAMPLES * 2
        return [bool(self._vad.is_speech(data[i : i + step], SAMPLE_RATE)) for i in range(0, len(data), step)]

    def reset(self) -> None:
        self._vad = webrtcvad.Vad(self.aggressiveness)


class EnergyVad(VadBackend):
    """Speech when the frame's RMS level is above ``threshold_dbfs``.

    Deterministic and blind to spectrum: good for synthetic test signals and as a floor
    under another detector, not for noisy lines.
    """

    def __init__(self, threshold_dbfs: float = -40.0) -> None:
        self.threshold_dbfs = threshold_dbfs

    def score(self, frame: Frame) -> float:
        _check_frame(frame)
        return 1.0 if frame_dbfs(frame) >= self.threshold_dbfs else 0.0

    def is_speech_batch(self, frames: npt.NDArray[np.int16]) -> list[bool]:
        if type(self).score is not EnergyVad.score or not 0.0 < self.threshold <= 1.0:
            return super().is_speech_batch(frames)
        _check_block(frames)
        return [power_dbfs(p) >= self.threshold_dbfs for p in frame_powers(frames).tolist()]


def make_vad(settings: MediaSettings) -> VadBackend:
    """The backend the settings ask for (webrtcvad at ``vad_aggressiveness``)."""
    return WebRtcVad(settings.vad_aggressiveness)
