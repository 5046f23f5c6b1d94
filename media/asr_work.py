"""The recognizer's side of a call: the ASR work a pipeline queues and the results it gets back.

:class:`~media.pipeline.CallMediaPipeline` never calls the recognizer: it queues *ASR work*
(set expectation, feed frames, decode ahead, check at a pause, finish, cancel), and an :class:`AsrFeeder`
executes it in order against one :class:`~media.asr.base.AsrStream`, off the event loop, turning
the recognizer's answers into :class:`AsrPartial`, :class:`AsrFinal` and :class:`AsrFailed` events. Split from
the pipeline so each module holds one concept: the per-frame media state machine there, the
blocking recognizer work here.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from config.errors import IvrError
from config.logs import log_event
from media.asr.base import AsrStream, Expectation, FinalResult, PartialResult
from media.frames import Frame

_LOGGER = logging.getLogger("ivr.media")


@dataclass(frozen=True)
class AsrPartial:
    """An interim hypothesis; ``at`` is the end of the audio it covers."""

    text: str
    at: float


@dataclass(frozen=True)
class AsrFinal:
    """The recognizer's result for one utterance, with the utterance's times."""

    result: FinalResult
    speech_started_at: float
    speech_ended_at: float

    @property
    def at(self) -> float:
        return self.speech_ended_at


@dataclass(frozen=True)
class AsrFailed:
    """The recognizer failed on this utterance; ``at`` is the audio time, when known."""

    reason: str
    at: float | None


@dataclass(frozen=True)
class AsrSetExpectation:
    expectation: Expectation


@dataclass(frozen=True)
class AsrFeed:
    """Frames for the current utterance; ``at`` is the end time of the last one."""

    frames: tuple[Frame, ...]
    at: float
    speech_started_at: float


@dataclass(frozen=True)
class AsrFinish:
    speech_started_at: float
    speech_ended_at: float


@dataclass(frozen=True)
class AsrCheck:
    """The caller paused: end the utterance now if the audio so far is a complete phrase."""

    speech_started_at: float
    speech_ended_at: float


@dataclass(frozen=True)
class AsrPrepare:
    """Early in the caller's silence: decode the utterance so far, ahead of the check and the
    final (the pipeline feeds nothing more unless the caller goes on). ``silence_ms``: the
    silence fed so far; ``pad_ms``: how much more the check would have seen."""

    silence_ms: int
    pad_ms: int


@dataclass(frozen=True)
class AsrCancel:
    """Drop the utterance in progress (listening stopped)."""


AsrWork = AsrSetExpectation | AsrFeed | AsrPrepare | AsrCheck | AsrFinish | AsrCancel


class AsrFeeder:
    """Executes ASR work against one stream. Blocking: run it off the event loop, in order.

    An engine failure (:class:`~config.errors.IvrError`) becomes one :class:`AsrFailed` event
    for the utterance and the rest of that utterance is skipped, so the call goes on (the
    flow treats it like a no-match); other exceptions are bugs and propagate.
    """

    def __init__(self, stream: AsrStream) -> None:
        self.stream = stream
        self._final_sent = False
        self._failed = False
        self._decided = False  # a check at a pause gave the final: the rest of the utterance is moot

    def run(self, work: Sequence[AsrWork]) -> list[AsrPartial | AsrFinal | AsrFailed]:
        results: list[AsrPartial | AsrFinal | AsrFailed] = []
        for item in work:
            try:
                self._run_one(item, results)
            except IvrError as exc:
                log_event("media.asr_failed", logging.WARNING, _LOGGER, error=type(exc).__name__)
                results.append(AsrFailed(reason=str(exc), at=_work_time(item)))
                self._failed = not isinstance(item, AsrFinish | AsrCancel)
                self._final_sent = False
                self._decided = False
                with contextlib.suppress(IvrError):  # already reported; the next utterance retries
                    self.stream.reset()
        return results

    @property
    def _undecided(self) -> bool:
        """The utterance may still end at a pause: no failure, no final from a check or the engine."""
        return not (self._failed or self._decided or self._final_sent)

    def _run_one(self, item: AsrWork, results: list[AsrPartial | AsrFinal | AsrFailed]) -> None:
        if isinstance(item, AsrSetExpectation):
            self.stream.set_expectation(item.expectation)
        elif isinstance(item, AsrFeed):
            if self._failed or self._decided:
                return
            for result in self.stream.push_frames(list(item.frames)):
                if isinstance(result, PartialResult):
                    results.append(AsrPartial(result.text, item.at))
                else:  # the engine endpointed by itself
                    self._final_sent = True
                    results.append(AsrFinal(result, item.speech_started_at, item.at))
        elif isinstance(item, AsrPrepare):
            if self._undecided:
                self.stream.prepare(item.silence_ms, item.pad_ms)
        elif isinstance(item, AsrCheck):
            if not self._undecided:
                return
            complete = self.stream.complete_phrase()
            if complete is not None:
                self._decided = True
                results.append(AsrFinal(complete, item.speech_started_at, item.speech_ended_at))
        elif isinstance(item, AsrFinish):
            if self._decided:
                self._decided = False
                self.stream.reset()
                return
            if self._failed:
                self._failed = False
                return
            final = self.stream.flush()
            if not self._final_sent or final.text:
                results.append(AsrFinal(final, item.speech_started_at, item.speech_ended_at))
            self._final_sent = False
        else:
            self._failed = False
            self._final_sent = False
            self._decided = False
            self.stream.reset()


def _work_time(item: AsrWork) -> float | None:
    if isinstance(item, AsrFeed):
        return item.at
    if isinstance(item, AsrFinish | AsrCheck):
        return item.speech_ended_at
    return None
