from __future__ import annotations

import numpy as np
import pytest

from config.errors import MediaError
from media import g711


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_media_g711_roundtrip_error_is_within_one_quantization_step(codec: str) -> None:
    x = np.arange(-32768, 32768, 7, dtype=np.int16)
    back = g711.decode(codec, g711.encode(codec, x)).astype(np.int32)
    err = np.abs(back - x.astype(np.int32))
    # Logarithmic quantization: the step grows with the magnitude, up to 1024 (µ) or 1024 (A)
    # in the top segment; relative error stays under ~3.2 % above the lowest segments.
    big = np.abs(x.astype(np.int32)) > 1024
    assert np.all(err[big] / np.abs(x.astype(np.int32))[big] < 0.035)
    assert err.max() <= 1024 + 644  # saturation beyond the codec's top value


def test_media_g711_decode_then_encode_is_identity_on_codes() -> None:
    codes = np.arange(256, dtype=np.uint8)
    # µ-law code 0x7F (negative zero) encodes back as 0xFF (positive zero): both decode to 0.
    ulaw = np.frombuffer(g711.ulaw_encode(g711.ulaw_decode(codes)), dtype=np.uint8)
    assert np.count_nonzero(ulaw != codes) == 1
    assert g711.ulaw_decode(bytes([0x7F]))[0] == g711.ulaw_decode(bytes([0xFF]))[0] == 0
    alaw = np.frombuffer(g711.alaw_encode(g711.alaw_decode(codes)), dtype=np.uint8)
    np.testing.assert_array_equal(alaw, codes)


def test_media_g711_silence_codes() -> None:
    zeros = np.zeros(4, dtype=np.int16)
    assert g711.ulaw_encode(zeros) == b"\xff" * 4
    assert g711.alaw_encode(zeros) == b"\xd5" * 4


def test_media_g711_rejects_wrong_dtype_and_unknown_codec() -> None:
    with pytest.raises(MediaError, match="int16"):
        g711.ulaw_encode(np.zeros(3, dtype=np.float32))
    with pytest.raises(MediaError, match="uint8"):
        g711.alaw_decode(np.zeros(3, dtype=np.int16))
    with pytest.raises(MediaError, match="G722"):
        g711.encode("G722", np.zeros(3, dtype=np.int16))


def test_media_g711_empty_input() -> None:
    assert g711.ulaw_encode(np.zeros(0, dtype=np.int16)) == b""
    assert g711.alaw_decode(b"").size == 0
