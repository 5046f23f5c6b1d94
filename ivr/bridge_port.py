"""The conference port that joins one call's slot to its :class:`MediaBridge`.

With the vendored pjsua2 it is the C++ ``RingMediaPort`` of a
:class:`~ivr.native_bridge.NativeBridge`. With the PyPI wheel (or ``media.native_bridge``
off) it is :class:`BridgePort`, a Python AudioMediaPort: pjsua2 calls it on the media clock
thread every 20 ms: it must only touch the bridge's lock-free deques and never wait for Python
work, and it must never raise (a Python exception in a SWIG director becomes a C++ exception on
the clock thread, which aborts the process).

Release is the dangerous moment. If the last Python reference simply goes away, CPython tears
the instance's ``__dict__`` down while SWIG's destructor (which releases the GIL) waits for the
clock thread, and the clock thread then calls back into a half-destroyed object: the
``'BridgePort' object has no attribute 'bridge'`` error and the segfault that followed it.
:func:`release_bridge_port` instead destroys the C++ port explicitly while the Python object is
whole; the destructor takes the port's group lock and detaches it, so no callback can follow.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import pjsua2 as pj

from ivr.media_bridge import MediaBridge
from ivr.native_bridge import NativeBridge
from media.frames import FRAME_BYTES, FRAME_MS, SAMPLE_RATE


def _vector_bytes_slow(vector: Any, size: int) -> bytes:
    return bytes(vector[0:size])


def _vector_bytes_fast(vector: Any, size: int) -> bytes:
    # A SWIG ByteVector wraps std::vector<unsigned char>; with libstdc++ its first word is the
    # data pointer. Reading it directly costs ~2 us per frame instead of ~230 us of iteration.
    begin = ctypes.cast(int(vector.this), ctypes.POINTER(ctypes.c_void_p))[0]
    return ctypes.string_at(begin, size) if begin else b""


def _pick_vector_reader() -> Callable[[Any, int], bytes]:
    probe = bytes(range(256)) + bytes(FRAME_BYTES - 256)
    try:
        if _vector_bytes_fast(pj.ByteVector(probe), len(probe)) == probe:
            return _vector_bytes_fast
    except (TypeError, ValueError, AttributeError, OSError):
        pass
    return _vector_bytes_slow


_vector_bytes = _pick_vector_reader()


_SILENCE = bytes(FRAME_BYTES)


class BridgePort(pj.AudioMediaPort):  # type: ignore[misc]
    """Conference-bridge port: caller audio in, bot audio out, both via the MediaBridge."""

    # A class-level default: even an instance being torn down reads None here, never raises.
    bridge: MediaBridge | None = None
    errors = 0

    def __init__(self, bridge: MediaBridge) -> None:
        super().__init__()
        self.bridge = bridge

    def onFrameReceived(self, frame: Any) -> None:
        try:
            bridge = self.bridge
            if bridge is not None:
                size = int(frame.size)
                bridge.put_caller_frame(_vector_bytes(frame.buf, size) if size else None)
        except Exception:  # never into the clock thread; counted, since logging here could block
            self.errors += 1

    def onFrameRequested(self, frame: Any) -> None:
        try:
            bridge = self.bridge
            pcm = bridge.take_bot_frame() if bridge is not None else _SILENCE
            frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
            frame.buf = pj.ByteVector(pcm)
            frame.size = FRAME_BYTES
        except Exception:
            self.errors += 1


def create_bridge_port(name: str, bridge: MediaBridge) -> Any:
    """A registered 8 kHz mono 16-bit port for ``bridge``; keep a reference while the call lives.

    A :class:`~ivr.native_bridge.NativeBridge` gets the C++ ``RingMediaPort`` on its ring (no
    Python on the clock thread); a plain :class:`MediaBridge` gets a :class:`BridgePort`.
    """
    fmt = pj.MediaFormatAudio()
    fmt.init(pj.PJMEDIA_FORMAT_PCM, SAMPLE_RATE, 1, FRAME_MS * 1000, 16)
    if isinstance(bridge, NativeBridge):
        ring_port = pj.RingMediaPort()
        ring_port.createRingPort(name, fmt, bridge.ring)
        return ring_port
    port = BridgePort(bridge)
    port.createPort(name, fmt)
    return port


def release_bridge_port(port: Any) -> None:
    """Detach ``port`` from the conference and destroy its C++ side now (pjsua2 thread only).

    Callers keep their reference until this returns; afterwards the Python object is inert
    and may be dropped at any time, on any thread.
    """
    if isinstance(port, BridgePort):
        port.bridge = None
        # SWIG's delete wrapper disowns the object (no second delete at garbage collection) and
        # releases the GIL while ~AudioMediaPort waits for a clock tick that may be calling us.
        pj.AudioMediaPort.__swig_destroy__(port)
    else:
        # A RingMediaPort: its frame callbacks never enter Python, and the ring outlives the
        # port until the conference has let go of it (see ivr.native_bridge).
        type(port).__swig_destroy__(port)
