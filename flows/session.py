"""One call walking one flow: a sans-I/O state machine, ``handle(event, now) -> actions``.

The session never reads a clock, a socket or a file (template rendering reads a monotonic
clock for its time budget only). The call feeds it events with the current time and executes
the returned actions in order (see ``docs/flows.md``). A flow that
cannot go on (a template past its limits, steps that never wait) never raises into the call:
the caller hears an apology and the session hangs up with outcome ``flow_error``.

Walking the steps (effects, prompts, transfers) is :class:`~flows.walker.StepWalker`; this
module adds the protocol and the caller's turns. What an utterance means is decided in
:mod:`flows.answers`, what a key means in :mod:`flows.keys`, and whether an answer is
confirmed first (a low confidence, a read-back, an answer that leads to a negative outcome) in
:mod:`flows.confirmation`.
"""

from __future__ import annotations

from datetime import datetime

from flows.actions import Action
from flows.answers import Answer, answer_target, interpret
from flows.confirmation import Reply, check_for, check_listen, check_prompt, read_reply, read_reply_key
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
from flows.keys import KeyRead, finish_keys, read_key
from flows.outcomes import HONOURED_ON_HANGUP, negative_outcome
from flows.templates import render
from flows.walker import FLOW_ERROR_OUTCOME, FLOW_ERROR_PROMPT, MAX_HOPS, StepWalker

__all__ = ["FLOW_ERROR_OUTCOME", "FLOW_ERROR_PROMPT", "MAX_HOPS", "FlowSession"]


class FlowSession(StepWalker):
    """One conversation: feed it events with ``handle(event, now)``, execute the actions it
    returns. Not thread-safe: feed it from one task."""

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
            self._finish(self.outcome or self._honoured_on_hangup() or self.flow.settings.hangup_outcome)
        elif isinstance(event, TransferResult):
            self._transfer_result(event, out)
        elif self._state in ("listening", "confirming"):
            if isinstance(event, Recognition):
                self._recognition(event, out)
            elif isinstance(event, DtmfDigit):
                self._key(event.digit, out)
            elif isinstance(event, NoInput):
                self._no_input_event(out)

    def _honoured_on_hangup(self) -> str:
        """A do-not-call request being double-checked when the caller hangs up takes effect;
        any other pending negative answer does not (:data:`flows.outcomes.HONOURED_ON_HANGUP`)."""
        ask = self.flow.steps[self.step].ask if self.step in self.flow.steps else None
        if self._state != "confirming" or self._pending is None or ask is None:
            return ""
        outcome, _ = negative_outcome(self.flow, answer_target(ask, self._pending))
        return outcome if outcome in HONOURED_ON_HANGUP else ""

    # -- answers ------------------------------------------------------------------------------

    def _recognition(self, event: Recognition, out: list[Action]) -> None:
        text = event.text.strip()
        if not text or not event.in_grammar or event.confidence < self.flow.settings.reject_below:
            self._failed("no_match", out)
            return
        self.variables["heard"] = text
        if self._state == "confirming" and self._pending is not None:
            reply = read_reply(self.flow, self.step, self._pending, self._check, text, today=self.local_today)
            self._replied(reply, event.confidence, False, out)
            return
        answer = interpret(self.flow, self.step, text, self.local_today)
        if answer is None:
            self._failed("no_match", out)
        else:
            self._take(answer, event.confidence, False, out)

    def _key(self, digit: str, out: list[Action]) -> None:
        if self._state == "confirming" and self._pending is not None:
            reply = read_reply_key(self.flow, self.step, self._pending, self._check, digit)
            self._replied(reply, 1.0, True, out)
            return
        read = read_key(self.flow, self.step, self._digits, digit)
        self._digits = read.digits
        self._keys_read(read, out)

    def _keys_read(self, read: KeyRead, out: list[Action]) -> None:
        if read.answer is not None:
            self._take(read.answer, 1.0, True, out)
        elif read.no_match:
            self._failed("no_match", out)

    def _no_input_event(self, out: list[Action]) -> None:
        if self._state == "listening" and self._digits:  # a pause ends a key entry
            digits, self._digits = self._digits, ""
            self._keys_read(finish_keys(self.flow, self.step, digits), out)
        else:
            self._failed("no_input", out)

    # -- confirmation, failure, applying -----------------------------------------------------

    def _take(self, answer: Answer, confidence: float, keyed: bool, out: list[Action]) -> None:
        """An answer was given: confirm it first if it needs a check, else act on it."""
        check = check_for(self.flow, self.step, answer, confidence, keyed=keyed)
        if check:
            self._confirm(answer, check, out)
        else:
            self._apply(answer, out)

    def _confirm(self, answer: Answer, check: str, out: list[Action]) -> None:
        self._pending, self._check, self._state = answer, check, "confirming"
        template, then_question = check_prompt(self.flow, self.step, answer, check)
        context = {**self.context(), "heard": answer.label}
        self._play(render(template, context), True, [], out)
        if then_question:
            out.extend(self._question)
        self._wait(check_listen(self.flow, self.step, answer, check), out)

    def _replied(self, reply: Reply, confidence: float, keyed: bool, out: list[Action]) -> None:
        if reply.answer is not None:
            self._pending = None
            self._take(reply.answer, confidence, keyed, out)
        else:
            self._confirmation(reply.yes, out)

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

    def _apply(self, answer: Answer, out: list[Action]) -> None:
        ask = self.flow.steps[self.step].ask
        assert ask is not None
        self._state = "listening"
        self._pending = None
        if answer.kind == "global" and answer.intent is not None:
            self.variables["last_intent"] = answer.intent.name
            if answer.intent.action == "repeat":
                self._repeat(self._spoken, out)
                return
            if answer.intent.action == "help":
                self._play(render(ask.help or self.flow.settings.help_prompt, self.context()), True, [], out)
                self._repeat(self._question, out)
                return
        elif answer.kind == "intent" and answer.intent is not None:
            self.variables["last_intent"] = answer.intent.name
            if ask.save_as:
                self.variables[ask.save_as] = answer.intent.name
        elif ask.save_as:
            self.variables[ask.save_as] = answer.value
        self._run(answer_target(ask, answer), out)
