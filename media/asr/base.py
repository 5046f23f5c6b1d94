"""The one streaming interface every speech recognizer implements.

A stream is sans-I/O and synchronous: ``push_frame`` does the (blocking) decoding work and
returns whatever results are ready. Callers on an event loop run it in an executor thread.
Engines load their model once per process (:class:`AsrEngine`); streams are cheap, one per
utterance or per call.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from media.frames import Frame


@dataclass(frozen=True)
class Expectation:
    """What the current flow step expects to hear.

    With ``phrases`` and ``open_vocabulary=False`` an engine that supports grammars decodes
    against those phrases only (plus an out-of-grammar path); otherwise it decodes freely.
    """

    phrases: tuple[str, ...] = ()
    open_vocabulary: bool = True

    @property
    def grammar_mode(self) -> bool:
        return bool(self.phrases) and not self.open_vocabulary


@dataclass(frozen=True)
class WordTiming:
    word: str
    start_s: float
    end_s: float
    confidence: float = 1.0


@dataclass(frozen=True)
class PartialResult:
    """A hypothesis that may still change."""

    text: str


@dataclass(frozen=True)
class FinalResult:
    """The recognizer's last word on an utterance.

    ``in_grammar`` is False when a grammar-mode stream heard something outside its phrases
    (the caller said "something else"); ``text`` is then empty or the engine's best guess.
    """

    text: str
    confidence: float
    words: tuple[WordTiming, ...] = field(default=())
    in_grammar: bool = True


AsrResult = PartialResult | FinalResult


class AsrStream(ABC):
    """One utterance-at-a-time recognition stream over 8 kHz int16 frames."""

    @abstractmethod
    def push_frame(self, frame: Frame) -> list[AsrResult]:
        """Feed 20 ms of audio; returns partial results (and finals, if the engine endpoints)."""

    def push_frames(self, frames: list[Frame]) -> list[AsrResult]:
        """Feed several frames at once (a stream in another process sends them as one message)."""
        results: list[AsrResult] = []
        for frame in frames:
            results += self.push_frame(frame)
        return results

    @abstractmethod
    def flush(self) -> FinalResult:
        """End of utterance: return the final result and get ready for the next utterance."""

    def complete_phrase(self) -> FinalResult | None:
        """At a pause: the final result if the audio so far already is a complete phrase.

        The pipeline asks this after a short pause in grammar mode; ``None`` (the default:
        the engine cannot tell) keeps the utterance open, so a caller who pauses inside a
        phrase ("ten ... in the morning") is not cut off. A result ends the utterance; the
        stream then drops its audio at the next :meth:`reset` or :meth:`flush`.
        """
        return None

    def prepare(self, silence_ms: int, pad_ms: int) -> None:  # noqa: B027 - most engines need nothing
        """Early in the caller's trailing silence: decode what was pushed so far, ahead.

        The last ``silence_ms`` pushed are that silence; a decode that wants the silence the
        check would have seen repeats it to ``pad_ms`` more. The pipeline then pushes nothing
        more until it checks (:meth:`complete_phrase`) or finishes (:meth:`flush`), which may
        use that decode instead of running one on the critical path; audio pushed after it
        (the caller went on) makes it stale.
        """

    @abstractmethod
    def reset(self) -> None:
        """Drop any audio pushed so far (barge-in cancelled, step changed)."""

    @abstractmethod
    def set_expectation(self, expectation: Expectation) -> None:
        """Change what the next utterance is decoded against (a new flow step)."""

    def close(self) -> None:  # noqa: B027 - most streams hold nothing to release
        """Release per-stream resources."""


class AsrEngine(ABC):
    """A loaded model shared by every call in the process."""

    name: str = "asr"

    @abstractmethod
    def open_stream(self, expectation: Expectation) -> AsrStream:
        """A new stream decoding against ``expectation``."""
