"""Turning whatever audio arrives (bytes, arrays, WAV files) into valid 20 ms frames.

Everything downstream assumes :data:`media.frames.Frame`: 160 int16 samples at 8 kHz. Audio
that cannot be made into that raises :class:`config.errors.MediaError` naming the source and
the broken rule; audio that can be repaired (float samples, another sample rate, a packet
cut mid-sample, the last partial frame) is repaired here, once, so a bad packet never
crashes a call.
"""

from __future__ import annotations

import io
import math
import wave

import numpy as np
import numpy.typing as npt

from config.errors import MediaError
from media.frames import FRAME_SAMPLES, SAMPLE_RATE, Frame, split_frames
from media.resample import resample

_INT16_MAX = 32767
CLIP_LEVEL = 32000
"""Samples at or above this magnitude count as clipped (G.711 decodes top out at 32124)."""


def to_int16(samples: npt.ArrayLike, source: str = "audio") -> npt.NDArray[np.int16]:
    """Mono samples of any numeric dtype to int16.

    Floats are taken as full scale = 1.0 and saturated; wider integers must already be in
    the int16 range. NaN or infinite samples are an error: they mean a broken producer.
    """
    array = np.asarray(samples)
    if array.ndim != 1:
        raise MediaError(f"{source}: expected mono (1-D) samples, got shape {array.shape}")
    if array.dtype == np.int16:
        return array
    if array.dtype == np.bool_ or array.dtype.kind not in "iuf":
        raise MediaError(f"{source}: samples must be numeric, got dtype {array.dtype}")
    if array.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(array))
        if bad.size:
            raise MediaError(f"{source}: {bad.size} NaN or infinite sample(s), first at index {int(bad[0])}")
        scaled = np.rint(array.astype(np.float64) * _INT16_MAX)
        return np.clip(scaled, -_INT16_MAX - 1, _INT16_MAX).astype(np.int16)
    if array.size and (array.min() < -_INT16_MAX - 1 or array.max() > _INT16_MAX):
        raise MediaError(
            f"{source}: integer samples outside the int16 range "
            f"({int(array.min())}..{int(array.max())}); convert the sample width first"
        )
    return array.astype(np.int16)


def ensure_frame(frame: npt.ArrayLike, source: str = "frame") -> Frame:
    """Check that ``frame`` is exactly one frame (160 int16 samples); floats are converted."""
    array = to_int16(frame, source)
    if array.size != FRAME_SAMPLES:
        raise MediaError(
            f"{source}: a frame is {FRAME_SAMPLES} samples (20 ms at {SAMPLE_RATE} Hz), got {array.size}"
        )
    return array


def pcm16_to_samples(data: bytes | bytearray | memoryview, source: str = "audio") -> npt.NDArray[np.int16]:
    """Little-endian signed 16-bit PCM bytes to samples; an odd byte count is an error."""
    if len(data) % 2:
        raise MediaError(f"{source}: 16-bit PCM needs an even number of bytes, got {len(data)}")
    return np.frombuffer(bytes(data), dtype="<i2").astype(np.int16)


def frames_from_samples(
    samples: npt.ArrayLike, sample_rate: int = SAMPLE_RATE, source: str = "audio"
) -> list[Frame]:
    """Any mono samples at any rate to 8 kHz frames; the last frame is padded with silence."""
    pcm = to_int16(samples, source)
    if sample_rate != SAMPLE_RATE:
        pcm = resample(pcm, sample_rate, SAMPLE_RATE)
    return split_frames(pcm)


def decode_wav(data: bytes, source: str = "WAV") -> npt.NDArray[np.int16]:
    """A WAV file's bytes to mono int16 samples at 8 kHz (downmixed and resampled as needed).

    Raises MediaError for a file that is not PCM WAV, has no samples, or has a sample width
    other than 8, 16, 24 or 32 bits.
    """
    try:
        with wave.open(io.BytesIO(data)) as reader:
            channels = reader.getnchannels()
            width = reader.getsampwidth()
            rate = reader.getframerate()
            raw = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError) as exc:
        raise MediaError(f"{source}: not a readable PCM WAV file: {exc}") from exc
    if not raw:
        raise MediaError(f"{source}: WAV file holds no audio")
    usable = len(raw) - len(raw) % (width * channels)
    pcm = _widen(raw[:usable], width, source)
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1)
    samples = np.clip(np.rint(pcm), -_INT16_MAX - 1, _INT16_MAX).astype(np.int16)
    return resample(samples, rate, SAMPLE_RATE) if rate != SAMPLE_RATE else samples


def _widen(raw: bytes, width: int, source: str) -> npt.NDArray[np.float64]:
    """Samples of any WAV width scaled to the int16 range, as float64."""
    if width == 1:
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
    if width == 2:
        return np.frombuffer(raw, dtype="<i2").astype(np.float64)
    if width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        value = np.where(value & 0x800000, value - (1 << 24), value)
        return value.astype(np.float64) / 256.0
    if width == 4:
        return np.frombuffer(raw, dtype="<i4").astype(np.float64) / 65536.0
    raise MediaError(f"{source}: unsupported WAV sample width of {width * 8} bits")


def clipping_ratio(samples: npt.NDArray[np.int16]) -> float:
    """Share of samples at the rails: a hint that the caller's gain is too high."""
    if samples.size == 0:
        return 0.0
    return float(np.count_nonzero(np.abs(samples.astype(np.int32)) >= CLIP_LEVEL)) / samples.size


def clipping_ratios(frames: npt.NDArray[np.int16] | npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """:func:`clipping_ratio` of each row of an n x samples block (int16 values, any dtype)."""
    rails = np.abs(frames if frames.dtype.kind == "f" else frames.astype(np.int32)) >= CLIP_LEVEL
    if not rails.any():
        return np.zeros(frames.shape[0])
    ratios: npt.NDArray[np.float64] = np.count_nonzero(rails, axis=1) / max(frames.shape[1], 1)
    return ratios


def frame_powers(frames: npt.NDArray[np.int16] | npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Mean square of each row of an n x samples block of int16 values (int16 units squared).

    Exact: every square and every partial sum of int16 values is an integer below 2**53, so
    float64 holds it without rounding in any summation order, and a block gives the very bits
    that one frame at a time (or a float64 dot product) does.
    """
    wide = frames.astype(np.float64, copy=False)
    powers: npt.NDArray[np.float64] = np.add.reduce(np.square(wide), axis=1) / max(frames.shape[1], 1)
    return powers


def power_dbfs(power: float) -> float:
    """A mean square (int16 units squared) as dBFS, floored at -120 like :func:`frame_dbfs`."""
    return max(-120.0, 10.0 * math.log10(power / (_INT16_MAX**2) + 1e-12))


def frame_dbfs(frame: npt.NDArray[np.int16]) -> float:
    """RMS level relative to a full-scale square wave; silence is -120 dBFS."""
    if frame.size == 0:
        return -120.0
    wide = frame.astype(np.float64)
    return power_dbfs(float(np.dot(wide, wide)) / frame.size)  # exact: as frame_powers


class FrameAssembler:
    """Cuts a byte stream (RTP payloads, pipe reads) into whole frames.

    A packet may end mid-sample or mid-frame; the remainder is kept for the next packet, so
    odd byte counts are handled rather than rejected.
    """

    def __init__(self, source: str = "stream") -> None:
        self.source = source
        self._pending = bytearray()

    def push(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Add bytes of 16-bit little-endian PCM; returns every frame now complete."""
        self._pending.extend(data)
        whole = len(self._pending) - len(self._pending) % (FRAME_SAMPLES * 2)
        if not whole:
            return []
        samples = np.frombuffer(bytes(self._pending[:whole]), dtype="<i2").astype(np.int16)
        del self._pending[:whole]
        return split_frames(samples)

    def flush(self) -> list[Frame]:
        """The last partial frame, padded with silence (a dangling odd byte is dropped)."""
        usable = len(self._pending) - len(self._pending) % 2
        samples = np.frombuffer(bytes(self._pending[:usable]), dtype="<i2").astype(np.int16)
        self._pending.clear()
        return split_frames(samples)

    @property
    def pending_bytes(self) -> int:
        return len(self._pending)
