"""Content-addressed store of rendered prompts, so each prompt is synthesized once.

The key is a sha256 over everything that changes the audio (text, voice, rate, engine
version). Files are 8 kHz mono 16-bit WAVs, readable by any audio tool, written to a
temporary name and renamed into place: several processes may render the same prompt at
once and readers only ever see whole files. A small in-memory LRU sits in front so a hot
prompt costs no disk read.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import tempfile
import threading
import wave
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from config.errors import MediaError
from config.logs import log_event
from media.frames import SAMPLE_RATE

_LOG = logging.getLogger("media.tts_cache")
Samples = npt.NDArray[np.int16]
Audio = Samples


def cache_key(*parts: str) -> str:
    """The sha256 hex digest over ``parts`` (engine version, voice, rate, text).

    Parts are joined with a separator that cannot occur in them unescaped, so ("a", "bc") and
    ("ab", "c") never collide.
    """
    material = "\x1f".join(part.replace("\\", "\\\\").replace("\x1f", "\\x1f") for part in parts)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class TtsCache:
    """Rendered prompts under ``directory/<2 hex>/<key>.wav``."""

    def __init__(self, directory: str | Path, memory_bytes: int = 32 * 1024 * 1024) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MediaError(f"tts cache: cannot create {self.directory}: {exc.strerror}") from exc
        self.memory_bytes = memory_bytes
        self._memory: OrderedDict[str, Audio] = OrderedDict()
        self._memory_used = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the cache's machine-wide lock (``fcntl.flock``), e.g. while pre-rendering."""
        with open(self.directory / ".lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.wav"

    def peek(self, key: str) -> Audio | None:
        """The audio if it is in memory, else None: never touches the disk, so the event loop
        may call it (a prompt that is already loaded goes on the line without a thread hop)."""
        with self._lock:
            audio = self._memory.get(key)
            if audio is None:
                return None
            self._memory.move_to_end(key)
            self.hits += 1
            return audio

    def get(self, key: str) -> Audio | None:
        """The cached audio (read-only array), or None when absent or unreadable."""
        with self._lock:
            audio = self._memory.get(key)
            if audio is not None:
                self._memory.move_to_end(key)
                self.hits += 1
                return audio
        path = self.path(key)
        try:
            audio = _read_wav(path)
        except FileNotFoundError:
            self.misses += 1
            return None
        except (OSError, EOFError, wave.Error, ValueError) as exc:
            # A damaged entry is a miss: the prompt is rendered again and the file replaced.
            log_event("tts.cache.unreadable", logging.WARNING, _LOG, path=str(path), error=str(exc))
            self.misses += 1
            return None
        self._remember(key, audio)
        self.hits += 1
        return audio

    def put(self, key: str, audio: Audio) -> Audio:
        """Store ``audio`` atomically and return it read-only.

        Concurrent writers of one key (threads or processes) each write a private temporary
        file and rename it into place; the last rename wins and every reader sees a whole file.
        """
        if audio.dtype != np.int16 or audio.ndim != 1:
            raise MediaError(
                f"tts cache: audio must be 1-D int16, got shape {audio.shape} dtype {audio.dtype}"
            )
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{key[:8]}-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                with wave.open(handle, "wb") as out:
                    out.setnchannels(1)
                    out.setsampwidth(2)
                    out.setframerate(SAMPLE_RATE)
                    out.writeframes(audio.astype("<i2").tobytes())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
        frozen = audio.copy()
        frozen.setflags(write=False)
        self._remember(key, frozen)
        return frozen

    def _remember(self, key: str, audio: Audio) -> None:
        if audio.nbytes > self.memory_bytes:
            return
        with self._lock:
            if key in self._memory:
                return
            self._memory[key] = audio
            self._memory_used += audio.nbytes
            while self._memory_used > self.memory_bytes:
                _, old = self._memory.popitem(last=False)
                self._memory_used -= old.nbytes


def _read_wav(path: Path) -> Audio:
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2 or wav.getframerate() != SAMPLE_RATE:
            raise ValueError(
                f"expected mono 16-bit {SAMPLE_RATE} Hz, got {wav.getnchannels()} ch "
                f"{8 * wav.getsampwidth()} bit {wav.getframerate()} Hz"
            )
        frames = wav.getnframes()
        data = wav.readframes(frames)
    if len(data) != 2 * frames or frames == 0:
        raise ValueError(f"truncated: header says {frames} samples, file holds {len(data) // 2}")
    audio = np.frombuffer(data, dtype="<i2").astype(np.int16)
    audio.setflags(write=False)
    return audio
