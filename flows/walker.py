"""Walking the steps of a flow: the state of one conversation, the template context, entering
steps (entry effects, prompts, then the one way on) until the flow waits, and transfers.

:class:`~flows.session.FlowSession` builds on this with the protocol and the caller's turns.
Nothing here reads a clock, a socket or a file (template rendering reads a monotonic clock for
its time budget only).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config.logs import log_event
from flows.actions import (
    Action,
    EmitEvent,
    HangUp,
    Listen,
    PauseRecording,
    Play,
    ResumeRecording,
    SetOutcome,
    Transfer,
)
from flows.answers import Answer
from flows.errors import FlowRuntimeError
from flows.events import TransferResult
from flows.model import Flow, Step
from flows.templates import evaluate, render, value_of

MAX_HOPS = 200
FLOW_ERROR_PROMPT = "Sorry, something went wrong on our side. Please call again later. Goodbye."
FLOW_ERROR_OUTCOME = "flow_error"
_LOGGER = logging.getLogger("ivr.flows")


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


class StepWalker:
    """The state of one conversation and the steps it walks. Not thread-safe.

    ``variables`` are merged over the flow's declared defaults (nested mappings key by key),
    e.g. ``{"contact": {...}, "caller": {"number": ...}, "call": {"id": ...}}``.
    """

    def __init__(
        self, flow: Flow, variables: Mapping[str, Any] | None = None, now: datetime | None = None
    ) -> None:
        self.flow = flow
        self.variables: dict[str, Any] = _merge(copy.deepcopy(flow.variables), variables or {})
        for name in ("contact", "caller", "call"):
            self.variables.setdefault(name, {})
        self.variables.setdefault("heard", "")
        self.variables.setdefault("last_intent", "")
        self.outcome = ""
        self.finished = False
        self.step = ""
        self.started_at = now
        self.recording_paused = False
        self.barge_ins = 0
        self._state = "idle"  # idle | listening | confirming | transferring | done
        self._no_input = 0
        self._no_match = 0
        self._digits = ""
        self._pending: Answer | None = None  # the answer being confirmed
        self._check = ""  # how it is being confirmed (flows.confirmation)
        self._waiting: Listen | None = None
        self._spoken: list[Play] = []
        self._question: list[Play] = []
        self._now = now or datetime.now(UTC)
        self._zone = _callee_zone(self.variables.get("contact"))

    @property
    def local_today(self) -> date:
        """The callee's date (``contact.timezone`` when known, else UTC): "tomorrow" is theirs."""
        now = self._now if self._now.tzinfo is not None else self._now.replace(tzinfo=UTC)
        return now.astimezone(self._zone).date()

    def _abort(self, exc: FlowRuntimeError, out: list[Action]) -> None:
        """End the call politely: what was said so far stands, then an apology and a hang-up."""
        log_event(
            "flow_runtime_error",
            logging.ERROR,
            _LOGGER,
            flow=self.flow.metadata.name,
            step=self.step,
            error=str(exc),
        )
        out[:] = [action for action in out if not isinstance(action, Listen | Transfer)]
        self._play(FLOW_ERROR_PROMPT, False, [], out)
        self._hang_up(FLOW_ERROR_OUTCOME, out)

    @property
    def state(self) -> str:
        return self._state

    @property
    def keys_pending(self) -> bool:
        """Keys were pressed and the step waits for more (send ``NoInput`` after the pause)."""
        return bool(self._digits) and self._state == "listening"

    @property
    def listen(self) -> Listen | None:
        """What the session is waiting for, if it is waiting for the caller."""
        return self._waiting if self._state in ("listening", "confirming") else None

    def jump(self, name: str, now: datetime) -> list[Action]:
        """Leave the current step for step ``name`` (a supervision alert's action): an answer
        being waited for or confirmed is dropped; unknown steps and finished flows do nothing."""
        if self.finished or name not in self.flow.steps:
            return []
        self._now = now
        self._state, self._pending, self._check, self._waiting = "idle", None, "", None
        out: list[Action] = []
        try:
            self._run(name, out)
        except FlowRuntimeError as exc:
            self._abort(exc, out)
        return out

    # -- running steps ----------------------------------------------------------------------

    def context(self) -> dict[str, Any]:
        """What templates see: the variables plus time and calendar helpers for ``now``."""
        now = self._now
        calendars = self.flow.business_hours

        def is_open(name: str) -> bool:
            return name in calendars and calendars[name].is_open(now)

        def is_holiday(name: str) -> bool:
            return name in calendars and calendars[name].is_holiday(now)

        return {
            **self.variables,
            "now": now,
            "today": self.local_today.isoformat(),
            "outcome": self.outcome,
            "is_open": is_open,
            "is_holiday": is_holiday,
        }

    def _run(self, name: str, out: list[Action]) -> None:
        """Enter ``name`` and keep going through steps that need no answer."""
        for _ in range(MAX_HOPS):
            step = self.flow.steps[name]
            self.step = name
            self._no_input = self._no_match = 0
            self._digits = ""
            self._spoken = []
            self._question = []
            context = self._effects(step, out)
            barge_in = self.flow.metadata.barge_in if step.barge_in is None else step.barge_in
            for text in step.say:
                self._play(render(text, context), barge_in, self._spoken, out)
            if step.ask is not None:
                for text in step.ask.prompt:
                    self._play(render(text, context), barge_in, self._question, out)
                self._spoken.extend(self._question)
                self._listen(out)
                return
            if step.branch:
                name = next(
                    (c.goto for c in step.branch if c.condition is None or evaluate(c.condition, context)),
                    step.branch[-1].goto,
                )
            elif step.transfer is not None:
                self._state = "transferring"
                out.append(Transfer(render(step.transfer.target, context), step.name))
                return
            elif step.hangup is not None:
                self._hang_up(step.hangup or self.outcome or "completed", out)
                return
            else:
                name = step.next
        raise FlowRuntimeError(f"flow '{self.flow.metadata.name}': {MAX_HOPS} steps in a row without waiting")

    def _effects(self, step: Step, out: list[Action]) -> dict[str, Any]:
        context = self.context()
        for var, raw in step.set:
            self.variables[var] = context[var] = value_of(raw, context)
        if step.record == "pause" and not self.recording_paused:
            self.recording_paused = True
            out.append(PauseRecording())
        elif step.record == "resume" and self.recording_paused:
            self.recording_paused = False
            out.append(ResumeRecording())
        if step.outcome is not None:
            self._set_outcome(step.outcome, out)
            context["outcome"] = self.outcome
        for emit in step.emit:
            data = {key: value_of(value, context) for key, value in emit.data.items()}
            out.append(EmitEvent(emit.name, data))
        return context

    def _play(self, text: str, barge_in: bool, into: list[Play], out: list[Action]) -> None:
        if text:
            play = Play(text, barge_in, self.step)
            into.append(play)
            out.append(play)

    def _listen(self, out: list[Action]) -> None:
        self._state = "listening"
        self._digits = ""
        self._wait(self.flow.listens[self.step], out)

    def _wait(self, listen: Listen, out: list[Action]) -> None:
        self._waiting = listen
        out.append(listen)

    def _repeat(self, plays: list[Play], out: list[Action]) -> None:
        out.extend(plays)
        self._listen(out)

    def _set_outcome(self, outcome: str, out: list[Action]) -> None:
        if outcome != self.outcome:
            self.outcome = outcome
            out.append(SetOutcome(outcome))

    def _hang_up(self, outcome: str, out: list[Action]) -> None:
        self._set_outcome(outcome, out)
        out.append(HangUp(outcome))
        self._finish(outcome)

    def _finish(self, outcome: str) -> None:
        self.outcome = outcome
        self.finished = True
        self._state = "done"

    def _transfer_result(self, event: TransferResult, out: list[Action]) -> None:
        step = self.flow.steps.get(self.step)
        if self._state != "transferring" or step is None or step.transfer is None:
            return
        if event.success:
            self._finish(self.outcome or "transferred")
        else:
            self.variables["transfer_failure"] = event.reason
            self._run(step.transfer.on_failure, out)


def _callee_zone(contact: Any) -> tzinfo:
    name = contact.get("timezone") if isinstance(contact, Mapping) else None
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ValueError, ZoneInfoNotFoundError, OSError):
            pass  # an unknown zone must not break the call: dates fall back to UTC
    return UTC
