"""Call-progress tones the engine plays itself (a caller waiting on a transfer hears ringing)."""

from __future__ import annotations

import numpy as np

from media.frames import FRAME_SAMPLES, SAMPLE_RATE


def ringback_frames(
    freqs: tuple[float, ...] = (440.0, 480.0),
    on_s: float = 2.0,
    off_s: float = 4.0,
    level_dbfs: float = -19.0,
) -> list[bytes]:
    """One cadence of ringback as 20 ms PCM16 frames (default: North American, 2 s on, 4 s off).

    Play it in a loop; each frame is little-endian int16 at 8 kHz like every bridge frame.
    """
    on = round(on_s * SAMPLE_RATE / FRAME_SAMPLES) * FRAME_SAMPLES
    off = round(off_s * SAMPLE_RATE / FRAME_SAMPLES) * FRAME_SAMPLES
    t = np.arange(on) / SAMPLE_RATE
    amplitude = 32767 * 10 ** (level_dbfs / 20) / len(freqs)
    tone = sum(np.sin(2 * np.pi * f * t) for f in freqs) * amplitude
    pcm = np.concatenate([np.asarray(tone), np.zeros(off)]).astype("<i2")
    return [pcm[i : i + FRAME_SAMPLES].tobytes() for i in range(0, len(pcm), FRAME_SAMPLES)]
