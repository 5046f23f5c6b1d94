"""Voice activity backends: each one only scores a frame; :mod:`media.endpointer` debounces.

Keeping backends this narrow means a new detector (a neural VAD, an energy gate for tests)
is one small class, and the timing rules live in one place.

:class:`WebRtcVad` wraps the WebRTC GMM detector. It has no model file to load; its state
adapts to the line's noise, so make one per call (construction costs about a microsecond).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import webrtcvad

from config.errors import MediaError
from config.settings import MediaSettings
from media.audio_checks import frame_dbfs
from media.frames import FRAME_SAMPLES, SAMPLE_RATE, Frame


class VadBackend(ABC):
    """Scores one 20 ms frame as speech (1.0) or not (0.0)."""

    threshold: float = 0.5

    @abstractmethod
    def score(self, frame: Frame) -> float:
        """Probability-like speech score in 0..1 for one frame."""

    def is_speech(self, frame: Frame) -> bool:
        return self.score(frame) >= self.threshold

    def reset(self) -> None:  # noqa: B027 - stateless backends have nothing to forget
        """Forget any adaptation (a new call on a reused backend)."""


def _check_frame(frame: Frame) -> None:
    if frame.dtype != np.int16 or frame.shape != (FRAME_SAMPLES,):
        raise MediaError(
            f"VAD expects one frame of {FRAME_SAMPLES} int16 samples, got {frame.dtype} {frame.shape}"
        )


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


def make_vad(settings: MediaSettings) -> VadBackend:
    """The backend the settings ask for (webrtcvad at ``vad_aggressiveness``)."""
    return WebRtcVad(settings.vad_aggressiveness)
