"""Whether the session confirms an answer before acting on it, how, and what the reply means.

Three kinds of check (pure functions; the session plays and listens):

- ``READ_BACK``: "I think you said {{ heard }}. Is that right?" (``confirm_prompt``) for a
  recognition below ``confirm_below`` (``confirm: auto`` or ``always``), and for every slot value
  with ``confirm: always``.
- ``ASK_AGAIN``: an answer to a yes/no question that leads to a negative outcome
  (:mod:`flows.outcomes`). The question is asked once more (the step's
  ``confirm_negative_prompt``, or ``ask_again_prompt`` followed by the question): the same
  answer twice takes effect, the other answer goes its own way, anything else is a no-match.
- ``DOUBLE_CHECK``: any other answer that leads to a negative outcome (an intent, a slot
  value, a global intent such as ``do_not_call``): "Just to be sure: you want to {{ heard }}?
  Please say yes or no." (the step's ``confirm_negative_prompt``, or ``confirm_negative_prompt``
  of the settings). Yes, or the same answer again, takes effect; no asks the question again.

A negative answer is checked unless its step says ``confirm: never``; a global intent that
leads to a negative outcome is checked at every question.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flows import slots
from flows.actions import DtmfSettings, Listen
from flows.answers import Answer, answer_target, interpret
from flows.keys import NO_KEY, YES_KEY, active_globals, global_for_key, read_key
from flows.model import Ask, Flow

READ_BACK = "read_back"
ASK_AGAIN = "ask_again"
DOUBLE_CHECK = "double_check"
GLOBAL_WHILE_CONFIRMING = 0.8  # a global intent interrupts a confirmation only when clearly said
CONFIRM_LISTEN = Listen(
    step="",
    phrases=slots.YES_NO_PHRASES,
    open_vocabulary=False,
    dtmf=DtmfSettings(max_digits=1),
    slot="yes_no",
)


@dataclass(frozen=True)
class Reply:
    """What the caller said to a check: ``yes`` (``None``: unclear), or a new ``answer``."""

    yes: bool | None = None
    answer: Answer | None = None


def _ask(flow: Flow, step: str) -> Ask:
    ask = flow.steps[step].ask
    assert ask is not None
    return ask


def leads_to_negative(flow: Flow, step: str, answer: Answer) -> bool:
    """The answer would reach a negative outcome without another question."""
    return answer_target(_ask(flow, step), answer) in flow.negative_steps


def check_for(flow: Flow, step: str, answer: Answer, confidence: float, *, keyed: bool) -> str:
    """The check ``answer`` needs before it takes effect ("" for none)."""
    ask = _ask(flow, step)
    if answer.kind == "global" and answer.intent is not None and answer.intent.action != "goto":
        return ""  # repeat and help change nothing
    if leads_to_negative(flow, step, answer) and (answer.kind == "global" or ask.confirm != "never"):
        yes_no = answer.kind == "slot" and ask.slot is not None and ask.slot.type == "yes_no"
        return ASK_AGAIN if yes_no else DOUBLE_CHECK
    slot = ask.slot if answer.kind == "slot" else None
    if slot is not None and ask.confirm == "always" and (not keyed or slot.dtmf_is_data):
        return READ_BACK  # a slot value read back (a yes/no key needs none)
    if not keyed and ask.confirm in ("auto", "always") and confidence < flow.settings.confirm_below:
        return READ_BACK
    return ""


def check_prompt(flow: Flow, step: str, answer: Answer, check: str) -> tuple[str, bool]:
    """``(template, followed by the question again)`` for a check; the template sees ``heard``."""
    ask = _ask(flow, step)
    settings = flow.settings
    if check == READ_BACK:
        return ask.confirm_prompt or settings.confirm_prompt, False
    own = "" if answer.kind == "global" else ask.confirm_negative_prompt
    if check == ASK_AGAIN:
        return (own, False) if own else (settings.ask_again_prompt, True)
    return own or settings.confirm_negative_prompt, False


def check_listen(flow: Flow, step: str, answer: Answer, check: str) -> Listen:
    """What to listen for during a check."""
    if check == READ_BACK:
        return CONFIRM_LISTEN
    listen = flow.listens[step]
    if check == ASK_AGAIN:
        return listen
    phrases = [*slots.YES_NO_PHRASES, *(answer.intent.phrases if answer.intent is not None else ())]
    for intent in active_globals(flow, step):
        phrases.extend(intent.phrases)
    return Listen(
        step=step,
        phrases=tuple(dict.fromkeys(phrases)),
        open_vocabulary=False,
        dtmf=DtmfSettings(max_digits=1, inter_digit_timeout_s=listen.dtmf.inter_digit_timeout_s),
        no_input_timeout_s=listen.no_input_timeout_s,
        slot="yes_no",
    )


def read_reply(flow: Flow, step: str, pending: Answer, check: str, text: str, *, today: date) -> Reply:
    """A recognition during a check."""
    if check == ASK_AGAIN:
        answer = interpret(flow, step, text, today)
        return Reply() if answer is None else _same_or_new(flow, step, pending, answer)
    yes = slots.parse_yes_no(text)
    if yes is not None:
        return Reply(yes)
    match = flow.matchers[step].match(text)
    if match is None:
        return Reply()
    if pending.intent is not None and match.intent == pending.intent:
        return Reply(True)  # the same request again
    if match.is_global and match.score >= GLOBAL_WHILE_CONFIRMING:
        return Reply(answer=Answer("global", match.intent.name, match.intent, match.intent.label))
    return Reply()


def read_reply_key(flow: Flow, step: str, pending: Answer, check: str, digit: str) -> Reply:
    """A key during a check: 1 yes, 2 no (at ``ASK_AGAIN``: the question's own keys)."""
    if check == ASK_AGAIN:
        answer = read_key(flow, step, "", digit).answer
        return Reply() if answer is None else _same_or_new(flow, step, pending, answer)
    if digit in (YES_KEY, NO_KEY):
        return Reply(digit == YES_KEY)
    answer = global_for_key(flow, step, digit)
    if answer is None:
        return Reply()
    if pending.intent is not None and answer.intent == pending.intent:
        return Reply(True)
    return Reply(answer=answer)


def _same_or_new(flow: Flow, step: str, pending: Answer, answer: Answer) -> Reply:
    ask = _ask(flow, step)
    if answer_target(ask, answer) == answer_target(ask, pending):
        return Reply(True)
    return Reply(answer=answer)
