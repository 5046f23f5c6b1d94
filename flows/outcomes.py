"""Negative outcomes: the business outcomes no single unconfirmed answer may reach.

A flow declares them at the top level, ``negative_outcomes: [declined, do_not_call]``: the
outcomes that stop or cancel something for good (an order declined, a number put on the
do-not-call list). An answer that leads to one, directly or through steps that ask nothing, is
double-checked by the session before it takes effect (:mod:`flows.confirmation`). This module
finds those steps and reports flows that would still act on one answer: a question with
``confirm: never`` whose answer leads to a negative outcome (a warning), a declared outcome no
step sets (an error: a typo would switch the safety off), and, in a flow that declares nothing,
an outcome whose name looks negative (a warning; ``negative_outcomes: []`` says there is none).
"""

from __future__ import annotations

import re

from flows.errors import Problem
from flows.graph import answer_targets, onward, reachable
from flows.model import Flow, Step
from flows.schema import did_you_mean
from flows.yaml_source import Pos

Declared = list[tuple[str, Pos]]
"""``negative_outcomes`` as written: each name and where it stands."""

HONOURED_ON_HANGUP = frozenset({"do_not_call"})
"""Negative outcomes that still take effect when the caller hangs up while we double-check
them (issue 14): a do-not-call request, because not calling again is the side to err on. A
decline is never among them: it cancels what the customer bought, so it needs their "yes"."""

LOOKS_NEGATIVE = re.compile(r"declin|cancel|do_not_call|opt(?:ed)?_?out|unsubscrib|refus|revok|withdr")


def set_by(step: Step) -> tuple[str, ...]:
    """The outcomes entering ``step`` sets (``outcome:`` and ``hangup: OUTCOME``)."""
    return tuple(outcome for outcome in (step.outcome, step.hangup) if outcome)


def negative_steps(flow: Flow) -> frozenset[str]:
    """Steps that set a negative outcome, or reach one through steps that ask nothing."""
    negative = set(flow.negative_outcomes)
    if not negative:
        return frozenset()
    setters = [name for name, step in flow.steps.items() if negative & set(set_by(step))]
    incoming: dict[str, list[str]] = {}
    for name, step in flow.steps.items():
        for target in onward(step):
            incoming.setdefault(target, []).append(name)
    return frozenset(reachable(setters, lambda name: incoming.get(name, ())))


def negative_outcome(flow: Flow, start: str) -> tuple[str, str]:
    """``(outcome, step that sets it)`` for the first negative outcome ``start`` reaches unasked."""
    negative = set(flow.negative_outcomes)
    seen = reachable([start], lambda name: onward(flow.steps[name]) if name in flow.steps else ())
    for name, step in flow.steps.items():
        hits = [outcome for outcome in set_by(step) if outcome in negative]
        if name in seen and hits:
            return hits[0], name
    return "", ""


def outcome_problems(flow: Flow, declared: Declared | None) -> list[Problem]:
    """Declared negative outcomes that nothing sets; answers that reach one unconfirmed."""
    if declared is None:
        return _undeclared(flow)
    problems: list[Problem] = []
    set_anywhere = {outcome for step in flow.steps.values() for outcome in set_by(step)}
    set_anywhere |= {flow.settings.failure_outcome, flow.settings.hangup_outcome}
    for outcome, (line, col) in declared:
        if outcome not in set_anywhere:
            problems.append(
                Problem(
                    str(flow.path),
                    line,
                    col,
                    f"negative_outcomes: no step sets the outcome '{outcome}'"
                    f"{did_you_mean(outcome, set_anywhere)}",
                )
            )
    negatives = negative_steps(flow)
    for step in flow.steps.values():
        ask = step.ask
        if ask is None or ask.confirm != "never":
            continue
        for label, target in answer_targets(ask):
            if target not in negatives:
                continue
            outcome, setter = negative_outcome(flow, target)
            problems.append(
                Problem(
                    step.file,
                    *ask.confirm_at,
                    f"steps.{_local(step.name)}.confirm: never, but the answer '{label}' leads to "
                    f"the negative outcome '{outcome}' (step '{_local(setter)}') on one unconfirmed "
                    "answer; use confirm: negative (double-check only that answer) or auto",
                    "warning",
                )
            )
    return problems


def _undeclared(flow: Flow) -> list[Problem]:
    """A flow without ``negative_outcomes``: outcomes named like one are probably one."""
    problems: list[Problem] = []
    reported: set[str] = set()
    for step in flow.steps.values():
        for outcome in set_by(step):
            if outcome in reported or not LOOKS_NEGATIVE.search(outcome):
                continue
            reported.add(outcome)
            problems.append(
                Problem(
                    step.file,
                    step.line,
                    step.col,
                    f"steps.{_local(step.name)}: outcome '{outcome}' looks negative, but the flow "
                    f"declares no negative_outcomes; add negative_outcomes: [{outcome}] so that "
                    "answers leading to it are double-checked (or negative_outcomes: [] if it is not)",
                    "warning",
                )
            )
    return problems


def _local(name: str) -> str:
    """A step's name as written in its own file (included steps are ``caller/step``)."""
    return name.rpartition("/")[2]
