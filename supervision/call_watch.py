"""What a supervisor sees of one call, produced inside the call core: transcript lines, the flow
step, alerts. Sans-I/O (call-core layer): it appends commands to the call's shared
:class:`~ivr.call_state.CallState` and the session publishes them.

- Every transcript turn the recording gets is also published as a ``final`` line on
  ``ivr/call/<id>/transcript``, with exactly the recording's text, so a PIN said or keyed in a
  sensitive step or while the recording is paused goes out as ``[redacted ...]`` and never in
  clear. Partial results are published only when neither is the case.
- The caller's finals, no-matches, no-inputs and silences, the time and outcome, and the
  emotion reading of each utterance feed the call's :class:`~supervision.alerts.AlertEngine`;
  each alert becomes a :class:`~ivr.call_vocabulary.RaiseAlert` (published and stored with the
  recording) and, when its rule names an action, waits in :attr:`actions` for the flow side.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from ivr.call_state import CallState
from ivr.call_vocabulary import Publish, RaiseAlert, WriteTurn
from media.endpointer import SpeechEnded, SpeechStarted, UtteranceTooLong
from media.frames import Frame
from supervision.alert_rules import RuleAction
from supervision.alerts import Alert, AlertEngine
from supervision.emotion import EmotionReading, EmotionTracker, with_words

SILENCE_CHECK_S = 0.5
"""How often (media clock) the silence and outcome rules are looked at."""


class CallWatch:
    """See the module docstring; ``engine`` None publishes transcripts and steps only."""

    def __init__(
        self, state: CallState, engine: AlertEngine | None = None, emotion: EmotionTracker | None = None
    ) -> None:
        self._state = state
        self.engine = engine
        self._emotion = emotion if engine is not None else None
        self._pending: EmotionReading | None = None
        self._step = ""
        self._checked_s = 0.0
        self._silent_s = 0.0  # the caller's silence while the bot waited, since they last spoke
        self._speaking = False
        self.actions: deque[RuleAction] = deque()
        """Actions of fired alerts, for the flow side to carry out."""

    # -- the transcript -----------------------------------------------------------------------
    def turns(self, turns: Sequence[WriteTurn]) -> None:
        """Turns for the recording: write each, and publish it as a final transcript line."""
        state = self._state
        for turn in turns:
            state.out.append(turn)
            state.out.append(
                Publish(
                    "transcript",
                    {
                        "speaker": turn.speaker,
                        "kind": "final",
                        "text": turn.text,
                        "start_s": round(turn.start_s, 3),
                        "end_s": round(turn.end_s, 3),
                        "confidence": None if turn.confidence is None else round(turn.confidence, 3),
                        "interrupted": turn.interrupted,
                        "at": _iso(state),
                    },
                )
            )

    def partial(self, text: str, at_s: float, redacted: bool) -> None:
        """An interim result: published unless the answer is sensitive or the recording paused."""
        if redacted or not text.strip():
            return
        if self.engine is not None:
            self._raise(self.engine.caller_partial(text, at_s))
        payload = {
            "speaker": "caller",
            "kind": "partial",
            "text": text,
            "start_s": None,
            "end_s": round(at_s, 3),
        }
        self._state.out.append(
            Publish("transcript", {**payload, "confidence": None, "at": _iso(self._state)})
        )

    # -- signals for the alert engine -------------------------------------------------------------
    def caller_final(self, text: str, matched: bool, at_s: float) -> None:
        """A final of the caller's, as written to the recording (redacted when sensitive)."""
        self._silent_s = 0.0
        engine = self.engine
        if engine is None:
            return
        self._raise(engine.caller_said(text, at_s) + engine.recognized(matched, at_s))
        pending, self._pending = self._pending, None
        if pending is not None:
            reading = with_words(pending, len(engine.emotion_words(text)))
            self._raise(engine.emotion(reading.arousal, at_s, reading.evidence()))

    def no_input(self, at_s: float) -> None:
        if self.engine is not None:
            self._raise(self.engine.no_input(at_s))

    def caller_frame(self, frame: Frame, events: Sequence[object], at_s: float) -> None:
        """One caller frame and what the endpointer said of it: speech for the silence rule,
        utterances for the emotion tracker."""
        tracker = self._emotion
        for event in events:
            if isinstance(event, SpeechStarted):
                self._speaking, self._silent_s = True, 0.0
                self._flush_pending(at_s)
                if tracker is not None:
                    if tracker.in_utterance:
                        tracker.end_utterance()  # an utterance that never ended: start afresh
                    tracker.push(frame)
                return
            if isinstance(event, SpeechEnded | UtteranceTooLong):
                self._speaking, self._silent_s = False, 0.0
                if tracker is not None and tracker.in_utterance:
                    self._pending = tracker.end_utterance()
                return
        if tracker is not None and tracker.in_utterance:
            tracker.push(frame)

    def caller_active(self) -> None:
        """The caller keyed something: their silence is over."""
        self._silent_s = 0.0

    def tick(self, position_s: float, waiting: bool, elapsed_s: float, outcome: str) -> None:
        """The media clock moved: the flow step, caller silence while the bot waits, time vs outcome."""
        state = self._state
        step = state.flow.step if state.flow_started else ""
        if step and step != self._step:
            self._step = step
            state.out.append(Publish("step", {"step": step, "at_s": round(position_s, 3)}))
        engine = self.engine
        if engine is None or position_s - self._checked_s < SILENCE_CHECK_S:
            return
        step_s, self._checked_s = position_s - self._checked_s, position_s
        if waiting and not self._speaking:
            self._silent_s += step_s
        if self._silent_s > 0:
            self._raise(engine.silence(self._silent_s, position_s))
        self._raise(engine.progress(elapsed_s, outcome, position_s))

    def _flush_pending(self, at_s: float) -> None:
        """A reading whose final never came (nobody was listening) is judged on the voice alone."""
        pending, self._pending = self._pending, None
        if pending is not None and self.engine is not None:
            self._raise(self.engine.emotion(pending.arousal, at_s, pending.evidence()))

    def _raise(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            self._state.out.append(RaiseAlert(alert.to_json()))
            if alert.action is not None:
                self.actions.append(alert.action)


def _iso(state: CallState) -> str:
    return state.utc().isoformat(timespec="milliseconds").replace("+00:00", "Z")
