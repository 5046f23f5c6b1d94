"""When does the caller start and stop talking: the debounce state machine over VAD decisions.

States: ``QUIET`` -> ``STARTING`` (voiced audio seen, not yet enough) -> ``SPEAKING`` ->
``STOPPING`` (trailing silence, not yet enough) -> ``QUIET``. Time is the frames' own
timestamp ``now`` (the start of each 20 ms frame), never the wall clock, so a test steps
through a call in microseconds.

Events carry times on the same clock:

* :class:`SpeechStarted` ``at`` = start of the first voiced frame, emitted once
  ``speech_start_ms`` of voiced audio has been seen;
* :class:`SpeechEnded` ``at`` = end of the last voiced frame, emitted after
  ``end_silence_ms`` of trailing silence;
* :class:`SpeechPaused` (only with a longer :attr:`Endpointer.hold_silence_ms`) ``at`` = end of
  the last voiced frame, after ``end_silence_ms``: the turn may be over, which the caller of the
  endpointer decides (:meth:`Endpointer.end_utterance`); otherwise SpeechEnded follows after the
  hold, or speech resumes within the same utterance;
* :class:`UtteranceTooLong` replaces SpeechEnded when an utterance reaches
  ``max_utterance_s``; the caller must then pause for ``end_silence_ms`` before a new
  utterance can start (so a radio left on does not loop);
* :class:`NoInput` when an armed no-input timer expires with no speech started.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from config.errors import MediaError
from config.settings import MediaSettings
from media.frames import FRAME_MS, Frame
from media.vad import VadBackend

FRAME_S = FRAME_MS / 1000.0


@dataclass(frozen=True)
class SpeechStarted:
    at: float


@dataclass(frozen=True)
class SpeechEnded:
    at: float
    duration: float

    @property
    def started_at(self) -> float:
        return self.at - self.duration


@dataclass(frozen=True)
class SpeechPaused:
    """A pause (``end_silence_ms``, or each of :attr:`Endpointer.pause_points_ms`) while a longer
    hold is set (:attr:`Endpointer.hold_silence_ms`): the turn may be over. ``at`` = end of the
    last voiced frame; the utterance stays open."""

    at: float
    duration: float


@dataclass(frozen=True)
class NoInput:
    at: float
    waited: float


@dataclass(frozen=True)
class UtteranceTooLong:
    at: float
    duration: float


EndpointerEvent = SpeechStarted | SpeechPaused | SpeechEnded | NoInput | UtteranceTooLong


class EndpointState(enum.Enum):
    QUIET = "quiet"
    STARTING = "starting"
    SPEAKING = "speaking"
    STOPPING = "stopping"


@dataclass(frozen=True)
class EndpointerConfig:
    """Debounce timings; ``start_gap_ms`` is how much unvoiced audio STARTING tolerates."""

    speech_start_ms: int = 100
    end_silence_ms: int = 300
    max_utterance_s: float = 15.0
    start_gap_ms: int = 40

    def __post_init__(self) -> None:
        if self.speech_start_ms < FRAME_MS:
            raise MediaError(f"speech_start_ms must be at least one frame ({FRAME_MS} ms)")
        if self.end_silence_ms < FRAME_MS:
            raise MediaError(f"end_silence_ms must be at least one frame ({FRAME_MS} ms)")
        if self.max_utterance_s * 1000 <= self.speech_start_ms:
            raise MediaError("max_utterance_s must be longer than speech_start_ms")
        if self.start_gap_ms < 0:
            raise MediaError("start_gap_ms must not be negative")

    @classmethod
    def from_settings(cls, settings: MediaSettings) -> EndpointerConfig:
        return cls(
            speech_start_ms=settings.speech_start_ms,
            end_silence_ms=settings.end_silence_ms,
            max_utterance_s=settings.max_utterance_s,
        )


class Endpointer:
    """Feeds on (voiced, now) per frame, or (frame, now) with a :class:`VadBackend`."""

    def __init__(self, config: EndpointerConfig | None = None, vad: VadBackend | None = None) -> None:
        self.config = config or EndpointerConfig()
        self.vad = vad
        # When longer than end_silence_ms: a pause of end_silence_ms gives SpeechPaused, and the
        # utterance only ends (SpeechEnded) after this much silence, or at end_utterance().
        self.hold_silence_ms: int | None = None
        # With a hold: the silences (ms) at which SpeechPaused is reported; empty means
        # end_silence_ms only. A check at a shorter pause (150 ms) ends a complete phrase sooner.
        self.pause_points_ms: tuple[int, ...] = ()
        self.reset()

    def reset(self) -> None:
        """Back to QUIET with no timer, e.g. when the call's media restarts."""
        self._state = EndpointState.QUIET
        self._onset = 0.0  # start of the first voiced frame of the current run
        self._voiced_ms = 0
        self._gap_ms = 0
        self._silence_start = 0.0  # end of the last voiced frame
        self._silence_ms = 0
        self._paused = False  # SpeechPaused sent for the current silence
        self._pauses_sent = 0
        self._needs_pause = False  # after UtteranceTooLong
        self._pause_ms = 0
        self._no_input_armed_at: float | None = None
        self._no_input_deadline: float | None = None

    @property
    def state(self) -> EndpointState:
        return self._state

    @property
    def silence_ms(self) -> int:
        """How long the trailing silence has lasted (``STOPPING``; 0 in other states)."""
        return self._silence_ms if self._state is EndpointState.STOPPING else 0

    @property
    def in_speech(self) -> bool:
        """True from SpeechStarted until SpeechEnded/UtteranceTooLong."""
        return self._state in (EndpointState.SPEAKING, EndpointState.STOPPING)

    @property
    def speech_onset(self) -> float | None:
        """Start time of the current (or starting) utterance, if any."""
        return None if self._state is EndpointState.QUIET else self._onset

    @property
    def no_input_deadline(self) -> float | None:
        return self._no_input_deadline

    def arm_no_input(self, timeout_s: float, now: float) -> None:
        """Start the no-input timer; a no-op while the caller is already speaking."""
        if timeout_s <= 0:
            raise MediaError(f"no-input timeout must be positive, got {timeout_s!r} s")
        if self.in_speech:
            self.disarm_no_input()
            return
        self._no_input_armed_at = now
        self._no_input_deadline = now + timeout_s

    def disarm_no_input(self) -> None:
        self._no_input_armed_at = None
        self._no_input_deadline = None

    def abandon_start(self) -> None:
        """Drop a STARTING run that turned out not to be speech (e.g. a DTMF tone)."""
        if self._state is EndpointState.STARTING:
            self._state = EndpointState.QUIET

    def end_utterance(self) -> SpeechEnded | None:
        """End a paused utterance now (the recognizer found a complete phrase at the pause)."""
        if self._state is not EndpointState.STOPPING or not self._paused:
            return None
        self._state = EndpointState.QUIET
        self._paused = False
        self._pauses_sent = 0
        return SpeechEnded(at=self._silence_start, duration=self._silence_start - self._onset)

    def push_frame(self, frame: Frame, now: float) -> list[EndpointerEvent]:
        """Score ``frame`` with the VAD backend and advance; ``now`` is the frame's start."""
        if self.vad is None:
            raise MediaError("Endpointer.push_frame needs a VAD backend; use process(voiced, now)")
        return self.process(self.vad.is_speech(frame), now)

    def process(self, voiced: bool, now: float) -> list[EndpointerEvent]:
        """Advance by one frame that starts at ``now`` and was judged ``voiced``."""
        events: list[EndpointerEvent] = []
        end = now + FRAME_S
        state = self._state
        if state is EndpointState.QUIET:
            if self._needs_pause:
                self._pause_ms = 0 if voiced else self._pause_ms + FRAME_MS
                if self._pause_ms >= self.config.end_silence_ms:
                    self._needs_pause = False
            elif voiced:
                self._onset = now
                self._voiced_ms = FRAME_MS
                self._gap_ms = 0
                self._state = EndpointState.STARTING
                self._maybe_start(events)
        elif state is EndpointState.STARTING:
            if voiced:
                self._voiced_ms += FRAME_MS
                self._gap_ms = 0
                self._maybe_start(events)
            else:
                self._gap_ms += FRAME_MS
                if self._gap_ms > self.config.start_gap_ms:
                    self._state = EndpointState.QUIET
        elif state is EndpointState.SPEAKING:
            if not voiced:
                self._silence_start = now
                self._silence_ms = FRAME_MS
                self._paused = False
                self._pauses_sent = 0
                self._state = EndpointState.STOPPING
                self._maybe_end(events)
        elif voiced:  # STOPPING
            self._state = EndpointState.SPEAKING
        else:
            self._silence_ms += FRAME_MS
            self._maybe_end(events)
        if self.in_speech and end - self._onset >= self.config.max_utterance_s - 1e-9:
            events.append(UtteranceTooLong(at=end, duration=end - self._onset))
            self._state = EndpointState.QUIET
            self._needs_pause = True
            self._pause_ms = 0
        events.extend(self.check_timers(end))
        return events

    def check_timers(self, now: float) -> list[EndpointerEvent]:
        """Fire the no-input timer if it is due at ``now`` (also call when frames stop).

        While a possible utterance is STARTING the timer waits for the verdict, so a caller
        who starts talking right at the deadline is not cut off.
        """
        deadline = self._no_input_deadline
        if deadline is None or now < deadline - 1e-9 or self._state is not EndpointState.QUIET:
            return []
        armed_at = self._no_input_armed_at if self._no_input_armed_at is not None else deadline
        self.disarm_no_input()
        return [NoInput(at=now, waited=now - armed_at)]

    def _maybe_start(self, events: list[EndpointerEvent]) -> None:
        if self._voiced_ms >= self.config.speech_start_ms:
            self._state = EndpointState.SPEAKING
            self.disarm_no_input()
            events.append(SpeechStarted(at=self._onset))

    def _maybe_end(self, events: list[EndpointerEvent]) -> None:
        end_ms = self.config.end_silence_ms
        hold_ms = self.hold_silence_ms
        if hold_ms is not None and hold_ms > end_ms:
            points = sorted(p for p in self.pause_points_ms if p < hold_ms) or [end_ms]
            due = self._pauses_sent < len(points) and self._silence_ms >= points[self._pauses_sent]
            if due:
                self._paused = True
                self._pauses_sent += 1
                events.append(
                    SpeechPaused(at=self._silence_start, duration=self._silence_start - self._onset)
                )
            end_ms = hold_ms
        if self._silence_ms >= end_ms:
            self._state = EndpointState.QUIET
            duration = self._silence_start - self._onset
            events.append(SpeechEnded(at=self._silence_start, duration=duration))
