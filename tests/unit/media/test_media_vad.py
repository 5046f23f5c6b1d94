from __future__ import annotations

import numpy as np
import pytest

from config.errors import MediaError
from config.settings import MediaSettings
from media.frames import FRAME_SAMPLES
from media.vad import EnergyVad, WebRtcVad, make_vad


def _voiced_frames(n: int, seed: int = 1) -> list[np.ndarray]:
    """A vowel-like buzz: 120 Hz pulse train through two formant-ish resonances."""
    rng = np.random.default_rng(seed)
    t = np.arange(n * FRAME_SAMPLES) / 8000
    f0 = 120 + 10 * np.sin(2 * np.pi * 3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / 8000
    sig = sum(np.sin(k * phase) / k for k in range(1, 25)) * (1 + 0.1 * rng.standard_normal(t.size))
    env = 1 + 0.8 * np.sin(2 * np.pi * 700 * t) * np.sin(2 * np.pi * 4 * t)
    audio = (4000 * sig * env / np.max(np.abs(sig))).astype(np.int16)
    return [audio[i : i + FRAME_SAMPLES] for i in range(0, audio.size, FRAME_SAMPLES)]


def test_media_vad_webrtc_hears_voice_not_silence() -> None:
    vad = WebRtcVad(2)
    silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
    assert not any(vad.is_speech(silence) for _ in range(20))
    voiced = [vad.is_speech(f) for f in _voiced_frames(50)]
    assert sum(voiced) >= 40
    vad.reset()
    assert vad.score(silence) == 0.0


def test_media_vad_energy_threshold() -> None:
    vad = EnergyVad(threshold_dbfs=-30.0)
    assert vad.is_speech(np.full(FRAME_SAMPLES, 2000, dtype=np.int16))  # about -24 dBFS
    assert not vad.is_speech(np.full(FRAME_SAMPLES, 500, dtype=np.int16))  # about -36 dBFS


def test_media_vad_rejects_bad_frames_and_settings() -> None:
    with pytest.raises(MediaError, match="aggressiveness must be 0, 1, 2 or 3, got 4"):
        WebRtcVad(4)
    with pytest.raises(MediaError, match="one frame of 160 int16 samples"):
        WebRtcVad().score(np.zeros(80, dtype=np.int16))
    with pytest.raises(MediaError, match="int16"):
        EnergyVad().score(np.zeros(FRAME_SAMPLES, dtype=np.float32))
    vad = make_vad(MediaSettings(vad_aggressiveness=3))
    assert isinstance(vad, WebRtcVad) and vad.aggressiveness == 3
