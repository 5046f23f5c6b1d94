"""A PCM WAV writer whose header is always valid, and the repair step for files it left behind.

A recording that stops mid-call (crash, SIGKILL, power cut) must still open in any player. So
after every batch the RIFF and data sizes are rewritten in place (``pwrite``, no seeking), and
the file is fsynced every few batches. A crash leaves at most the last unflushed batch out of
the header; :func:`repair_header` recomputes the sizes from the file length at next start.

While a writer is open it holds an exclusive ``flock`` on the file, so repair never touches a
recording that a live process is still writing.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from recordings.errors import RecordingError, WavFormatError
from recordings.private_fs import PRIVATE_FILE

HEADER_BYTES = 44
SAMPLE_BYTES = 2
_RIFF_LIMIT = 0xFFFFFFFF - HEADER_BYTES


def wav_header(data_bytes: int, channels: int, sample_rate: int) -> bytes:
    """The canonical 44-byte header of a 16-bit PCM WAV holding ``data_bytes`` of samples."""
    block = channels * SAMPLE_BYTES
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + data_bytes, b"WAVE",
        b"fmt ", 16, 1, channels, sample_rate, sample_rate * block, block, 8 * SAMPLE_BYTES,
        b"data", data_bytes,
    )


@dataclass(frozen=True)
class WavInfo:
    channels: int
    sample_rate: int
    data_offset: int
    data_bytes: int
    file_bytes: int

    @property
    def frames(self) -> int:
        """Sample frames (one sample per channel each)."""
        return self.data_bytes // (self.channels * SAMPLE_BYTES)

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate

    @property
    def header_matches_file(self) -> bool:
        return self.data_offset + self.data_bytes == self.file_bytes


def read_wav_info(path: Path) -> WavInfo:
    """Parse a 16-bit PCM WAV header; the data size is as the header states it."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
            size = os.fstat(handle.fileno()).st_size
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc.strerror}") from exc
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise WavFormatError(f"{path}: not a RIFF/WAVE file")
    offset = 12
    fmt: tuple[int, ...] | None = None
    while offset + 8 <= len(head):
        chunk_id, chunk_size = struct.unpack_from("<4sI", head, offset)
        body = offset + 8
        if chunk_id == b"fmt ":
            if chunk_size < 16 or body + 16 > len(head):
                raise WavFormatError(f"{path}: fmt chunk is truncated")
            fmt = struct.unpack_from("<HHIIHH", head, body)
        elif chunk_id == b"data":
            if fmt is None:
                raise WavFormatError(f"{path}: data chunk comes before the fmt chunk")
            audio_format, channels, rate, _, _, bits = fmt
            if audio_format != 1 or bits != 16:
                raise WavFormatError(f"{path}: expected 16-bit PCM, got format {audio_format} at {bits} bits")
            return WavInfo(channels, rate, body, chunk_size, size)
        offset = body + chunk_size + (chunk_size & 1)
    raise WavFormatError(f"{path}: no data chunk in the first 4096 bytes")


class WavWriter:
    """Append-only 16-bit PCM writer; ``write`` buffers, each flush leaves a valid file.

    ``flush_every`` is in sample frames (8000 = 1 s at 8 kHz); ``fsync_every`` counts flushes.
    """

    def __init__(
        self,
        path: Path,
        channels: int = 2,
        sample_rate: int = 8000,
        flush_every: int = 8000,
        fsync_every: int = 10,
    ) -> None:
        self.path = path
        self.channels = channels
        self.sample_rate = sample_rate
        self._flush_every = flush_every
        self._fsync_every = fsync_every
        self._pending: list[npt.NDArray[np.int16]] = []
        self._pending_frames = 0
        self._data_bytes = 0
        self._flushes = 0
        try:
            self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        except FileExistsError:
            raise RecordingError(f"{path}: a recording with this name already exists") from None
        except OSError as exc:
            raise RecordingError(f"{path}: cannot create: {exc.strerror}") from exc
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(self._fd, wav_header(0, channels, sample_rate))

    @property
    def frames_written(self) -> int:
        """Sample frames accepted so far, flushed or not."""
        return self._data_bytes // (self.channels * SAMPLE_BYTES) + self._pending_frames

    @property
    def closed(self) -> bool:
        return self._fd is None

    def write(self, samples: npt.NDArray[np.int16]) -> None:
        """Queue ``samples`` shaped ``(n, channels)`` (or 1-D for mono); flushes when a batch is full."""
        if self._fd is None:
            raise RecordingError(f"{self.path}: write after close")
        if samples.dtype != np.int16:
            raise RecordingError(f"{self.path}: samples must be int16, got {samples.dtype}")
        shaped = samples.reshape(-1, self.channels) if samples.ndim == 1 else samples
        if shaped.ndim != 2 or shaped.shape[1] != self.channels:
            raise RecordingError(f"{self.path}: expected shape (n, {self.channels}), got {samples.shape}")
        if shaped.shape[0] == 0:
            return
        self._pending.append(np.ascontiguousarray(shaped))
        self._pending_frames += shaped.shape[0]
        if self._pending_frames >= self._flush_every:
            self.flush()

    def flush(self, durable: bool = False) -> None:
        """Append buffered audio, then rewrite the header sizes; fsync every few flushes."""
        if self._fd is None:
            return
        flushed = bool(self._pending)
        if flushed:
            data = np.concatenate(self._pending).astype("<i2", copy=False).tobytes()
            if self._data_bytes + len(data) > _RIFF_LIMIT:
                raise RecordingError(f"{self.path}: recording exceeds the 4 GiB WAV limit")
            self._pending.clear()
            self._pending_frames = 0
            _write_all(self._fd, data)
            self._data_bytes += len(data)
            os.pwrite(self._fd, struct.pack("<I", 36 + self._data_bytes), 4)
            os.pwrite(self._fd, struct.pack("<I", self._data_bytes), 40)
            self._flushes += 1
        if durable or (flushed and self._fsync_every and self._flushes % self._fsync_every == 0):
            os.fsync(self._fd)

    def truncate(self, frames: int) -> None:
        """Keep only the first ``frames`` sample frames (drop the rest, buffered or on disk)."""
        if self._fd is None:
            raise RecordingError(f"{self.path}: truncate after close")
        self.flush()
        keep = min(self._data_bytes, max(0, frames) * self.channels * SAMPLE_BYTES)
        if keep == self._data_bytes:
            return
        os.ftruncate(self._fd, HEADER_BYTES + keep)
        os.lseek(self._fd, 0, os.SEEK_END)
        self._data_bytes = keep
        os.pwrite(self._fd, struct.pack("<I", 36 + self._data_bytes), 4)
        os.pwrite(self._fd, struct.pack("<I", self._data_bytes), 40)

    def close(self) -> int:
        """Flush, fsync and release the lock; returns the data size in bytes."""
        if self._fd is not None:
            self.flush(durable=True)
            os.close(self._fd)
            self._fd = None
        return self._data_bytes


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def is_being_written(path: Path) -> bool:
    """True while some live :class:`WavWriter` (any process) holds ``path`` open."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def repair_header(path: Path, channels: int = 2, sample_rate: int = 8000) -> WavInfo:
    """Make the header of an unfinished recording match the audio actually on disk.

    A trailing partial sample frame (the process died mid-write) is cut off so both channels
    keep the same length. A file too short to hold a header gets a fresh empty one.
    Refuses a file some live writer still holds.
    """
    fd = os.open(path, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RecordingError(f"{path}: still being recorded by a live process") from None
        size = os.fstat(fd).st_size
        if size < HEADER_BYTES or os.pread(fd, 4, 0) != b"RIFF":
            if size >= HEADER_BYTES:
                raise WavFormatError(f"{path}: not a RIFF/WAVE file; left untouched")
            os.ftruncate(fd, 0)
            os.pwrite(fd, wav_header(0, channels, sample_rate), 0)
        else:
            info = read_wav_info(path)
            block = info.channels * SAMPLE_BYTES
            data_bytes = min(size - info.data_offset, _RIFF_LIMIT)
            data_bytes -= data_bytes % block
            if info.data_offset + data_bytes != size:
                os.ftruncate(fd, info.data_offset + data_bytes)
            os.pwrite(fd, struct.pack("<I", info.data_offset - 8 + data_bytes), 4)
            os.pwrite(fd, struct.pack("<I", data_bytes), info.data_offset - 4)
        os.fsync(fd)
    finally:
        os.close(fd)
    return read_wav_info(path)


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of the whole file, header included (what ``sha256sum`` prints)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while block := handle.read(chunk):
                digest.update(block)
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc.strerror}") from exc
    return digest.hexdigest()
