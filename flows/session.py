"""One call walking one flow: a sans-I/O state machine, ``handle(event, now) -> actions``.

The session never reads a clock, a socket or a file (template rendering reads a monotonic
clock for its time budget only). The call feeds it events with the current time and executes
the returned actions in order (see ``docs/flows.md``). A flow that
cannot go on (a template past its limits, steps that never wait) never raises into the call:
the caller hears an apology and the session hangs up with outcome ``flow_error``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config.logs import log_event
from flows import slots
from flows.actions import (
    Action,
    DtmfSettings,
    EmitEvent,
    HangUp,
    Listen,
    PauseRecording,
    Play,
    ResumeRecording,
    SetOutcome,
    Transfer,
)
from flows.answers import Answer, interpret
from flows.errors import FlowRuntimeError
from flows.events import (
    CallerHangUp,
    CallStarted,
    DtmfDigit,
    Event,
    NoInput,
    PromptFinished,
    Recognition,
    TransferResult,
)
from flows.model import Flow, Intent, Step
from flows.templates import evaluate, render, value_of

MAX_HOPS = 200
FLOW_ERROR_PROMPT = "Sorry, something went wrong on our side. Please call again later. Goodbye."
FLOW_ERROR_OUTCOME = "flow_error"
_LOGGER = logging.getLogger("ivr.flows")
_CONFIRM_LISTEN = Listen(
    step="",
    phrases=slots.YES_NO_PHRASES,
    open_vocabulary=False,
    dtmf=DtmfSettings(max_digits=1),
    slot="yes_no",
)


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


class FlowSession:
    """The state of one conversation. Not thread-safe: feed it from one task.

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
        self._pending: Answer | None = None
        self._spoken: list[Play] = []
        self._question: list[Play] = []
        self._now = now or datetime.now(UTC)
        self._zone = _callee_zone(self.variables.get("contact"))

    @property
    def local_today(self) -> date:
        """The callee's date (``contact.timezone`` when known, else UTC): "tomorrow" is theirs."""
        now = self._now if self._now.tzinfo is not None else self._now.replace(tzinfo=UTC)
        return now.astimezone(self._zone).date()

    # -- public protocol ------------------------------------------------------------------

    def start(self, now: datetime) -> list[Action]:
        """The call is answered: run from the start step until the flow waits for something."""
        if self._state != "idle" or self.finished:
            return []
        self._now = now
        self.started_at = self.started_at or now
        out: list[Action] = []
        try:
            self._run(self.flow.start, out)
        except FlowRuntimeError as exc:
            self._abort(exc, out)
        return out

    def handle(self, event: Event, now: datetime) -> list[Action]:
        """Feed one event; returns the actions to execute, in order."""
        self._now = now
        if isinstance(event, CallStarted):
            return self.start(now)
        if self.finished:
            return []
        out: list[Action] = []
        try:
            self._dispatch(event, out)
        except FlowRuntimeError as exc:
            self._abort(exc, out)
        return out

    def _dispatch(self, event: Event, out: list[Action]) -> None:
        if isinstance(event, PromptFinished):
            self.barge_ins += int(event.interrupted)
        elif isinstance(event, CallerHangUp):
            self._finish(self.outcome or self.flow.settings.hangup_outcome)
        elif isinstance(event, TransferResult):
            self._transfer_result(event, out)
        elif self._state in ("listening", "confirming"):
            if isinstance(event, Recognition):
                self._recognition(event, out)
            elif isinstance(event, DtmfDigit):
                self._key(event.digit, out)
            elif isinstance(event, NoInput):
                self._no_input_event(out)

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
        if self._state == "confirming":
            return _CONFIRM_LISTEN
        return self.flow.listens.get(self.step) if self._state == "listening" else None

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
        out.append(self.flow.listens[self.step])

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

    # -- answers ------------------------------------------------------------------------------

    def _recognition(self, event: Recognition, out: list[Action]) -> None:
        text = event.text.strip()
        settings = self.flow.settings
        if not text or not event.in_grammar or event.confidence < settings.reject_below:
            self._failed("no_match", out)
            return
        self.variables["heard"] = text
        if self._state == "confirming":
            yes = slots.parse_yes_no(text)
            match = self.flow.matchers[self.step].match(text) if yes is None else None
            if match is not None and match.is_global and match.score >= 0.8:
                self._apply(Answer("global", match.intent.name, match.intent, match.intent.label), out)
            else:
                self._confirmation(yes, out)
            return
        answer = interpret(self.flow, self.step, text, self.local_today)
        if answer is None:
            self._failed("no_match", out)
            return
        ask = self.flow.steps[self.step].ask
        assert ask is not None
        if answer.kind == "global" and answer.intent is not None and answer.intent.action != "goto":
            self._apply(answer, out)
        elif (ask.confirm == "always" and answer.kind == "slot") or (
            ask.confirm != "never" and event.confidence < settings.confirm_below
        ):
            self._confirm(answer, out)
        else:
            self._apply(answer, out)

    def _key(self, digit: str, out: list[Action]) -> None:
        if self._state == "confirming":
            if digit in ("1", "2"):
                self._confirmation(digit == "1", out)
            elif not self._global_key(digit, out):
                self._failed("no_match", out)
            return
        ask = self.flow.steps[self.step].ask
        assert ask is not None
        slot = ask.slot
        if slot is not None and slot.dtmf_is_data:
            is_data = digit.isdigit() or (digit == "*" and slot.type == "currency")
            if digit == "#":
                self._keys_done(out)
            elif is_data:
                self._digits += digit
                if len(self._digits) >= self.flow.listens[self.step].dtmf.max_digits:
                    self._keys_done(out)
            elif not self._digits and self._global_key(digit, out):
                return
            else:
                self._failed("no_match", out)
            return
        for intent in ask.intents:
            if intent.dtmf == digit:
                self._apply(Answer("intent", intent.name, intent, intent.label or intent.name), out)
                return
        if self._global_key(digit, out):
            return
        if slot is not None and slot.type == "yes_no" and digit in ("1", "2"):
            self._apply(Answer("slot", digit == "1", label="yes" if digit == "1" else "no"), out)
            return
        self._failed("no_match", out)

    def _global_key(self, digit: str, out: list[Action]) -> bool:
        for intent in self._active_globals():
            if intent.dtmf == digit:
                self._apply(Answer("global", intent.name, intent, intent.label), out)
                return True
        return False

    def _active_globals(self) -> tuple[Intent, ...]:
        ask = self.flow.steps[self.step].ask
        allowed = None if ask is None else ask.globals
        return tuple(g for g in self.flow.globals if allowed is None or g.name in allowed)

    def _keys_done(self, out: list[Action]) -> None:
        ask = self.flow.steps[self.step].ask
        assert ask is not None and ask.slot is not None
        keys, self._digits = self._digits, ""
        value = slots.parse_keys(ask.slot, keys) if keys else None
        if value is None:
            self._failed("no_match", out)
            return
        answer = Answer("slot", value, label=slots.describe(ask.slot, value))
        if ask.confirm == "always":
            self._confirm(answer, out)
        else:
            self._apply(answer, out)

    def _no_input_event(self, out: list[Action]) -> None:
        if self._state == "listening" and self._digits:
            ask = self.flow.steps[self.step].ask
            if ask is not None and ask.slot is not None and ask.slot.dtmf_is_data:
                self._keys_done(out)
                return
            self._failed("no_match", out)
            return
        self._failed("no_input", out)

    # -- confirmation, failure, applying -----------------------------------------------------

    def _confirm(self, answer: Answer, out: list[Action]) -> None:
        ask = self.flow.steps[self.step].ask
        assert ask is not None
        self._pending = answer
        self._state = "confirming"
        context = {**self.context(), "heard": answer.label}
        self._play(render(ask.confirm_prompt or self.flow.settings.confirm_prompt, context), True, [], out)
        out.append(_CONFIRM_LISTEN)

    def _confirmation(self, yes: bool | None, out: list[Action]) -> None:
        pending, self._pending = self._pending, None
        if yes and pending is not None:
            self._apply(pending, out)
        elif yes is None:
            self._failed("no_match", out)
        else:
            self._state = "listening"
            self._no_match += 1
            if self._escalate("no_match", out):
                return
            self._play(self.flow.settings.confirm_rejected_prompt, True, [], out)
            self._repeat(self._question, out)

    def _failed(self, kind: str, out: list[Action]) -> None:
        """A no-input or no-match: reprompt with escalating wording, or give up after N."""
        self._pending = None
        self._state = "listening"
        self._digits = ""
        if kind == "no_input":
            self._no_input += 1
        else:
            self._no_match += 1
        if self._escalate(kind, out):
            return
        ask = self.flow.steps[self.step].ask
        assert ask is not None
        settings = self.flow.settings
        own = ask.no_input_prompts if kind == "no_input" else ask.no_match_prompts
        prompts = own or (settings.no_input_prompts if kind == "no_input" else settings.no_match_prompts)
        count = self._no_input if kind == "no_input" else self._no_match
        self._play(render(prompts[min(count, len(prompts)) - 1], self.context()), True, [], out)
        # A step's own reprompts are complete questions; the short flow-wide ones are
        # followed by the question again.
        self._repeat([] if own else self._question, out)

    def _escalate(self, kind: str, out: list[Action]) -> bool:
        ask = self.flow.steps[self.step].ask
        assert ask is not None
        settings = self.flow.settings
        limit = (
            (ask.max_no_input or settings.max_no_input)
            if kind == "no_input"
            else (ask.max_no_match or settings.max_no_match)
        )
        if (self._no_input if kind == "no_input" else self._no_match) < limit:
            return False
        self.variables["failure"] = kind
        target = ask.on_failure or settings.on_failure
        if target:
            self._run(target, out)
        else:
            self._play(render(settings.failure_prompt, self.context()), True, [], out)
            self._hang_up(settings.failure_outcome, out)
        return True

    def _repeat(self, plays: list[Play], out: list[Action]) -> None:
        out.extend(plays)
        self._listen(out)

    def _apply(self, answer: Answer, out: list[Action]) -> None:
        step = self.flow.steps[self.step]
        ask = step.ask
        assert ask is not None
        self._state = "listening"
        if answer.kind == "global" and answer.intent is not None:
            self.variables["last_intent"] = answer.intent.name
            if answer.intent.action == "repeat":
                self._repeat(self._spoken, out)
            elif answer.intent.action == "help":
                context = self.context()
                self._play(render(ask.help or self.flow.settings.help_prompt, context), True, [], out)
                self._repeat(self._question, out)
            else:
                self._run(answer.intent.goto, out)
            return
        if answer.kind == "intent" and answer.intent is not None:
            self.variables["last_intent"] = answer.intent.name
            if ask.save_as:
                self.variables[ask.save_as] = answer.intent.name
            self._run(answer.intent.goto, out)
            return
        if ask.save_as:
            self.variables[ask.save_as] = answer.value
        if answer.kind == "other":
            self._run(ask.other, out)
        elif ask.yes and ask.no and isinstance(answer.value, bool):
            self._run(ask.yes if answer.value else ask.no, out)
        else:
            self._run(ask.next, out)


def _callee_zone(contact: Any) -> tzinfo:
    name = contact.get("timezone") if isinstance(contact, Mapping) else None
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ValueError, ZoneInfoNotFoundError, OSError):
            pass  # an unknown zone must not break the call: dates fall back to UTC
    return UTC
