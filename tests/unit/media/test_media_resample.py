from __future__ import annotations

import numpy as np
import pytest

from config.errors import MediaError
from media.resample import Resampler, resample


def _tone(freq: float, rate: int, seconds: float = 0.5, amplitude: float = 10000) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def _rms(x: np.ndarray) -> float:
    core = x[len(x) // 5 : -len(x) // 5].astype(np.float64)  # skip filter edges
    return float(np.sqrt(np.mean(core**2)))


@pytest.mark.parametrize(
    ("from_rate", "to_rate", "inside_hz", "above_hz"),
    [
        (16000, 8000, 1000, 5000),
        (22050, 8000, 1000, 6000),
        (22050, 16000, 3000, 9500),
        (48000, 8000, 2500, 4500),
    ],
)
def test_media_resample_down_attenuates_above_new_nyquist(
    from_rate: int, to_rate: int, inside_hz: float, above_hz: float
) -> None:
    kept = resample(_tone(inside_hz, from_rate), from_rate, to_rate)
    aliased = resample(_tone(above_hz, from_rate), from_rate, to_rate)
    assert kept.dtype == np.int16
    assert abs(kept.size - int(0.5 * to_rate)) <= 1
    assert 0.95 < _rms(kept) / (10000 / np.sqrt(2)) < 1.05
    # A tone above the new Nyquist must not fold back into the band: at least 60 dB down.
    assert _rms(aliased) < 10000 / np.sqrt(2) * 1e-3


@pytest.mark.parametrize(("from_rate", "to_rate"), [(8000, 16000), (8000, 22050), (16000, 22050)])
def test_media_resample_up_keeps_the_tone_and_its_frequency(from_rate: int, to_rate: int) -> None:
    out = resample(_tone(440, from_rate), from_rate, to_rate)
    spectrum = np.abs(np.fft.rfft(out.astype(np.float64)))
    peak_hz = np.argmax(spectrum) * to_rate / out.size
    assert abs(peak_hz - 440) < 3
    assert 0.95 < _rms(out) / (10000 / np.sqrt(2)) < 1.05


def test_media_resampler_stream_matches_whole_buffer_conversion() -> None:
    tone = _tone(700, 22050, seconds=1.0)
    stream = Resampler(22050, 8000)
    chunks = [stream.process(tone[i : i + 441]) for i in range(0, tone.size, 441)]
    chunks.append(stream.flush())
    joined = np.concatenate(chunks)
    whole = resample(tone, 22050, 8000)
    assert abs(joined.size - whole.size) <= 1
    n = min(joined.size, whole.size)
    assert np.max(np.abs(joined[:n].astype(np.int32) - whole[:n].astype(np.int32))) <= 2


def test_media_resampler_same_rate_is_a_copy() -> None:
    tone = _tone(700, 8000, seconds=0.1)
    out = resample(tone, 8000, 8000)
    assert out is not tone
    np.testing.assert_array_equal(out, tone)
    stream = Resampler(8000)
    np.testing.assert_array_equal(stream.process(tone), tone)
    assert stream.flush().size == 0


def test_media_resample_rejects_bad_rates_and_samples() -> None:
    with pytest.raises(MediaError, match="input sample rate 0 Hz"):
        resample(np.zeros(10, dtype=np.int16), 0)
    with pytest.raises(MediaError, match="integer"):
        resample(np.zeros(10, dtype=np.int16), 8000.5)  # type: ignore[arg-type]
    with pytest.raises(MediaError, match="int16"):
        resample(np.zeros(10, dtype=np.float32), 16000)
    with pytest.raises(MediaError, match="mono"):
        resample(np.zeros((10, 2), dtype=np.int16), 16000)
    assert resample(np.zeros(0, dtype=np.int16), 16000).size == 0
