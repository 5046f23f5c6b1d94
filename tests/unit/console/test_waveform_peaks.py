"""Waveform lanes: the loudest sample per slice and channel, read from a real WAV file."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import pytest

from console.waveform import WaveformError, bucket_frames, lane_path, pcm_peaks, wav_peaks


def stereo_wav(path: Path, left: list[int], right: list[int], rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"".join(struct.pack("<hh", a, b) for a, b in zip(left, right, strict=True)))
    return path


def test_peaks_keep_each_channel_apart_and_count_negative_swings() -> None:
    pcm = struct.pack("<6h", 100, -16384, -200, 50, 300, 0)
    assert pcm_peaks(pcm, 2) == (300 / 32768, 0.5)
    assert pcm_peaks(struct.pack("<2h", -32768, 0), 2) == (1.0, 0.0)
    assert pcm_peaks(b"", 2) == (0.0, 0.0)
    assert pcm_peaks(pcm + b"\x01", 2) == (300 / 32768, 0.5), "a torn last frame is ignored"


def test_a_wav_becomes_one_lane_per_channel_with_the_talk_where_it_was(tmp_path: Path) -> None:
    # one second: the caller (left) talks in the first half, the bot (right) in the second
    left = [8000 if i < 4000 else 0 for i in range(8000)]
    right = [0 if i < 4000 else -24000 for i in range(8000)]
    shape = wav_peaks(stereo_wav(tmp_path / "call.wav", left, right), buckets=10)
    assert shape.duration_s == 1.0 and len(shape.lanes) == 2
    caller, bot = shape.lanes
    assert caller[:5] == (8000 / 32768,) * 5 and caller[5:] == (0.0,) * 5
    assert bot[:5] == (0.0,) * 5 and bot[5:] == (24000 / 32768,) * 5
    assert shape.to_json()["duration_s"] == 1.0


def test_buckets_never_exceed_what_was_asked_and_a_short_file_gets_one_per_frame(tmp_path: Path) -> None:
    assert bucket_frames(8001, 10) == 801 and bucket_frames(3, 10) == 1
    shape = wav_peaks(stereo_wav(tmp_path / "short.wav", [1, 2, 3], [4, 5, 6]), buckets=600)
    assert [len(lane) for lane in shape.lanes] == [3, 3]
    with pytest.raises(WaveformError, match="at least 1"):
        bucket_frames(10, 0)


def test_a_file_that_is_not_a_wav_is_named_in_the_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.wav"
    bogus.write_bytes(b"not a wav at all")
    with pytest.raises(WaveformError, match=r"bogus\.wav: not a readable WAV"):
        wav_peaks(bogus)
    with pytest.raises(WaveformError, match="cannot read"):
        wav_peaks(tmp_path / "missing.wav")


def test_lane_path_draws_a_bar_per_bucket_and_a_hairline_for_silence() -> None:
    assert lane_path([1.0, 0.0], height=40) == "M0.5 0.00V40.00M1.5 19.75V20.25"
