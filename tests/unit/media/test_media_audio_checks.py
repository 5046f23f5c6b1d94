from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from config.errors import MediaError
from media.audio_checks import (
    FrameAssembler,
    clipping_ratio,
    decode_wav,
    ensure_frame,
    frame_dbfs,
    frames_from_samples,
    pcm16_to_samples,
    to_int16,
)
from media.frames import FRAME_SAMPLES


def _wav_bytes(samples: np.ndarray, rate: int, channels: int = 1, width: int = 2) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(samples.tobytes())
    return buf.getvalue()


def test_media_checks_float_input_is_scaled_and_saturated() -> None:
    out = to_int16(np.array([0.0, 0.5, -1.0, 1.5, -3.0], dtype=np.float32))
    assert out.dtype == np.int16
    assert out.tolist() == [0, 16384, -32767, 32767, -32768]


def test_media_checks_nan_is_a_clear_error_naming_the_sample() -> None:
    with pytest.raises(MediaError, match=r"caller track: 2 NaN or infinite sample\(s\), first at index 1"):
        to_int16(np.array([0.0, np.nan, np.inf]), "caller track")


def test_media_checks_rejects_non_numeric_stereo_and_out_of_range_ints() -> None:
    with pytest.raises(MediaError, match="numeric"):
        to_int16(np.array([True, False]))
    with pytest.raises(MediaError, match=r"mono \(1-D\)"):
        to_int16(np.zeros((4, 2), dtype=np.int16))
    with pytest.raises(MediaError, match="int16 range"):
        to_int16(np.array([0, 40000], dtype=np.int32))
    assert to_int16(np.array([1, -2], dtype=np.int32)).tolist() == [1, -2]


def test_media_checks_ensure_frame_names_the_expected_length() -> None:
    assert ensure_frame(np.zeros(FRAME_SAMPLES, dtype=np.int16)).size == FRAME_SAMPLES
    with pytest.raises(MediaError, match=r"rtp: a frame is 160 samples .* got 80"):
        ensure_frame(np.zeros(80, dtype=np.int16), "rtp")
    with pytest.raises(MediaError, match="got 0"):
        ensure_frame(np.zeros(0, dtype=np.int16))


def test_media_checks_odd_byte_count_is_an_error_for_a_buffer() -> None:
    assert pcm16_to_samples(b"\x01\x00\xff\xff").tolist() == [1, -1]
    with pytest.raises(MediaError, match="even number of bytes, got 3"):
        pcm16_to_samples(b"\x00\x00\x00")


def test_media_checks_assembler_carries_odd_bytes_across_packets() -> None:
    samples = np.arange(400, dtype=np.int16)
    data = samples.astype("<i2").tobytes()
    assembler = FrameAssembler()
    frames = []
    for start in range(0, len(data), 77):  # odd packet sizes, cut mid-sample
        frames += assembler.push(data[start : start + 77])
    assert len(frames) == 2 and assembler.pending_bytes == 160
    frames += assembler.flush()
    joined = np.concatenate(frames)
    np.testing.assert_array_equal(joined[:400], samples)
    assert np.all(joined[400:] == 0) and joined.size == 480
    assert assembler.flush() == []


def test_media_checks_frames_from_other_rate_are_resampled() -> None:
    t = np.arange(16000) / 16000
    frames = frames_from_samples(0.3 * np.sin(2 * np.pi * 440 * t), sample_rate=16000)
    assert len(frames) == 50
    assert all(f.dtype == np.int16 and f.size == FRAME_SAMPLES for f in frames)
    assert frames_from_samples(np.zeros(0, dtype=np.int16)) == []


def test_media_checks_decode_wav_downmixes_and_resamples() -> None:
    t = np.arange(22050) / 22050
    left = (8000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
    stereo = np.stack([left, left], axis=1).reshape(-1)
    out = decode_wav(_wav_bytes(stereo, 22050, channels=2), "prompt.wav")
    assert abs(out.size - 8000) <= 1
    assert 5000 < np.abs(out).max() < 8200


def test_media_checks_decode_wav_widths() -> None:
    ramp = np.array([0, 64, 128, 255], dtype=np.uint8)
    assert decode_wav(_wav_bytes(ramp, 8000, width=1)).tolist() == [-32768, -16384, 0, 32512]
    wide = np.array([1 << 24, -(1 << 24)], dtype="<i4")
    assert decode_wav(_wav_bytes(wide, 8000, width=4)).tolist() == [256, -256]
    b24 = bytes([0, 1, 0, 0, 0xFF, 0xFF])  # 256 and -256 as 24-bit (0x000100, 0xFFFF00)
    assert decode_wav(_wav_bytes(np.frombuffer(b24, np.uint8), 8000, width=3)).tolist() == [1, -1]


def test_media_checks_decode_wav_errors_name_the_file() -> None:
    with pytest.raises(MediaError, match=r"greeting\.wav: not a readable PCM WAV"):
        decode_wav(b"RIFF\x00\x00garbage", "greeting.wav")
    with pytest.raises(MediaError, match=r"empty\.wav: WAV file holds no audio"):
        decode_wav(_wav_bytes(np.zeros(0, dtype=np.int16), 8000), "empty.wav")


def test_media_checks_clipping_and_level() -> None:
    frame = np.zeros(FRAME_SAMPLES, dtype=np.int16)
    assert clipping_ratio(frame) == 0.0 and frame_dbfs(frame) == -120.0
    frame[:16] = 32767
    frame[16:32] = -32768
    assert clipping_ratio(frame) == pytest.approx(0.2)
    square = np.where(np.arange(FRAME_SAMPLES) % 2, 32767, -32767).astype(np.int16)
    assert frame_dbfs(square) == pytest.approx(0.0, abs=0.01)
    assert clipping_ratio(np.zeros(0, dtype=np.int16)) == 0.0
