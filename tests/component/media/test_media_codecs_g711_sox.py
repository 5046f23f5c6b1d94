"""G.711 must be bit-exact with sox, the reference every telephony tool agrees with."""

from __future__ import annotations

import os
import shutil
import subprocess
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from media import g711

pytestmark = pytest.mark.component


def _require_sox() -> str:
    sox = shutil.which("sox")
    if sox is None:
        if os.environ.get("CI") == "true":
            pytest.fail("sox is not installed (apt-get install sox)")
        pytest.skip("sox is not installed")
    return sox


def _sox(*args: str) -> None:
    # -D: no dither, or sox adds noise when it reduces the bit depth.
    subprocess.run([_require_sox(), "-D", "-V1", *args], check=True)


def _write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(samples.astype("<i2").tobytes())


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as reader:
        return np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")


@pytest.mark.parametrize(("raw_type", "encode"), [("ul", g711.ulaw_encode), ("al", g711.alaw_encode)])
def test_media_g711_encode_matches_sox_for_every_int16(
    tmp_path: Path, raw_type: str, encode: Callable[[np.ndarray], bytes]
) -> None:
    every = np.arange(-32768, 32768, dtype=np.int16)
    _write_wav(tmp_path / "all.wav", every)
    out = tmp_path / f"all.{raw_type}"
    _sox(str(tmp_path / "all.wav"), "-t", raw_type, str(out))
    expected = np.frombuffer(out.read_bytes(), dtype=np.uint8)
    ours = np.frombuffer(encode(every), dtype=np.uint8)
    mismatched = np.flatnonzero(expected != ours)
    assert mismatched.size == 0, f"first differing input sample: {int(every[mismatched[0]])}"


@pytest.mark.parametrize(("raw_type", "decode"), [("ul", g711.ulaw_decode), ("al", g711.alaw_decode)])
def test_media_g711_decode_matches_sox_for_every_code(
    tmp_path: Path, raw_type: str, decode: Callable[[np.ndarray], np.ndarray]
) -> None:
    codes = np.arange(256, dtype=np.uint8)
    src = tmp_path / f"codes.{raw_type}"
    src.write_bytes(codes.tobytes())
    out = tmp_path / "decoded.wav"
    _sox("-t", raw_type, "-r", "8000", "-c", "1", str(src), "-b", "16", "-e", "signed", str(out))
    np.testing.assert_array_equal(decode(codes), _read_wav(out))


def test_media_g711_speechlike_roundtrip_matches_sox_file(tmp_path: Path) -> None:
    """A generated tone sweep converted by sox to .ul decodes to what sox decodes it to."""
    t = np.arange(8000) / 8000.0
    sweep = (12000 * np.sin(2 * np.pi * (200 + 1500 * t) * t)).astype(np.int16)
    _write_wav(tmp_path / "sweep.wav", sweep)
    _sox(str(tmp_path / "sweep.wav"), "-t", "ul", str(tmp_path / "s.ul"))
    back = str(tmp_path / "back.wav")
    _sox("-t", "ul", "-r", "8000", "-c", "1", str(tmp_path / "s.ul"), "-b", "16", "-e", "signed", back)
    ulaw = (tmp_path / "s.ul").read_bytes()
    assert g711.ulaw_encode(sweep) == ulaw
    np.testing.assert_array_equal(g711.ulaw_decode(ulaw), _read_wav(tmp_path / "back.wav"))
