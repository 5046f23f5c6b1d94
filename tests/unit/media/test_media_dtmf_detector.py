from __future__ import annotations

import numpy as np
import pytest

from config.errors import MediaError
from media.dtmf_detector import KEYS, DtmfConfig, DtmfDetector, DtmfDigit, dtmf_tone
from media.frames import split_frames

ALL_KEYS = "".join(KEYS)


def detect(samples: np.ndarray, lead_s: float = 0.1, detector: DtmfDetector | None = None) -> list[DtmfDigit]:
    pad = np.zeros(int(lead_s * 8000), dtype=np.int16)
    detector = detector or DtmfDetector()
    events: list[DtmfDigit] = []
    for i, frame in enumerate(split_frames(np.concatenate([pad, samples, pad]))):
        events += detector.push_frame(frame, i * 0.02)
    return events


def digits(samples: np.ndarray) -> str:
    return "".join(e.digit for e in detect(samples))


@pytest.mark.parametrize("key", list(ALL_KEYS))
def test_media_dtmf_every_key_is_detected_once_with_its_start_time(key: str) -> None:
    events = detect(dtmf_tone(key, 0.07), lead_s=0.1)
    assert [e.digit for e in events] == [key]
    assert events[0].at == pytest.approx(0.1, abs=0.011)


@pytest.mark.parametrize("shift", [0.015, -0.015])
def test_media_dtmf_accepts_1_5_percent_frequency_deviation(shift: float) -> None:
    for key in ALL_KEYS:
        assert digits(dtmf_tone(key, 0.06, row_shift=shift, col_shift=shift)) == key
        assert digits(dtmf_tone(key, 0.06, row_shift=-shift, col_shift=shift)) == key


@pytest.mark.parametrize("shift", [0.035, -0.035])
def test_media_dtmf_rejects_3_5_percent_frequency_deviation(shift: float) -> None:
    for key in ALL_KEYS:
        assert digits(dtmf_tone(key, 0.1, row_shift=shift)) == ""
        assert digits(dtmf_tone(key, 0.1, col_shift=shift)) == ""


def test_media_dtmf_twist_limits() -> None:
    for key in ALL_KEYS:
        # Normal twist: the high (column) tone louder, up to 8 dB.
        assert digits(dtmf_tone(key, 0.06, row_dbfs=-17, col_dbfs=-10)) == key
        assert digits(dtmf_tone(key, 0.06, row_dbfs=-19, col_dbfs=-10)) == ""
        # Reverse twist: the low (row) tone louder, up to 4 dB.
        assert digits(dtmf_tone(key, 0.06, row_dbfs=-10, col_dbfs=-13)) == key
        assert digits(dtmf_tone(key, 0.06, row_dbfs=-10, col_dbfs=-15)) == ""


def test_media_dtmf_duration_limits_at_every_alignment() -> None:
    for offset in range(0, 160, 8):  # the tone starts anywhere within a frame
        lead = np.zeros(offset, dtype=np.int16)
        assert digits(np.concatenate([lead, dtmf_tone("5", 0.040)])) == "5", offset
        assert digits(np.concatenate([lead, dtmf_tone("5", 0.025)])) == "", offset


def test_media_dtmf_level_floor() -> None:
    assert digits(dtmf_tone("1", 0.06, row_dbfs=-33, col_dbfs=-33)) == "1"
    assert digits(dtmf_tone("1", 0.06, row_dbfs=-40, col_dbfs=-40)) == ""


def test_media_dtmf_a_dialled_sequence_with_40_ms_pauses_and_repeats() -> None:
    gap = np.zeros(320, dtype=np.int16)
    seq = np.concatenate([part for key in "1123#0*9" for part in (dtmf_tone(key, 0.045), gap)])
    assert digits(seq) == "1123#0*9"


def test_media_dtmf_a_long_press_is_one_digit() -> None:
    assert digits(dtmf_tone("7", 1.5)) == "7"


def test_media_dtmf_survives_noise_at_10_db_snr() -> None:
    rng = np.random.default_rng(7)
    tone = dtmf_tone("9", 0.06, row_dbfs=-20, col_dbfs=-20).astype(np.float64)
    power = float(np.mean(tone**2))
    hits = 0
    for _ in range(10):
        padded = np.concatenate([np.zeros(800), tone, np.zeros(800)])
        noisy = padded + rng.standard_normal(padded.size) * np.sqrt(power / 10)
        hits += [e.digit for e in detect(noisy.astype(np.int16), lead_s=0)] == ["9"]
    assert hits == 10


def test_media_dtmf_no_digits_on_noise_or_single_tones() -> None:
    rng = np.random.default_rng(3)
    assert digits((rng.standard_normal(8000 * 20) * 3000).astype(np.int16)) == ""
    t = np.arange(8000) / 8000
    assert digits((8000 * np.sin(2 * np.pi * 697 * t)).astype(np.int16)) == ""  # dial-tone-like single
    two_rows = 6000 * (np.sin(2 * np.pi * 697 * t) + np.sin(2 * np.pi * 852 * t))
    assert digits(two_rows.astype(np.int16)) == ""
    # A sweep passes through every DTMF frequency but never holds two of them.
    sweep = 8000 * np.sin(2 * np.pi * (600 + 600 * t) * t)
    assert digits(sweep.astype(np.int16)) == ""


def test_media_dtmf_reset_and_bad_input() -> None:
    detector = DtmfDetector()
    tone = split_frames(dtmf_tone("3", 0.04))
    detector.push_frame(tone[0], 0.0)
    detector.reset()
    assert detector.push_frame(tone[1], 0.02) == []
    with pytest.raises(MediaError, match="frames of 160 samples"):
        detector.push_frame(np.zeros(100, dtype=np.int16), 0.0)
    with pytest.raises(MediaError, match="not a DTMF key"):
        dtmf_tone("x", 0.1)
    with pytest.raises(MediaError, match="max_freq_deviation"):
        DtmfConfig(max_freq_deviation=0.1)
    with pytest.raises(MediaError, match="min_purity"):
        DtmfConfig(min_purity=0.0)
    with pytest.raises(MediaError, match="at least 1"):
        DtmfConfig(min_on_windows=0)
