"""One call's media brain: caller frames in, typed events out.

:class:`CallMediaPipeline` runs, per 20 ms caller frame: input checks, in-band DTMF, the
VAD, the barge-in echo guard and the endpointer. It is sans-I/O and cheap (tens of
microseconds per frame), so it runs on the event loop. A call loop that drains several frames
per wake hands them over at once (:meth:`~CallMediaPipeline.push_caller_frames`): the numbers
are computed for the block, the state machines step per frame, the events are the same.
Speech recognition is the one expensive, blocking step, so the pipeline never calls the ASR
stream itself: it queues *ASR work* (set expectation, feed frames, finish, cancel) that the
caller drains with :meth:`CallMediaPipeline.take_asr_work` and executes in order with an
:class:`AsrFeeder`, wherever it likes::

    events = pipeline.push_caller_frame(frame, now)
    work = pipeline.take_asr_work()
    if work:  # one executor thread per call keeps the work in order
        events += await loop.run_in_executor(call_executor, feeder.run, work)

If the executor falls behind, work simply accumulates and is sent as one batch. Tests and
offline tools call ``feeder.run(work)`` inline. The work items, their results and the feeder
are in :mod:`media.asr_work`; how an utterance's frames become work, in :mod:`media.utterance_feed`.

Call :meth:`~CallMediaPipeline.prompt_frame` with every frame the bot sends (prompts, hold
music, silence is optional): without that reference the echo guard cannot tell the prompt's
echo from the caller, and echo would barge in. Call
:meth:`~CallMediaPipeline.check_timers` from a periodic tick so no-input still fires if the
caller's RTP stops.

Audio reaches the ASR only while listening and only for an utterance: from
``pre_roll_ms`` before the caller's speech onset (so the first syllable is not clipped)
until end of speech. Speech that starts while a prompt without barge-in plays (a disclosure
that must be heard in full) is not an utterance: it never reaches the ASR, so it can answer
nothing, not even the question queued after the prompt. No-input timing starts when listening
starts, or when the prompt finishes if one is playing then.

End of turn has two tiers on a grammar step. After ``end_silence_ms`` of silence the endpointer
(and first after ``end_silence_complete_ms``, when shorter) reports
:class:`~media.endpointer.SpeechPaused` and the pipeline queues an
:class:`~media.asr_work.AsrCheck`: if the recognizer finds a complete phrase that is no prefix of
a longer one, that is the final (the call then stops listening). Otherwise the utterance stays
open until ``end_silence_incomplete_ms``, so "ten ... in the morning" said with a pause reaches
the recognizer whole instead of as "ten" and "in the morning". Open-vocabulary steps keep one tier.
Earlier in that silence (``end_silence_prepare_ms``) the pipeline queues an
:class:`~media.asr_work.AsrPrepare` and holds the rest of the silence back from the recognizer,
so the check and the final only read a decode made ahead; if the caller goes on, the held
silence is fed first and the decode ahead is stale.

Event vocabulary (all frozen dataclasses, times on the frames' clock):
:class:`~media.endpointer.SpeechStarted`, :class:`~media.endpointer.SpeechEnded`,
:class:`~media.endpointer.NoInput`, :class:`~media.endpointer.UtteranceTooLong`,
:class:`~media.barge_in.BargeIn` (stop the prompt now), :class:`~media.dtmf_detector.DtmfDigit`
(in-band), :class:`AsrPartial`, :class:`AsrFinal`, :class:`AsrFailed` (the recognizer raised;
treat as no-match), :class:`AudioRejected` (a malformed frame was replaced by silence; the
call goes on).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from config.errors import MediaError
from config.logs import log_event
from config.settings import MediaSettings
from media.asr.base import Expectation
from media.asr_work import (
    AsrCancel,
    AsrCheck,
    AsrFailed,
    AsrFeed,
    AsrFeeder,
    AsrFinal,
    AsrFinish,
    AsrPartial,
    AsrPrepare,
    AsrSetExpectation,
    AsrWork,
)
from media.audio_checks import clipping_ratio, ensure_frame
from media.barge_in import BargeIn, BargeInConfig, BargeInDetector
from media.dtmf_detector import DtmfConfig, DtmfDetector, DtmfDigit
from media.endpointer import (
    FRAME_S,
    Endpointer,
    EndpointerConfig,
    NoInput,
    SpeechEnded,
    SpeechPaused,
    SpeechStarted,
    UtteranceTooLong,
)
from media.frame_block import CLIP_POWER, CLIP_SHARE, analyse_block
from media.frames import FRAME_MS, FRAME_SAMPLES, SILENCE, Frame
from media.utterance_feed import Listening, NonSpeech, UtteranceFeed
from media.vad import VadBackend, make_vad

_LOGGER = logging.getLogger("ivr.media")
_RING_S = 1.0  # caller audio kept for pre-roll (and for listening that starts mid-utterance)

__all__ = [  # ASR work and results: media.asr_work; NonSpeech: media.utterance_feed; importable here
    "AsrCancel",
    "AsrCheck",
    "AsrFailed",
    "AsrFeed",
    "AsrFeeder",
    "AsrFinal",
    "AsrFinish",
    "AsrPartial",
    "AsrPrepare",
    "AsrSetExpectation",
    "AsrWork",
    "AudioRejected",
    "CallMediaPipeline",
    "MediaEvent",
    "NonSpeech",
]


@dataclass(frozen=True)
class AudioRejected:
    at: float
    reason: str


MediaEvent = (
    SpeechStarted
    | SpeechPaused
    | SpeechEnded
    | NoInput
    | UtteranceTooLong
    | BargeIn
    | DtmfDigit
    | AsrPartial
    | AsrFinal
    | AsrFailed
    | AudioRejected
    | NonSpeech
)


class CallMediaPipeline:
    """Per-call media state. Not thread-safe: drive it from one task."""

    def __init__(
        self,
        settings: MediaSettings | None = None,
        *,
        vad: VadBackend | None = None,
        barge_in: BargeInConfig | None = None,
        dtmf: DtmfConfig | None = None,
        in_band_dtmf: bool | None = None,
        pre_roll_ms: int | None = None,
    ) -> None:
        self.settings = settings or MediaSettings()
        s = self.settings
        pre_roll_ms = s.pre_roll_ms if pre_roll_ms is None else pre_roll_ms
        in_band_dtmf = s.in_band_dtmf if in_band_dtmf is None else in_band_dtmf
        barge_in = barge_in or BargeInConfig(
            min_speech_ms=s.barge_in_min_speech_ms, echo_margin_db=s.barge_in_echo_margin_db
        )
        if not 0 <= pre_roll_ms <= _RING_S * 1000 - FRAME_MS:
            raise MediaError(f"pre_roll_ms must be within 0..{int(_RING_S * 1000) - FRAME_MS}")
        self.pre_roll_s = pre_roll_ms / 1000
        self.vad = vad or make_vad(self.settings)
        self.endpointer = Endpointer(EndpointerConfig.from_settings(self.settings))
        self.barge_in = BargeInDetector(barge_in)
        self.dtmf = DtmfDetector(dtmf) if in_band_dtmf else None
        self._ring: deque[tuple[float, Frame]] = deque(maxlen=round(_RING_S / FRAME_S))
        self._asr = UtteranceFeed(self.settings)  # the ASR work queue and the utterance being fed
        self._listening: Listening | None = None
        self.tone_guard = self._asr.tone_guard
        self.frames_rejected = 0
        self.frames_clipped = 0  # caller frames with >1 % samples at the rails: gain too high

    @property
    def listening(self) -> bool:
        return self._listening is not None

    # --- inputs from the call -------------------------------------------------------------

    def start_listening(self, expectation: Expectation, no_input_timeout_s: float | None, now: float) -> None:
        """The flow now waits for an answer; ``None`` timeout means the settings' default."""
        timeout = self.settings.no_input_timeout_s if no_input_timeout_s is None else no_input_timeout_s
        if timeout <= 0:
            raise MediaError(f"no-input timeout must be positive, got {timeout!r} s")
        if self._listening is not None:
            self.stop_listening()
        pending = self.barge_in.prompt_playing
        self._listening = Listening(expectation, timeout, timer_pending=pending)
        self._asr.work.append(AsrSetExpectation(expectation))
        # A grammar step can tell a complete phrase at a pause; anything else waits longer.
        hold = self.settings.end_silence_incomplete_ms if expectation.grammar_mode else None
        self.endpointer.hold_silence_ms = hold
        s = self.settings
        self.endpointer.pause_points_ms = tuple(sorted({s.end_silence_complete_ms, s.end_silence_ms}))
        if not pending:
            self.endpointer.arm_no_input(timeout, now)
        onset = self.endpointer.speech_onset
        if self.endpointer.in_speech and onset is not None:
            self._begin_utterance(onset)

    def stop_listening(self) -> None:
        """The flow no longer wants speech (answer taken, DTMF received, call ending)."""
        listening = self._listening
        if listening is None:
            return
        if listening.feeding:
            self._asr.work.append(AsrCancel())
        self.endpointer.disarm_no_input()
        self.endpointer.end_utterance()  # a turn decided at a pause: what follows is a new one
        self.endpointer.hold_silence_ms = None
        self._listening = None

    def prompt_started(self, barge_in_allowed: bool, now: float) -> None:
        self.barge_in.prompt_started(barge_in_allowed, now)
        listening = self._listening
        if listening is not None and listening.feeding and not barge_in_allowed:
            # A prompt that must be heard in full starts over the caller: what they say now
            # answers nothing yet (a "yes" during the disclosure is not consent to it).
            self._asr.work.append(AsrCancel())
            listening.drop_utterance()
        if listening is not None and not listening.feeding:
            # Listening began before the prompt: no-input counts from the prompt's end.
            self.endpointer.disarm_no_input()
            listening.timer_pending = True

    def prompt_frame(self, frame: Frame) -> None:
        """What the bot is sending now (for the echo guard); bad frames are skipped."""
        try:
            self.barge_in.prompt_frame(ensure_frame(frame, "prompt frame"))
        except MediaError as exc:
            log_event("media.prompt_frame_rejected", logging.WARNING, _LOGGER, reason=str(exc))

    def prompt_finished(self, now: float) -> None:
        self.barge_in.prompt_finished(now)
        listening = self._listening
        if listening is not None and listening.timer_pending:
            listening.timer_pending = False
            if not listening.feeding:
                self.endpointer.arm_no_input(listening.no_input_timeout_s, now)

    def push_caller_frame(self, frame: Frame, now: float) -> list[MediaEvent]:
        """One 20 ms caller frame starting at ``now``; returns what happened."""
        events: list[MediaEvent] = []
        try:
            frame = ensure_frame(frame, "caller frame")
        except MediaError as exc:
            self._rejected(str(exc), now, events)
            frame = SILENCE
        wide = frame.astype(np.float64)
        power = float(np.dot(wide, wide)) / FRAME_SAMPLES  # exact: equal to frame_powers' row
        if power >= CLIP_POWER and clipping_ratio(frame) > CLIP_SHARE:
            self.frames_clipped += 1
        keys = self.dtmf.analyse(wide.reshape(1, -1))[0] if self.dtmf is not None else None
        self._step(frame, now, keys=keys, voiced=self.vad.is_speech(frame), power=power, events=events)
        return events

    def push_caller_frames(
        self,
        frames: Sequence[Frame],
        starts: Sequence[float],
        prompt_frames: Sequence[Sequence[Frame]] | None = None,
    ) -> list[list[MediaEvent]]:
        """Caller frames drained in one wake, ``starts[k]`` the start of ``frames[k]``; returns
        what happened during each frame (one list per frame).

        Exactly :meth:`prompt_frame` for each of ``prompt_frames[k]`` (what the bot sent in
        frame k's tick, before it) then :meth:`push_caller_frame` for frame k, for every k in
        order: same events, same times, same state. The numbers (input checks, clipping, frame
        power, DTMF spectra, the VAD) are computed for the whole block at once, which costs a few
        numpy calls instead of a few per frame; only the cheap state machines (DTMF debounce,
        barge-in decision, endpointer, ASR feeding) step frame by frame.
        """
        n = len(frames)
        if len(starts) != n or (prompt_frames is not None and len(prompt_frames) != n):
            raise MediaError(
                f"push_caller_frames: {n} frames but {len(starts)} start times"
                + ("" if prompt_frames is None else f" and {len(prompt_frames)} prompt frame lists")
            )
        if n == 0:
            return []
        if n == 1:  # the usual wake: the one-frame path has fewer numpy calls
            for frame in prompt_frames[0] if prompt_frames is not None else ():
                self.prompt_frame(frame)
            return [self.push_caller_frame(frames[0], starts[0])]
        block = analyse_block(frames, prompt_frames, self.dtmf, self.vad)
        out: list[list[MediaEvent]] = []
        for k in range(n):
            now = starts[k]
            events: list[MediaEvent] = []
            reason = block.rejected[k]
            if reason is not None:
                self._rejected(reason, now, events)
            if block.clipped[k]:
                self.frames_clipped += 1
            for power in block.prompt_powers[k]:
                self.barge_in.prompt_power(power)
            keys = block.keys[k] if block.keys is not None else None
            self._step(
                block.frames[k], now, keys=keys, voiced=block.voiced[k], power=block.powers[k], events=events
            )
            out.append(events)
        return out

    def _rejected(self, reason: str, now: float, events: list[MediaEvent]) -> None:
        self.frames_rejected += 1
        log_event("media.caller_frame_rejected", logging.WARNING, _LOGGER, reason=reason)
        events.append(AudioRejected(at=now, reason=reason))

    def _step(
        self,
        frame: Frame,
        now: float,
        *,
        keys: tuple[str | None, str | None] | None,
        voiced: bool,
        power: float,
        events: list[MediaEvent],
    ) -> None:
        """The sequential part of one caller frame, given its precomputed numbers."""
        self._ring.append((now, frame))
        tone = False
        if self.dtmf is not None and keys is not None:
            digits = self.dtmf.decide(keys, now)
            if digits:
                self.endpointer.abandon_start()  # the tone is not the start of an utterance
            events.extend(digits)
            tone = self.dtmf.tone_present
        caller_speaking, barge = self.barge_in.judge(power, voiced, now)
        if barge is not None:
            events.insert(0, barge)
        fed = False
        for event in self.endpointer.process(caller_speaking and not tone, now):
            events.append(event)
            if isinstance(event, SpeechStarted) and self._listening is not None:
                self._begin_utterance(event.at)
                fed = True
            elif isinstance(event, SpeechPaused) and self._listening is not None:
                self._asr.check(self._listening, event)
            elif isinstance(event, SpeechEnded | UtteranceTooLong) and self._listening is not None:
                non_speech = self._asr.finish(self._listening, event)
                if non_speech is not None:
                    events.append(non_speech)
        listening = self._listening
        if listening is not None and listening.feeding and not fed:
            self._asr.feed_or_hold(listening, frame, now + FRAME_S, self.endpointer.silence_ms)

    def check_timers(self, now: float) -> list[MediaEvent]:
        """Fire due timers when no frames arrive (RTP stopped); safe to call any time."""
        return list(self.endpointer.check_timers(now))

    def take_asr_work(self) -> list[AsrWork]:
        """Drain the queued ASR work, oldest first."""
        return self._asr.take()

    # --- internals -----------------------------------------------------------------------

    def _begin_utterance(self, onset: float) -> None:
        listening = self._listening
        if listening is None or self.barge_in.must_be_heard:
            return  # speech over a prompt that may not be interrupted is no answer
        self._asr.begin(listening, onset, self._ring, self.pre_roll_s)
