"""Puts the caller and bot sides of a call on one timeline, frame by frame.

The media thread hands over, every 20 ms, the frame it received from the caller and the frame
the bot sent; by the time they reach the recorder either side may be missing, late or bunched
up. The aligner keeps one queue per side and a cursor (frames accepted so far, silence
included) for each:

* a caller frame and a bot frame are paired as soon as both are queued;
* a side whose cursor runs more than ``max_lead`` frames ahead of the other has the other side
  padded with silence, so a side that sends nothing is recorded as silence and a side that
  comes back is placed at "now", not where it left off;
* ``advance(position)`` (optional) tells it how many frames of wall-clock time the call has
  lasted; a side more than ``clock_slack`` frames behind that is padded too, so a stall on
  both sides still shows up as silence of the right length;
* ``finish`` pads the shorter side so both channels end together.

While paused, frames still advance the timeline but are replaced by silence on both sides.
Pure logic: no clock, no files.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from config.errors import MediaError
from media.frames import FRAME_SAMPLES, SILENCE, Frame

Side = Literal["caller", "bot"]
SIDES: tuple[Side, Side] = ("caller", "bot")


@dataclass(frozen=True)
class PauseSpan:
    """Frames ``[start_frame, end_frame)`` were muted; ``end_frame`` is None while still paused."""

    start_frame: int
    end_frame: int | None


class TrackAligner:
    """Pairs caller and bot frames into stereo audio (left = caller, right = bot)."""

    def __init__(self, max_lead: int = 3, clock_slack: int = 10) -> None:
        if max_lead < 0 or clock_slack < 0:
            raise ValueError("max_lead and clock_slack must be >= 0 frames")
        self.max_lead = max_lead
        self.clock_slack = clock_slack
        self._queues: dict[Side, deque[Frame]] = {side: deque() for side in SIDES}
        self._cursor: dict[Side, int] = dict.fromkeys(SIDES, 0)
        self._ready: list[tuple[Frame, Frame]] = []
        self._emitted = 0
        self._paused_at: int | None = None
        self._pauses: list[PauseSpan] = []
        self._finished = False

    @property
    def emitted_frames(self) -> int:
        """Stereo frames handed out by :meth:`pull` or :meth:`finish` so far."""
        return self._emitted

    @property
    def position(self) -> int:
        """The timeline position in frames: the cursor of the side furthest ahead."""
        return max(self._cursor.values())

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    @property
    def pauses(self) -> tuple[PauseSpan, ...]:
        spans = list(self._pauses)
        if self._paused_at is not None:
            spans.append(PauseSpan(self._paused_at, None))
        return tuple(spans)

    def push_caller(self, frame: Frame) -> None:
        self.push("caller", frame)

    def push_bot(self, frame: Frame) -> None:
        self.push("bot", frame)

    def push(self, side: Side, frame: Frame) -> None:
        """Queue one 20 ms frame of ``side``; pairs and pads as the rules above say."""
        if self._finished:
            raise MediaError(f"{side} frame pushed after the recording was finished")
        if side not in self._queues:
            raise MediaError(f"unknown recording side {side!r}; expected caller or bot")
        if frame.dtype != np.int16 or frame.shape != (FRAME_SAMPLES,):
            raise MediaError(
                f"{side} frame must be {FRAME_SAMPLES} int16 samples, got shape {frame.shape} {frame.dtype}"
            )
        self._append(side, SILENCE if self._paused_at is not None else frame)
        self._pad_to(self.position - self.max_lead)
        self._pair()

    def advance(self, position: int) -> None:
        """The call has lasted ``position`` frames by the clock; pad any side lagging past the slack."""
        if not self._finished:
            self._pad_to(position - self.clock_slack)
            self._pair()

    def pause(self) -> None:
        """Mute both sides from the current position until :meth:`resume`."""
        if self._paused_at is None:
            self._paused_at = self.position

    def resume(self) -> None:
        if self._paused_at is not None:
            self._pauses.append(PauseSpan(self._paused_at, self.position))
            self._paused_at = None

    def pull(self) -> npt.NDArray[np.int16]:
        """Stereo samples paired so far, shaped ``(n * 160, 2)``; empty if none are ready."""
        pairs, self._ready = self._ready, []
        self._emitted += len(pairs)
        return _interleave(pairs)

    def finish(self, min_frames: int = 0) -> npt.NDArray[np.int16]:
        """Pad both sides to the same length (and to at least ``min_frames``); return the rest."""
        if not self._finished:
            self.resume()
            self._pad_to(max(self.position, min_frames))
            self._pair()
            self._finished = True
        return self.pull()

    def _append(self, side: Side, frame: Frame) -> None:
        self._queues[side].append(frame)
        self._cursor[side] += 1

    def _pad_to(self, target: int) -> None:
        for side in SIDES:
            for _ in range(target - self._cursor[side]):
                self._append(side, SILENCE)

    def _pair(self) -> None:
        caller, bot = self._queues["caller"], self._queues["bot"]
        while caller and bot:
            self._ready.append((caller.popleft(), bot.popleft()))


def _interleave(pairs: list[tuple[Frame, Frame]]) -> npt.NDArray[np.int16]:
    out = np.empty((len(pairs) * FRAME_SAMPLES, 2), dtype=np.int16)
    if pairs:
        out[:, 0] = np.concatenate([left for left, _ in pairs])
        out[:, 1] = np.concatenate([right for _, right in pairs])
    return out
