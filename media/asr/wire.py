"""The speech service's wire format: one binary message per request or reply.

A message is ``op`` (1 byte), ``stream`` (4 bytes, big-endian) and a payload. Audio travels as
raw 16-bit PCM (``FEED``: many 20 ms frames in one message), never as JSON; the small
structured payloads (an expectation, a result, an error text) are JSON. Decoding checks every
length and names what is wrong (:class:`~config.errors.MediaError`), since a peer process that
died mid-write must not take the reader down with it.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np

from config.errors import MediaError
from media.asr.base import Expectation, FinalResult, PartialResult, WordTiming
from media.frames import FRAME_SAMPLES, Frame

_HEADER = struct.Struct(">BI")
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class Op(IntEnum):
    # requests (call process -> speech worker)
    OPEN = 1
    EXPECT = 2
    FEED = 3
    FLUSH = 4
    RESET = 5
    CLOSE = 6
    CHECK = 7  # at a pause: is the audio so far a complete phrase? (FINAL or INCOMPLETE)
    PREPARE = 8  # early in the silence: decode what was fed, ahead (no reply; 2 x u16 ms)
    # replies (speech worker -> call process)
    PARTIALS = 20
    FINAL = 21
    FAILED = 22
    INCOMPLETE = 23  # CHECK's "no": the utterance goes on


@dataclass(frozen=True, slots=True)
class Message:
    op: Op
    stream: int
    payload: bytes = b""


def encode(op: Op, stream: int, payload: bytes = b"") -> bytes:
    if not 0 <= stream <= 0xFFFFFFFF:
        raise MediaError(f"speech stream id {stream} does not fit 32 bits")
    return _HEADER.pack(op, stream) + payload


def decode(data: bytes) -> Message:
    if len(data) < _HEADER.size:
        raise MediaError(
            f"speech message of {len(data)} bytes is shorter than its {_HEADER.size}-byte header"
        )
    if len(data) > MAX_MESSAGE_BYTES:
        raise MediaError(f"speech message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    op, stream = _HEADER.unpack_from(data)
    try:
        kind = Op(op)
    except ValueError:
        raise MediaError(f"speech message has unknown op {op}") from None
    return Message(kind, stream, data[_HEADER.size :])


# -- payloads ---------------------------------------------------------------------------


def frames_payload(frames: list[Frame]) -> bytes:
    return b"".join(np.asarray(f, dtype="<i2").tobytes() for f in frames)


def payload_frames(payload: bytes) -> list[Frame]:
    size = FRAME_SAMPLES * 2
    if len(payload) % size:
        raise MediaError(f"FEED payload of {len(payload)} bytes is not a whole number of 20 ms frames")
    audio = np.frombuffer(payload, dtype="<i2").astype(np.int16)
    return [audio[i : i + FRAME_SAMPLES] for i in range(0, audio.size, FRAME_SAMPLES)]


def expectation_payload(expectation: Expectation) -> bytes:
    body = {"phrases": list(expectation.phrases), "open_vocabulary": expectation.open_vocabulary}
    return json.dumps(body).encode()


def payload_expectation(payload: bytes) -> Expectation:
    body = _json(payload, "expectation")
    phrases = body.get("phrases", [])
    if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases):
        raise MediaError("expectation payload: phrases must be a list of strings")
    return Expectation(phrases=tuple(phrases), open_vocabulary=bool(body.get("open_vocabulary", True)))


_PREPARE = struct.Struct(">HH")


def prepare_payload(silence_ms: int, pad_ms: int) -> bytes:
    if not (0 <= silence_ms <= 0xFFFF and 0 <= pad_ms <= 0xFFFF):
        raise MediaError(f"speech PREPARE: silence {silence_ms} ms / pad {pad_ms} ms out of 0..65535")
    return _PREPARE.pack(silence_ms, pad_ms)


def payload_prepare(payload: bytes) -> tuple[int, int]:
    """``(silence_ms, pad_ms)`` of a PREPARE request."""
    if len(payload) != _PREPARE.size:
        raise MediaError(f"speech PREPARE payload is {len(payload)} bytes, expected {_PREPARE.size}")
    silence_ms, pad_ms = _PREPARE.unpack(payload)
    return int(silence_ms), int(pad_ms)


def final_payload(result: FinalResult) -> bytes:
    words = [[w.word, w.start_s, w.end_s, w.confidence] for w in result.words]
    body = {
        "text": result.text,
        "confidence": result.confidence,
        "in_grammar": result.in_grammar,
        "words": words,
    }
    return json.dumps(body).encode()


def payload_final(payload: bytes) -> FinalResult:
    body = _json(payload, "final result")
    try:
        words = tuple(
            WordTiming(str(w[0]), float(w[1]), float(w[2]), float(w[3])) for w in body.get("words", [])
        )
        return FinalResult(str(body["text"]), float(body["confidence"]), words, bool(body["in_grammar"]))
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise MediaError(f"final result payload is malformed: {exc}") from None


def partials_payload(results: list[PartialResult | FinalResult]) -> bytes:
    items: list[Any] = []
    for result in results:
        if isinstance(result, FinalResult):
            items.append({"final": json.loads(final_payload(result))})
        else:
            items.append({"partial": result.text})
    return json.dumps(items).encode()


def payload_partials(payload: bytes) -> list[PartialResult | FinalResult]:
    items = _json(payload, "partial results")
    if not isinstance(items, list):
        raise MediaError("partial results payload must be a list")
    out: list[PartialResult | FinalResult] = []
    for item in items:
        if isinstance(item, dict) and "final" in item:
            out.append(payload_final(json.dumps(item["final"]).encode()))
        elif isinstance(item, dict) and isinstance(item.get("partial"), str):
            out.append(PartialResult(item["partial"]))
        else:
            raise MediaError(f"partial results payload has an unknown item {str(item)[:60]!r}")
    return out


def _json(payload: bytes, what: str) -> Any:
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MediaError(f"{what} payload is not JSON: {exc}") from None
