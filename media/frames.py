"""The unit of audio everywhere in the engine: 20 ms of 8 kHz mono int16 (160 samples)."""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
FRAME_BYTES = FRAME_SAMPLES * 2

Frame: TypeAlias = npt.NDArray[np.int16]
"""One frame: a 1-D int16 array of FRAME_SAMPLES samples."""

SILENCE: Frame = np.zeros(FRAME_SAMPLES, dtype=np.int16)
SILENCE.setflags(write=False)


def split_frames(samples: npt.NDArray[np.int16]) -> list[Frame]:
    """Cut audio into whole frames, padding the last one with silence."""
    if samples.size == 0:
        return []
    pad = (-samples.size) % FRAME_SAMPLES
    if pad:
        samples = np.concatenate([samples, np.zeros(pad, dtype=np.int16)])
    return [samples[i : i + FRAME_SAMPLES] for i in range(0, samples.size, FRAME_SAMPLES)]
