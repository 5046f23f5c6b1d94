"""A call's media bridge kept in C++: Python never runs on pjmedia's clock thread.

With the vendored pjsua2 (patch ``0003-native-ring-media-port``) a call's conference port is a
``RingMediaPort``: every 20 ms tick the clock thread appends the frame it sent ("bot", with its
prompt tag) and the frame it received ("caller") to a lock-free ring in C++, and takes the next
frame to send from a play queue, without taking the GIL. The call task reads and writes the ring
in bulk through the ``ivr_ring_*`` C functions (ctypes, which releases the GIL while they copy),
and wakes on the ring's eventfd instead of polling. Whatever the asyncio loop does, RTP goes out
on time.

:class:`NativeBridge` is a :class:`~ivr.media_bridge.MediaBridge` to everything that uses one
(same methods, same records); the PyPI wheel lacks the port, and there :func:`new_bridge` returns
the pure-Python bridge driven by :class:`~ivr.bridge_port.BridgePort`.

Lifetime: the ring is reference-counted in C++. The bridge holds one reference until it is
garbage-collected, the port another until the conference bridge has let go of it, so neither
side can touch freed memory whatever order the call's teardown takes.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import os
import sys
import threading
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt
import pjsua2 as pj

from ivr.media_bridge import BridgeRecord, MediaBridge
from media.frames import FRAME_BYTES, FRAME_SAMPLES, SILENCE, Frame

INBOX_RECORDS = 1000
"""Records the clock thread may queue for the call task: 10 s of a stalled loop (two per tick);
newer records are dropped and counted beyond. With the play queue, about 0.4 MB a call."""
PLAY_FRAMES = 250
"""Frames queued natively for the caller (5 s); longer prompts wait in Python, and every drain
(each media tick) tops the native queue up."""
_DRAIN_BATCH = 256

_SIDE_BOT = 1
_FLAG_PCM = 1
_FLAG_LAST = 2
_MAX_TAG = 2**31 - 1

RECORD = np.dtype(
    [
        ("side", "u1"),
        ("flags", "u1"),
        ("reserved", "<u2"),
        ("tag", "<i4"),
        ("pcm", "<i2", (FRAME_SAMPLES,)),
    ]
)
"""One ring record, as ``IvrRecordHeader`` + PCM in the patch's media.cpp."""

_Records = npt.NDArray[np.void]


class _RingLib:
    """The ``ivr_ring_*`` functions of the loaded ``_pjsua2`` extension, typed for ctypes."""

    def __init__(self, path: str) -> None:
        lib = ctypes.CDLL(path)
        vp, u32 = ctypes.c_void_p, ctypes.c_uint
        self.new = _fn(lib.ivr_ring_new, vp, [u32, u32, u32])
        self.unref = _fn(lib.ivr_ring_unref, None, [vp])
        self.eventfd = _fn(lib.ivr_ring_eventfd, ctypes.c_int, [vp])
        self.record_bytes = _fn(lib.ivr_ring_record_bytes, u32, [vp])
        self.drain = _fn(lib.ivr_ring_drain, u32, [vp, vp, u32])
        self.play = _fn(lib.ivr_ring_play, u32, [vp, vp, u32])
        self.flush = _fn(lib.ivr_ring_flush, None, [vp])
        self.backlog = _fn(lib.ivr_ring_backlog, u32, [vp])
        self.close = _fn(lib.ivr_ring_close, None, [vp])
        self.stats = _fn(lib.ivr_ring_stats, None, [vp, ctypes.POINTER(ctypes.c_uint64), u32])


def _fn(function: Any, restype: Any, argtypes: list[Any]) -> Any:
    function.restype = restype
    function.argtypes = argtypes
    return function


@cache
def ring_lib() -> _RingLib | None:
    """The ring functions, or None when the installed pjsua2 has no ``RingMediaPort``."""
    if not hasattr(pj, "RingMediaPort"):
        return None
    extension = sys.modules.get("_pjsua2") or getattr(pj, "_pjsua2", None)
    path = getattr(extension, "__file__", None)
    if not path:
        return None
    try:
        lib = _RingLib(path)
    except (OSError, AttributeError):
        return None
    probe = lib.new(FRAME_BYTES, 1, 1)
    if not probe:
        return None
    try:
        if lib.record_bytes(probe) != RECORD.itemsize:
            return None
    finally:
        lib.unref(probe)
    return lib


def native_available() -> bool:
    return ring_lib() is not None


def new_bridge(native: bool) -> MediaBridge:
    """A call's bridge: the C++ ring when asked for and available, else the Python deques."""
    lib = ring_lib() if native else None
    return NativeBridge(lib) if lib is not None else MediaBridge()


class NativeBridge(MediaBridge):
    """Both directions of one call's audio in a C++ ring; see the module docstring.

    Call task side (play, relay, drain, stop_playback, backlog) from one thread; :meth:`close`
    from any thread.
    """

    def __init__(self, lib: _RingLib, inbox_records: int = INBOX_RECORDS) -> None:
        super().__init__()
        ring = lib.new(FRAME_BYTES, inbox_records, PLAY_FRAMES)
        if not ring:
            raise MemoryError("cannot allocate the native media ring of a call")
        self._lib = lib
        self.ring: int = ring
        self._out = np.zeros(_DRAIN_BATCH, dtype=RECORD)
        self._waiting: collections.deque[_Records] = collections.deque()
        self._waiting_frames = 0
        # close() may come from the pjsua2 thread while the call task is inside a ctypes call
        # (which releases the GIL) moving frames from _waiting: both hold this lock.
        self._waiting_lock = threading.Lock()

    def __del__(self) -> None:
        ring, self.ring = getattr(self, "ring", 0), 0
        if ring:
            with contextlib.suppress(Exception):  # at interpreter exit ctypes may be gone
                self._lib.unref(ring)

    @property
    def wake_fd(self) -> int | None:
        """Readable when frames arrived since the last :meth:`drain` (an eventfd)."""
        fd = int(self._lib.eventfd(self.ring))
        return fd if fd >= 0 else None

    # -- the media side is C++: these exist for the MediaBridge interface and tests -----------
    def put_caller_frame(self, pcm: bytes | None) -> None:
        raise TypeError("a NativeBridge is fed by its RingMediaPort, not from Python")

    def take_bot_frame(self) -> bytes:
        raise TypeError("a NativeBridge is fed by its RingMediaPort, not from Python")

    # -- call task side -------------------------------------------------------------------
    def drain(self) -> list[BridgeRecord]:
        return self.drain_frames()[0]

    def drain_frames(self) -> tuple[list[BridgeRecord], list[Frame]]:
        """Everything that crossed since the last call, and each record's frame decoded."""
        self._top_up()
        chunks: list[_Records] = []
        while True:
            count = int(self._lib.drain(self.ring, self._out.ctypes.data, _DRAIN_BATCH))
            if count:
                chunks.append(self._out[:count].copy())
            if count < _DRAIN_BATCH:
                break
        if not chunks:
            return [], []
        records = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
        return _decode(records)

    def play(self, prompt_id: int, frames: list[bytes], final: bool = True) -> None:
        if not 0 <= prompt_id <= _MAX_TAG:
            raise ValueError(f"prompt id {prompt_id} is outside 0..{_MAX_TAG}")
        for index, pcm in enumerate(frames):
            if len(pcm) != FRAME_BYTES:
                raise ValueError(
                    f"prompt {prompt_id} frame {index} has {len(pcm)} bytes, expected {FRAME_BYTES}"
                )
        if not frames or self._closed:
            return
        batch = np.zeros(len(frames), dtype=RECORD)
        batch["tag"] = prompt_id
        batch["flags"] = _FLAG_PCM
        if final:
            batch["flags"][-1] |= _FLAG_LAST
        batch["pcm"] = np.frombuffer(b"".join(frames), dtype="<i2").reshape(len(frames), FRAME_SAMPLES)
        self._queue(batch)

    def relay(self, pcm: bytes) -> None:
        if len(pcm) != FRAME_BYTES:
            pcm = (pcm + bytes(FRAME_BYTES))[:FRAME_BYTES]
        if self._closed:
            return
        batch = np.zeros(1, dtype=RECORD)
        batch["tag"] = -1
        batch["flags"] = _FLAG_PCM
        batch["pcm"][0] = np.frombuffer(pcm, dtype="<i2")
        self._queue(batch)

    def _queue(self, batch: _Records) -> None:
        with self._waiting_lock:
            if self._closed:
                return
            self._waiting.append(batch)
            self._waiting_frames += len(batch)
        self._top_up()

    def _top_up(self) -> None:
        """Move frames waiting in Python into the native play queue while it has room."""
        with self._waiting_lock:
            while self._waiting and not self._closed:
                batch = self._waiting[0]
                taken = int(self._lib.play(self.ring, batch.ctypes.data, len(batch)))
                self._waiting_frames -= taken
                if taken < len(batch):
                    if taken:
                        self._waiting[0] = batch[taken:].copy()
                    return
                self._waiting.popleft()

    @property
    def backlog(self) -> int:
        if self._closed:
            return 0
        return self._waiting_frames + int(self._lib.backlog(self.ring))

    @property
    def playing(self) -> bool:
        return self.backlog > 0

    def stop_playback(self) -> None:
        with self._waiting_lock:
            self._waiting.clear()
            self._waiting_frames = 0
        self._lib.flush(self.ring)
        self.stops += 1

    def close(self) -> None:
        with self._waiting_lock:
            self._closed = True
            self._waiting.clear()
            self._waiting_frames = 0
        self._lib.close(self.ring)

    def stats(self) -> dict[str, int]:
        """Clock ticks seen, records dropped because the call task fell 30 s behind, and
        records waiting to be drained."""
        out = (ctypes.c_uint64 * 3)()
        self._lib.stats(self.ring, out, 3)
        return {"ticks": int(out[0]), "dropped": int(out[1]), "waiting": int(out[2])}


def _decode(records: _Records) -> tuple[list[BridgeRecord], list[Frame]]:
    """BridgeRecords and frames for a batch of ring records: one bulk copy, no per-frame numpy."""
    pcm_rows = np.ascontiguousarray(records["pcm"])
    blob = pcm_rows.tobytes()
    sides = records["side"].tolist()
    flags = records["flags"].tolist()
    tags = records["tag"].tolist()
    out: list[BridgeRecord] = []
    frames: list[Frame] = []
    for index, (side, flag, tag) in enumerate(zip(sides, flags, tags, strict=True)):
        has_pcm = bool(flag & _FLAG_PCM)
        pcm = blob[index * FRAME_BYTES : (index + 1) * FRAME_BYTES] if has_pcm else None
        out.append(
            BridgeRecord(
                "bot" if side == _SIDE_BOT else "caller",
                pcm,
                tag if tag >= 0 else None,
                bool(flag & _FLAG_LAST),
            )
        )
        frames.append(pcm_rows[index] if has_pcm else SILENCE)
    return out, frames


def read_wake_fd(fd: int) -> None:
    """Reset an eventfd after it became readable (nothing to read is fine)."""
    with contextlib.suppress(BlockingIOError, InterruptedError):
        os.read(fd, 8)
