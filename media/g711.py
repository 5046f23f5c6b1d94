"""G.711 µ-law (PCMU) and A-law (PCMA) with numpy lookup tables.

``audioop`` is gone in Python 3.13, so the codec is table-based: a 65536-entry encode table
indexed by the int16 sample and a 256-entry decode table. The tables are built once at import
from the reference (Sun/CCITT) algorithm that sox also uses, so results are bit-exact with
``sox -D`` (no dither): µ-law encodes the sample rounded to 14 bits, A-law to 13 bits.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from config.errors import MediaError
from media.frames import Frame

_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159  # in 14-bit units
_ULAW_SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_ALAW_SEG_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)


def _build_ulaw_encode() -> npt.NDArray[np.uint8]:
    # Round to 14 bits as sox does (not truncate), saturating at the top.
    pcm = np.minimum((np.arange(-32768, 32768, dtype=np.int32) + 2) >> 2, 0x1FFF)
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(pcm), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = np.searchsorted(_ULAW_SEG_END, mag, side="left")
    mantissa = (mag >> (np.minimum(seg, 7) + 1)) & 0x0F
    code = np.where(seg >= 8, 0x7F, (seg << 4) | mantissa)
    table = (code ^ mask).astype(np.uint8)
    # Index by the int16 bit pattern viewed as uint16, so encode is one take().
    return np.roll(table, -32768)


def _build_alaw_encode() -> npt.NDArray[np.uint8]:
    pcm = np.minimum((np.arange(-32768, 32768, dtype=np.int32) + 4) >> 3, 0xFFF)  # rounded to 13 bits
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    mag = np.where(pcm >= 0, pcm, -pcm - 1)
    seg = np.searchsorted(_ALAW_SEG_END, mag, side="left")
    shift = np.where(seg < 2, 1, np.minimum(seg, 7))
    code = np.where(seg >= 8, 0x7F, (seg << 4) | ((mag >> shift) & 0x0F))
    table = (code ^ mask).astype(np.uint8)
    return np.roll(table, -32768)


def _build_ulaw_decode() -> npt.NDArray[np.int16]:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + _ULAW_BIAS) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(np.int16)


def _build_alaw_decode() -> npt.NDArray[np.int16]:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    return np.where(a & 0x80, t, -t).astype(np.int16)


_ULAW_ENC = _build_ulaw_encode()
_ALAW_ENC = _build_alaw_encode()
_ULAW_DEC = _build_ulaw_decode()
_ALAW_DEC = _build_alaw_decode()
for _table in (_ULAW_ENC, _ALAW_ENC, _ULAW_DEC, _ALAW_DEC):
    _table.setflags(write=False)

CODECS = ("PCMU", "PCMA")
"""SDP names of the codecs this module implements, as listed in ``SipSettings.codecs``."""


def _as_int16(samples: npt.ArrayLike) -> npt.NDArray[np.int16]:
    array = np.asarray(samples)
    if array.dtype != np.int16:
        raise MediaError(f"G.711 encoder expects int16 samples, got dtype {array.dtype}")
    return array


def _as_codes(data: bytes | bytearray | memoryview | npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise MediaError(f"G.711 decoder expects bytes or uint8 codes, got dtype {data.dtype}")
        return data
    return np.frombuffer(data, dtype=np.uint8)


def ulaw_encode(samples: npt.ArrayLike) -> bytes:
    """int16 samples to µ-law bytes (one byte per sample)."""
    pcm = _as_int16(samples)
    return _ULAW_ENC[pcm.view(np.uint16)].tobytes()


def alaw_encode(samples: npt.ArrayLike) -> bytes:
    """int16 samples to A-law bytes (one byte per sample)."""
    pcm = _as_int16(samples)
    return _ALAW_ENC[pcm.view(np.uint16)].tobytes()


def ulaw_decode(data: bytes | bytearray | memoryview | npt.NDArray[np.uint8]) -> Frame:
    """µ-law bytes to int16 samples (a new writable array)."""
    return _ULAW_DEC[_as_codes(data)]


def alaw_decode(data: bytes | bytearray | memoryview | npt.NDArray[np.uint8]) -> Frame:
    """A-law bytes to int16 samples (a new writable array)."""
    return _ALAW_DEC[_as_codes(data)]


def encode(codec: str, samples: npt.ArrayLike) -> bytes:
    """Encode with the codec named as in SDP (``PCMU`` or ``PCMA``)."""
    if codec == "PCMU":
        return ulaw_encode(samples)
    if codec == "PCMA":
        return alaw_encode(samples)
    raise MediaError(f"unknown G.711 codec {codec!r}: expected one of {', '.join(CODECS)}")


def decode(codec: str, data: bytes | bytearray | memoryview | npt.NDArray[np.uint8]) -> Frame:
    """Decode with the codec named as in SDP (``PCMU`` or ``PCMA``)."""
    if codec == "PCMU":
        return ulaw_decode(data)
    if codec == "PCMA":
        return alaw_decode(data)
    raise MediaError(f"unknown G.711 codec {codec!r}: expected one of {', '.join(CODECS)}")
