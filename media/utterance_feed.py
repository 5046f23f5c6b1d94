"""The ASR work one call queues for its utterances, apart from the per-frame stepping that
decides when they start and end (:mod:`media.pipeline`).

While the flow listens (a :class:`Listening`), an utterance begins at the caller's speech
onset with the pre-roll before it, then every caller frame is fed to the recognizer, coalesced
into one :class:`~media.asr_work.AsrFeed` while nothing else is queued behind it. Early in the
trailing silence (``end_silence_prepare_ms``, grammar steps only) an
:class:`~media.asr_work.AsrPrepare` asks for a decode ahead and the rest of the silence is held
back, so the pause check and the final only read that decode; if the caller goes on, the held
silence is fed first. At a pause the utterance is checked (:class:`~media.asr_work.AsrCheck`),
at its end finished (:class:`~media.asr_work.AsrFinish`), or cancelled as :class:`NonSpeech`
when the :class:`~media.tone_guard.ToneGuard` heard a steady tone instead of a voice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from config.settings import MediaSettings
from media.asr.base import Expectation
from media.asr_work import AsrCancel, AsrCheck, AsrFeed, AsrFinish, AsrPrepare, AsrWork
from media.endpointer import FRAME_S, SpeechEnded, SpeechPaused, UtteranceTooLong
from media.frames import Frame
from media.tone_guard import ToneGuard


@dataclass(frozen=True)
class NonSpeech:
    """The "utterance" was a steady tone (fax, dial tone, test tone): the recognizer never
    hears it and the flow should take it as a no-match, never as an intent."""

    at: float
    speech_started_at: float


@dataclass
class Listening:
    """The flow waits for an answer: what it expects, and the utterance being fed, if any."""

    expectation: Expectation
    no_input_timeout_s: float
    timer_pending: bool  # waiting for the prompt to finish before arming
    utterance_onset: float | None = None  # set while feeding the ASR
    feeding: bool = False
    held: list[Frame] | None = None  # after an AsrPrepare: trailing silence kept from the ASR

    def drop_utterance(self) -> None:
        """Forget the utterance being fed (its ASR work is cancelled or finished by the caller)."""
        self.feeding = False
        self.utterance_onset = None
        self.held = None


class UtteranceFeed:
    """The queue of ASR work, oldest first, and how each utterance's frames get into it."""

    def __init__(self, settings: MediaSettings) -> None:
        self.settings = settings
        self.work: list[AsrWork] = []
        self.tone_guard = ToneGuard()

    def take(self) -> list[AsrWork]:
        """Drain the queued work, oldest first."""
        work, self.work = self.work, []
        return work

    def begin(
        self, listening: Listening, onset: float, ring: Sequence[tuple[float, Frame]], pre_roll_s: float
    ) -> None:
        """An utterance starts at ``onset``: feed the caller audio kept in ``ring`` (start time,
        frame) from ``pre_roll_s`` before it, so the first syllable is not clipped."""
        listening.feeding = True
        listening.utterance_onset = onset
        listening.held = None
        listening.timer_pending = False
        self.tone_guard.reset()
        frames = tuple(f for t, f in ring if t >= onset - pre_roll_s - 1e-9)
        if frames:
            self.feed(listening, frames, ring[-1][0] + FRAME_S)

    def feed(self, listening: Listening, frames: tuple[Frame, ...], at: float) -> None:
        if listening.utterance_onset is None:
            return
        for frame in frames:
            self.tone_guard.push(frame)
        last = self.work[-1] if self.work else None
        if isinstance(last, AsrFeed) and last.speech_started_at == listening.utterance_onset:
            self.work[-1] = AsrFeed(last.frames + frames, at, last.speech_started_at)
        else:
            self.work.append(AsrFeed(frames, at, listening.utterance_onset))

    def feed_or_hold(self, listening: Listening, frame: Frame, at: float, silence_ms: int) -> None:
        """Feed one frame of the utterance, unless it is trailing silence after the decode ahead.

        ``silence_ms``: how long the utterance's trailing silence has lasted, this frame
        included (the endpointer's :attr:`~media.endpointer.Endpointer.silence_ms`; 0 while the
        caller speaks).
        """
        if silence_ms == 0:
            held, listening.held = listening.held or [], None
            self.feed(listening, (*held, frame), at)  # the caller went on: the held silence is theirs too
            return
        if listening.held is not None:
            listening.held.append(frame)
            return
        self.feed(listening, (frame,), at)
        s = self.settings
        check_ms = min(s.end_silence_complete_ms, s.end_silence_ms)
        # Only pocketsphinx decodes ahead; vosk decodes as audio arrives and keeps its old feed.
        ahead = s.asr_engine == "pocketsphinx" and s.end_silence_prepare_ms < check_ms
        if ahead and silence_ms >= s.end_silence_prepare_ms:
            if not listening.expectation.grammar_mode:
                return
            self.work.append(AsrPrepare(silence_ms, max(0, check_ms - silence_ms)))
            listening.held = []

    def check(self, listening: Listening, event: SpeechPaused) -> None:
        """The caller paused: ask whether what they said so far is a complete answer."""
        if not listening.feeding or listening.utterance_onset is None:
            return
        if not self.tone_guard.is_tone():
            self.work.append(AsrCheck(listening.utterance_onset, event.at))

    def finish(self, listening: Listening, event: SpeechEnded | UtteranceTooLong) -> NonSpeech | None:
        """The utterance ended: finish it, or cancel it as :class:`NonSpeech` if it was a tone."""
        if not listening.feeding or listening.utterance_onset is None:
            return None
        onset = listening.utterance_onset
        listening.drop_utterance()
        if self.tone_guard.is_tone():
            self.work.append(AsrCancel())
            return NonSpeech(event.at, onset)
        self.work.append(AsrFinish(onset, event.at))
        return None
