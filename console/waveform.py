"""Per-channel peaks of a stereo recording, for the call page's two waveform lanes.

The browser never decodes the WAV to draw it: the server reads it once, in slices, and keeps
the loudest sample of each slice per channel (0..1 of full scale), so an hour-long call costs
the page a few hundred numbers. :func:`pcm_peaks` is the pure core (bytes in, numbers out);
:func:`wav_peaks` streams a file through it; :func:`lane_path` draws one lane as an SVG path.
"""

from __future__ import annotations

import sys
import wave
from array import array
from dataclasses import dataclass
from pathlib import Path

FULL_SCALE = 32768.0
DEFAULT_BUCKETS = 600
MAX_BUCKETS = 4000


class WaveformError(ValueError):
    """A WAV the player cannot draw (not 16-bit PCM, or unreadable), named with its path."""


@dataclass(frozen=True)
class Waveform:
    """``lanes[c][i]``: the peak of channel ``c`` over bucket ``i`` (0..1); each bucket lasts
    ``duration_s / len(lanes[c])`` seconds."""

    sample_rate: int
    frames: int
    lanes: tuple[tuple[float, ...], ...]

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "sample_rate": self.sample_rate,
            "duration_s": round(self.duration_s, 3),
            "lanes": [[round(v, 4) for v in lane] for lane in self.lanes],
        }


def pcm_peaks(pcm: bytes, channels: int) -> tuple[float, ...]:
    """The peak of each channel of interleaved 16-bit little-endian ``pcm`` (one bucket)."""
    if channels < 1:
        raise WaveformError(f"channels must be at least 1, not {channels}")
    usable = len(pcm) - len(pcm) % (2 * channels)
    samples = array("h")
    samples.frombytes(pcm[:usable])
    if sys.byteorder == "big":  # pragma: no cover - WAV is little-endian; our hosts are too
        samples.byteswap()
    peaks: list[float] = []
    for channel in range(channels):
        lane = samples[channel::channels]
        high, low = (max(lane), min(lane)) if lane else (0, 0)
        peak = max(high, -low)
        peaks.append(min(1.0, peak / FULL_SCALE))
    return tuple(peaks)


def bucket_frames(frames: int, buckets: int) -> int:
    """Frames per bucket so that ``frames`` fit in at most ``buckets`` buckets (at least 1)."""
    if buckets < 1:
        raise WaveformError(f"buckets must be at least 1, not {buckets}")
    return max(1, -(-frames // buckets))


def wav_peaks(path: Path, buckets: int = DEFAULT_BUCKETS) -> Waveform:
    """Read ``path`` slice by slice (never whole) into at most ``buckets`` peaks per channel."""
    buckets = min(buckets, MAX_BUCKETS)
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise WaveformError(
                    f"{path}: {8 * wav.getsampwidth()}-bit samples; the player draws 16-bit PCM"
                )
            channels, rate, frames = wav.getnchannels(), wav.getframerate(), wav.getnframes()
            step = bucket_frames(frames, buckets)
            columns: list[tuple[float, ...]] = []
            while True:
                chunk = wav.readframes(step)
                if not chunk:
                    break
                columns.append(pcm_peaks(chunk, channels))
    except (wave.Error, EOFError) as exc:
        raise WaveformError(f"{path}: not a readable WAV file ({exc})") from exc
    except OSError as exc:
        raise WaveformError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    lanes = tuple(tuple(column[c] for column in columns) for c in range(channels))
    return Waveform(rate, frames, lanes)


def lane_path(peaks: tuple[float, ...] | list[float], height: float = 40.0) -> str:
    """An SVG path of one vertical bar per bucket, centred on ``height / 2``, in a viewBox
    ``0 0 len(peaks) height``. A silent bucket draws a hairline, so a gap still reads as a gap."""
    middle = height / 2
    parts: list[str] = []
    for index, peak in enumerate(peaks):
        half = max(0.25, min(1.0, peak) * middle)
        parts.append(f"M{index}.5 {middle - half:.2f}V{middle + half:.2f}")
    return "".join(parts)
