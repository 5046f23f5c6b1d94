"""The WAV header is valid after every flush, and repair fixes what a dead writer left."""

from __future__ import annotations

import hashlib
import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from recordings.errors import RecordingError, WavFormatError
from recordings.wav_writer import (
    HEADER_BYTES,
    WavWriter,
    file_sha256,
    is_being_written,
    read_wav_info,
    repair_header,
    wav_header,
)


def stereo(n: int, left: int = 100, right: int = -100) -> np.ndarray:
    out = np.empty((n, 2), dtype=np.int16)
    out[:, 0], out[:, 1] = left, right
    return out


def read_with_stdlib(path: Path) -> tuple[int, int, int, bytes]:
    with wave.open(str(path), "rb") as w:
        return w.getnchannels(), w.getframerate(), w.getnframes(), w.readframes(w.getnframes())


def test_header_is_valid_after_each_flush_while_still_open(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    writer = WavWriter(path, flush_every=800, fsync_every=2)
    assert read_with_stdlib(path)[:3] == (2, 8000, 0)
    writer.write(stereo(500))
    assert read_with_stdlib(path)[2] == 0  # still buffered
    writer.write(stereo(500))
    channels, rate, frames, data = read_with_stdlib(path)
    assert (channels, rate, frames) == (2, 8000, 1000)
    samples = np.frombuffer(data, dtype="<i2").reshape(-1, 2)
    assert (samples[:, 0] == 100).all() and (samples[:, 1] == -100).all()
    assert is_being_written(path)
    writer.write(stereo(10))
    assert writer.frames_written == 1010
    assert writer.close() == 1010 * 4
    assert read_with_stdlib(path)[2] == 1010
    assert not is_being_written(path)
    assert read_wav_info(path).header_matches_file


def test_truncate_drops_the_tail_on_disk_and_in_the_buffer(tmp_path: Path) -> None:
    path = tmp_path / "t.wav"
    writer = WavWriter(path, flush_every=800)
    writer.write(stereo(1000, 1, 1))  # flushed to disk
    writer.write(stereo(300, 2, 2))  # still buffered
    writer.truncate(1100)
    assert writer.frames_written == 1100 and read_wav_info(path).header_matches_file
    writer.truncate(5000)  # longer than the file: nothing changes
    writer.write(stereo(10, 3, 3))
    writer.close()
    _, _, frames, data = read_with_stdlib(path)
    samples = np.frombuffer(data, dtype="<i2").reshape(-1, 2)
    assert frames == 1110 and (samples[1000:1100] == 2).all() and (samples[1100:] == 3).all()
    with pytest.raises(RecordingError, match="truncate after close"):
        writer.truncate(1)


def test_refuses_to_overwrite_and_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    writer = WavWriter(path)
    with pytest.raises(RecordingError, match="already exists"):
        WavWriter(path)
    with pytest.raises(RecordingError, match=r"expected shape \(n, 2\)"):
        writer.write(np.zeros((4, 3), dtype=np.int16))
    with pytest.raises(RecordingError, match="must be int16"):
        writer.write(np.zeros((4, 2), dtype=np.int32))
    writer.close()
    with pytest.raises(RecordingError, match="write after close"):
        writer.write(stereo(1))


def test_repair_sets_sizes_from_file_length_and_drops_partial_sample(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    data = stereo(300).tobytes()
    # As a killed writer leaves it: header says 100 frames, 300 and a half are on disk.
    path.write_bytes(wav_header(400, 2, 8000) + data + b"\x01\x02")
    assert not read_wav_info(path).header_matches_file
    info = repair_header(path)
    assert info.frames == 300
    assert info.header_matches_file
    assert read_with_stdlib(path)[2] == 300
    assert path.stat().st_size == HEADER_BYTES + len(data)


def test_repair_gives_an_empty_file_a_header(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"RIF")
    assert repair_header(path).frames == 0
    assert read_with_stdlib(path)[:3] == (2, 8000, 0)


def test_repair_refuses_live_recordings_and_foreign_files(tmp_path: Path) -> None:
    live = tmp_path / "live.wav"
    writer = WavWriter(live, flush_every=1)
    writer.write(stereo(10))
    with pytest.raises(RecordingError, match="still being recorded"):
        repair_header(live)
    writer.close()
    foreign = tmp_path / "notes.wav"
    foreign.write_bytes(b"x" * 100)
    with pytest.raises(WavFormatError, match="not a RIFF/WAVE file; left untouched"):
        repair_header(foreign)
    assert foreign.read_bytes() == b"x" * 100


def test_read_wav_info_names_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "float.wav"
    header = bytearray(wav_header(0, 2, 8000))
    struct.pack_into("<H", header, 20, 3)  # IEEE float
    path.write_bytes(bytes(header))
    with pytest.raises(WavFormatError, match=r"float.wav: expected 16-bit PCM, got format 3"):
        read_wav_info(path)


def test_sha256_is_of_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "h.wav"
    writer = WavWriter(path)
    writer.write(stereo(123))
    writer.close()
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
