"""Hand-off of 20 ms frames between the pjsua2 media clock thread and the asyncio call task.

The media thread must never block or wait for Python work: it only appends to and pops from
``collections.deque`` objects (atomic in CPython). Every media tick produces one ``bot`` record
(the frame we sent) and, when RTP arrived, one ``caller`` record; the call task drains them
every few milliseconds and hands them to the recorder and the media pipeline.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Literal

import numpy as np

from media.frames import FRAME_BYTES, FRAME_SAMPLES, SILENCE, Frame

_SILENCE_BYTES = bytes(FRAME_BYTES)
# One minute of records; if the call task stalls longer, the oldest are dropped (and counted).
_INBOX_LIMIT = 3000


@dataclass(frozen=True, slots=True)
class BridgeRecord:
    """One frame that crossed the bridge.

    ``prompt_id`` names the prompt a bot frame belongs to (None for silence), and
    ``last_of_prompt`` marks its final frame so the call knows when the prompt finished.
    """

    side: Literal["caller", "bot"]
    pcm: bytes | None
    prompt_id: int | None = None
    last_of_prompt: bool = False


class MediaBridge:
    """Both directions of one call's audio, safe to use from two threads without locks."""

    def __init__(self) -> None:
        self._inbox: collections.deque[BridgeRecord] = collections.deque(maxlen=_INBOX_LIMIT)
        self._playback: collections.deque[tuple[int | None, bytes, bool]] = collections.deque()
        self._closed = False
        self.ticks = 0
        self.dropped = 0
        self.stops = 0
        """Times playback was stopped: a prompt still being rendered piece by piece stops too."""

    # -- media thread side ------------------------------------------------------------
    def put_caller_frame(self, pcm: bytes | None) -> None:
        """A frame from the caller (None: no RTP arrived in this tick)."""
        if self._closed:
            return
        if pcm is not None and len(pcm) != FRAME_BYTES:
            pcm = (pcm + _SILENCE_BYTES)[:FRAME_BYTES]
        self._append(BridgeRecord("caller", pcm))

    def take_bot_frame(self) -> bytes:
        """The next frame to send to the caller: the playing prompt, else silence."""
        self.ticks += 1
        if self._closed:
            return _SILENCE_BYTES
        try:
            prompt_id, pcm, last = self._playback.popleft()
        except IndexError:
            self._append(BridgeRecord("bot", None))
            return _SILENCE_BYTES
        self._append(BridgeRecord("bot", pcm, prompt_id, last))
        return pcm

    def _append(self, record: BridgeRecord) -> None:
        if len(self._inbox) == _INBOX_LIMIT:
            self.dropped += 1
        self._inbox.append(record)

    # -- asyncio side -----------------------------------------------------------------
    @property
    def wake_fd(self) -> int | None:
        """A file descriptor readable when frames arrive, or None: poll every tick instead."""
        return None

    def drain(self) -> list[BridgeRecord]:
        """Everything that crossed since the last call, in order."""
        out: list[BridgeRecord] = []
        while True:
            try:
                out.append(self._inbox.popleft())
            except IndexError:
                return out

    def drain_frames(self) -> tuple[list[BridgeRecord], list[Frame]]:
        """:meth:`drain`, and each record's frame decoded (silence where none arrived), all
        audio converted in one numpy call."""
        records = self.drain()
        if not records:
            return [], []
        audio = [record.pcm for record in records if record.pcm is not None]
        rows = np.frombuffer(b"".join(audio), dtype="<i2").astype(np.int16).reshape(len(audio), FRAME_SAMPLES)
        frames: list[Frame] = []
        row = 0
        for record in records:
            if record.pcm is None:
                frames.append(SILENCE)
            else:
                frames.append(rows[row])
                row += 1
        return records, frames

    def play(self, prompt_id: int, frames: list[bytes], final: bool = True) -> None:
        """Queue a prompt (or, with ``final`` False, a piece of one with more to come) behind
        whatever is playing; the last frame of the final piece ends the prompt."""
        for index, pcm in enumerate(frames):
            if len(pcm) != FRAME_BYTES:
                raise ValueError(
                    f"prompt {prompt_id} frame {index} has {len(pcm)} bytes, expected {FRAME_BYTES}"
                )
            self._playback.append((prompt_id, pcm, final and index == len(frames) - 1))

    def relay(self, pcm: bytes) -> None:
        """Queue one frame of live audio (the other leg of a bridged transfer, ringback).

        Relayed frames belong to no prompt, so nothing waits for them to finish.
        """
        if len(pcm) != FRAME_BYTES:
            pcm = (pcm + _SILENCE_BYTES)[:FRAME_BYTES]
        self._playback.append((None, pcm, False))

    @property
    def backlog(self) -> int:
        """Frames queued for the caller and not yet sent (20 ms each)."""
        return len(self._playback)

    def stop_playback(self) -> None:
        """Barge-in or hang-up: drop every queued prompt frame at once."""
        self._playback.clear()
        self.stops += 1

    @property
    def playing(self) -> bool:
        return bool(self._playback)

    def close(self) -> None:
        self._closed = True
        self._playback.clear()
