"""Drive a session with typed caller turns: the engine behind ``chat`` and ``flows test``.

A turn is words (a recognition with the given confidence), ``#123`` (keys; a pause follows
if the step still waits for more), ``/silence`` (no input) or ``/hangup``. Bot output comes
back as lines: prompt text, and ``[...]`` for other actions (transfer, hang-up, recording,
events). Simulated time advances a few seconds per turn.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from flows.actions import (
    Action,
    EmitEvent,
    HangUp,
    PauseRecording,
    Play,
    ResumeRecording,
    Transfer,
)
from flows.events import CallerHangUp, DtmfDigit, Event, NoInput, PromptFinished, Recognition, TransferResult
from flows.model import Flow
from flows.session import FlowSession

TURN_TIME = timedelta(seconds=4)
COMMANDS = ("/silence", "/hangup")


def describe(action: Action) -> str | None:
    """One transcript line for an action; ``None`` for actions a caller would not notice."""
    if isinstance(action, Play):
        return action.text
    if isinstance(action, Transfer):
        return f"[transfer {action.target}]"
    if isinstance(action, HangUp):
        return f"[hangup {action.outcome}]"
    if isinstance(action, PauseRecording):
        return "[recording paused]"
    if isinstance(action, ResumeRecording):
        return "[recording resumed]"
    if isinstance(action, EmitEvent):
        data = " ".join(f"{key}={value}" for key, value in action.data.items())
        return f"[event {action.name}{' ' + data if data else ''}]"
    return None


class Simulator:
    """A session plus a clock plus a transcript. ``transfer_answered`` decides transfer results."""

    def __init__(
        self,
        flow: Flow,
        variables: Mapping[str, Any] | None = None,
        now: datetime | None = None,
        transfer_answered: bool = True,
    ) -> None:
        self.now = now or datetime(2026, 3, 2, 10, 0, tzinfo=flow_zone(flow))
        self.session = FlowSession(flow, variables, self.now)
        self.transfer_answered = transfer_answered
        self.transcript: list[tuple[str, str]] = []

    @property
    def finished(self) -> bool:
        return self.session.finished

    def start(self) -> list[str]:
        return self._execute(self.session.start(self.now))

    def turn(self, text: str, confidence: float = 0.9) -> list[str]:
        """One caller turn; returns the bot lines it caused."""
        self.transcript.append(("caller", text))
        self.now += TURN_TIME
        return self._feed(self._events(text.strip(), confidence))

    def _events(self, text: str, confidence: float) -> list[Event]:
        if text == "/silence":
            return [NoInput()]
        if text == "/hangup":
            return [CallerHangUp()]
        if text.startswith("#"):
            return [DtmfDigit(key) for key in text[1:] if not key.isspace()]
        return [Recognition(text, confidence)]

    def _feed(self, events: Iterable[Event]) -> list[str]:
        lines: list[str] = []
        keyed = False
        for event in events:
            if self.session.finished:
                break
            keyed = isinstance(event, DtmfDigit)
            lines += self._execute(self.session.handle(event, self.now))
        listen = self.session.listen
        if keyed and listen is not None and self.session.keys_pending:
            self.now += timedelta(seconds=listen.dtmf.inter_digit_timeout_s)
            lines += self._execute(self.session.handle(NoInput(), self.now))
        return lines

    def _execute(self, actions: list[Action]) -> list[str]:
        lines: list[str] = []
        pending = list(actions)
        while pending:
            action = pending.pop(0)
            line = describe(action)
            if line is not None:
                lines.append(line)
                self.transcript.append(("bot", line))
            if isinstance(action, Play):
                self.session.handle(PromptFinished(interrupted=False), self.now)
            elif isinstance(action, Transfer):
                self.now += TURN_TIME
                result = TransferResult(self.transfer_answered, "" if self.transfer_answered else "no answer")
                pending.extend(self.session.handle(result, self.now))
        return lines


def flow_zone(flow: Flow) -> Any:
    """The first calendar's time zone (simulated calls happen in the flow's local time), else UTC."""
    for calendar in flow.business_hours.values():
        return calendar.timezone
    return UTC
