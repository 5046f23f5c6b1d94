"""Which prompt is on the line: the bookkeeping between ``Play`` actions and media ticks.

Pure: fed the bot frames that actually left (from the media bridge, with their position on
the call's clock) and barge-ins, it says when each prompt started and finished, so the flow
gets exactly one ``PromptFinished`` per ``Play`` and the transcript gets the bot's turn times.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field


@dataclass
class Prompt:
    id: int
    text: str
    barge_in: bool
    frames: int
    step: str = ""
    start_s: float | None = None
    end_s: float | None = None
    interrupted: bool = False
    latency: dict[str, float] | None = None
    """When this prompt replies to speech: the reply's delay marks (see ``recordings.sidecar``)."""


@dataclass(frozen=True)
class PromptStarted:
    prompt: Prompt


@dataclass(frozen=True)
class PromptEnded:
    prompt: Prompt


PromptEvent = PromptStarted | PromptEnded


@dataclass
class PromptQueue:
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _queue: deque[Prompt] = field(default_factory=deque)

    def add(
        self, text: str, barge_in: bool, frames: int, step: str = "", prompt_id: int | None = None
    ) -> Prompt:
        """Queue a prompt; ``prompt_id`` when the caller numbered it already (else the next number)."""
        prompt = Prompt(next(self._ids) if prompt_id is None else prompt_id, text, barge_in, frames, step)
        self._queue.append(prompt)
        return prompt

    @property
    def busy(self) -> bool:
        """A prompt is playing or waiting to play."""
        return bool(self._queue)

    @property
    def current(self) -> Prompt | None:
        return self._queue[0] if self._queue else None

    def frame_sent(self, prompt_id: int | None, last: bool, position_s: float) -> list[PromptEvent]:
        """A bot frame left at ``position_s`` (its start); ``prompt_id`` None means silence."""
        events: list[PromptEvent] = []
        while self._queue and prompt_id is not None and self._queue[0].id != prompt_id:
            # A prompt with no frames (empty audio) never shows up on the wire: finish it.
            skipped = self._queue.popleft()
            skipped.start_s = skipped.end_s = position_s
            events += [PromptStarted(skipped), PromptEnded(skipped)]
        head = self.current
        if head is None or prompt_id is None:
            return events
        if head.start_s is None:
            head.start_s = position_s
            events.append(PromptStarted(head))
        if last:
            head.end_s = position_s + 0.02
            self._queue.popleft()
            events.append(PromptEnded(head))
        return events

    def flush_empty(self, position_s: float) -> list[PromptEvent]:
        """Finish prompts that have no audio at all (nothing will ever be sent for them)."""
        events: list[PromptEvent] = []
        while self._queue and self._queue[0].frames == 0:
            prompt = self._queue.popleft()
            prompt.start_s = prompt.end_s = position_s
            events += [PromptStarted(prompt), PromptEnded(prompt)]
        return events

    def interrupt(self, position_s: float) -> list[PromptEvent]:
        """Barge-in or hang-up: every queued prompt ends now, marked interrupted."""
        events: list[PromptEvent] = []
        while self._queue:
            prompt = self._queue.popleft()
            prompt.interrupted = True
            if prompt.start_s is None:
                prompt.start_s = position_s
                events.append(PromptStarted(prompt))
            prompt.end_s = position_s
            events.append(PromptEnded(prompt))
        return events
