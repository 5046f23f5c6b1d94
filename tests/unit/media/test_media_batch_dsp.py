"""The block kernels behind ``CallMediaPipeline.push_caller_frames`` give, row for row, exactly what
the per-frame functions give (bit for bit where the result is compared with a threshold)."""

from __future__ import annotations

import numpy as np
import pytest

from config.errors import MediaError
from media.audio_checks import clipping_ratio, clipping_ratios, frame_dbfs, frame_powers, power_dbfs
from media.barge_in import frame_power
from media.dtmf_detector import DtmfDetector, dtmf_tone
from media.frames import FRAME_SAMPLES
from media.vad import EnergyVad, WebRtcVad


def _block(seed: int = 5) -> np.ndarray:
    """Noise, loud clipped noise, a buzz and in-band keys at several levels, as n x 160."""
    rng = np.random.default_rng(seed)
    t = np.arange(8000 * 3) / 8000
    buzz = 6000 * np.sin(2 * np.pi * 140 * t) * (np.sin(2 * np.pi * 2 * t) > 0)
    audio = buzz + rng.standard_normal(t.size) * 40
    audio[4000:12000] += rng.standard_normal(8000) * 30000  # clipped
    for k, digit in enumerate("159*#D"):
        tone = dtmf_tone(digit, 0.05 + 0.02 * k, -6.0 - 4 * k, -7.0 - 4 * k).astype(np.float64)
        at = 12800 + k * 1600
        audio[at : at + tone.size] += tone
    pcm = np.clip(np.rint(audio), -32768, 32767).astype(np.int16)
    return pcm[: pcm.size // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)


def test_media_batch_powers_and_clipping_match_per_frame_exactly() -> None:
    block = _block()
    powers = frame_powers(block)
    ratios = clipping_ratios(block)
    for k, frame in enumerate(block):
        wide = frame.astype(np.float64)
        assert powers[k] == float(np.dot(wide, wide)) / FRAME_SAMPLES == frame_power(frame)
        assert ratios[k] == clipping_ratio(frame)
        assert frame_dbfs(frame) == power_dbfs(float(powers[k]))
    assert (ratios > 0.01).any() and (ratios == 0).any()


@pytest.mark.parametrize("sizes", [[1], [2], [5], [50], [3, 1, 7, 2, 60]])
def test_media_batch_dtmf_keys_match_frame_by_frame(sizes: list[int]) -> None:
    block = _block()
    one = DtmfDetector()
    expected = [one.analyse(block[k : k + 1])[0] for k in range(len(block))]
    batched = DtmfDetector()
    got: list[tuple[str | None, str | None]] = []
    at = 0
    while at < len(block):
        for size in sizes:
            got += batched.analyse(block[at : at + size])
            at += size
    assert got == expected
    heard = {key for pair in expected for key in pair if key is not None}
    assert heard == set("159*#")  # both paths miss the quietest key, D, on top of the buzz


def test_media_batch_dtmf_digits_match_push_frame() -> None:
    block = _block()
    single = DtmfDetector()
    expected = [single.push_frame(frame, k * 0.02) for k, frame in enumerate(block)]
    batched = DtmfDetector()
    keys = batched.analyse(block)
    got = [batched.decide(pair, k * 0.02) for k, pair in enumerate(keys)]
    assert got == expected
    assert [d.digit for frame in got for d in frame] == list("159*#")


@pytest.mark.parametrize("vad", [WebRtcVad(0), WebRtcVad(3), EnergyVad(-30.0)])
def test_media_batch_vad_matches_frame_by_frame(vad: WebRtcVad | EnergyVad) -> None:
    block = _block()
    vad.reset()
    expected = [vad.is_speech(frame) for frame in block]
    vad.reset()
    got = vad.is_speech_batch(block[:7]) + vad.is_speech_batch(block[7:])
    assert got == expected
    assert True in got and False in got


def test_media_batch_kernels_reject_bad_blocks() -> None:
    with pytest.raises(MediaError, match="n x 160"):
        DtmfDetector().analyse(np.zeros((2, 80), dtype=np.int16))
    with pytest.raises(MediaError, match="n x 160 int16"):
        WebRtcVad().is_speech_batch(np.zeros((2, FRAME_SAMPLES), dtype=np.float64))
    with pytest.raises(MediaError, match="n x 160 int16"):
        EnergyVad().is_speech_batch(np.zeros(FRAME_SAMPLES, dtype=np.int16))
