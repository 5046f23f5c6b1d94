"""Whole-flow checks that need every step parsed first: references, reachability, ways out,
loops that never wait for the caller, negative outcomes reached unconfirmed
(:mod:`flows.outcomes`), template names, and templates that pass their size or time limits on
sample data.
"""

from __future__ import annotations

import re

import jinja2

from flows.errors import Problem
from flows.graph import reachable, successors
from flows.model import Flow, Ref, Step
from flows.outcomes import Declared, outcome_problems
from flows.schema import did_you_mean
from flows.steps import TemplateUse
from flows.templates import BUILTIN_NAMES, ENV, is_template, limit_problem, referenced_names

_CALENDAR_CALL = re.compile(r"\bis_(?:open|holiday)\(\s*['\"]([^'\"]*)['\"]")


def validate_flow(
    flow: Flow,
    templates: list[TemplateUse],
    defined: set[str],
    extra_refs: list[Ref],
    negative: Declared | None = None,
) -> list[Problem]:
    """Every problem (errors and warnings); ``negative`` is the ``negative_outcomes`` declared."""
    problems: list[Problem] = []
    steps = flow.steps
    for ref in [*extra_refs, *(r for s in steps.values() for r in s.refs)]:
        if ref.target not in steps:
            problems.append(_missing(ref, steps))
    if flow.start in steps:
        problems.extend(_unreachable(flow))
        problems.extend(_no_way_out(flow))
        problems.extend(_busy_loops(flow))
    problems.extend(outcome_problems(flow, negative))
    problems.extend(_templates(flow, templates, defined))
    return problems


def _missing(ref: Ref, steps: dict[str, Step]) -> Problem:
    prefix, _, local = ref.target.rpartition("/")
    head = prefix + "/" if prefix else ""
    candidates = [
        name[len(head) :] for name in steps if name.startswith(head) and "/" not in name[len(head) :]
    ]
    return Problem(
        ref.file, ref.line, ref.col, f"{ref.what}: unknown step '{local}'{did_you_mean(local, candidates)}"
    )


def _unreachable(flow: Flow) -> list[Problem]:
    seen = reachable([flow.start], lambda name: successors(flow, flow.steps[name]))
    return [
        Problem(
            step.file,
            step.line,
            step.col,
            f"step '{name}' is unreachable: nothing leads to it from the start step '{flow.start}'",
        )
        for name, step in flow.steps.items()
        if name not in seen
    ]


def _no_way_out(flow: Flow) -> list[Problem]:
    """Steps from which no path ever hangs up or transfers: the caller would be trapped."""
    incoming: dict[str, list[str]] = {name: [] for name in flow.steps}
    for name, step in flow.steps.items():
        for target in successors(flow, step):
            incoming[target].append(name)
    exits = [
        name
        for name, step in flow.steps.items()
        if step.hangup is not None
        or step.transfer is not None
        or (step.ask is not None and not step.ask.on_failure and not flow.settings.on_failure)
    ]
    can_end = reachable(exits, incoming.__getitem__)
    return [
        Problem(
            step.file,
            step.line,
            step.col,
            f"step '{name}' has no way out: no path from it ever hangs up or transfers",
        )
        for name, step in flow.steps.items()
        if name not in can_end and step.kind != "none"
    ]


def _busy_loops(flow: Flow) -> list[Problem]:
    """Cycles of plain ``next`` steps: the session would spin without waiting for anyone."""
    problems: list[Problem] = []
    reported: set[str] = set()
    for start in flow.steps:
        path: list[str] = []
        name = start
        while name in flow.steps and flow.steps[name].kind == "next" and name not in path:
            path.append(name)
            name = flow.steps[name].next
        if name in path and name not in reported:
            loop = path[path.index(name) :]
            reported.update(loop)
            step = flow.steps[name]
            problems.append(
                Problem(
                    step.file,
                    step.line,
                    step.col,
                    f"steps {' -> '.join([*loop, name])} loop forever without asking the caller anything",
                )
            )
    return problems


def _templates(flow: Flow, templates: list[TemplateUse], defined: set[str]) -> list[Problem]:
    known = defined | BUILTIN_NAMES | set(flow.variables) | set(ENV.globals)
    problems: list[Problem] = []
    for use in templates:
        if not use.expression and not is_template(use.text):
            continue
        line, col = use.pos
        try:
            names, attrs = referenced_names(use.text, use.expression)
        except jinja2.TemplateSyntaxError as exc:
            problems.append(
                Problem(use.file, line, col, f"{use.where}: template syntax error: {exc.message}")
            )
            continue
        for name in sorted(names - known):
            problems.append(
                Problem(
                    use.file,
                    line,
                    col,
                    f"{use.where}: template variable '{name}' is never "
                    f"defined{did_you_mean(name, known - set(ENV.globals))}",
                )
            )
        for name, attr in attrs:
            declared = flow.variables.get(name)
            if isinstance(declared, dict) and attr not in declared:
                problems.append(
                    Problem(
                        use.file,
                        line,
                        col,
                        f"{use.where}: template variable '{name}.{attr}' is "
                        f"not declared in variables.{name}{did_you_mean(attr, declared)}",
                    )
                )
        over = limit_problem(use.text, use.expression, flow.variables)
        if over is not None:
            problems.append(Problem(use.file, line, col, f"{use.where}: {over} (with sample data)"))
        for calendar in _CALENDAR_CALL.findall(use.text):
            if calendar not in flow.business_hours:
                problems.append(
                    Problem(
                        use.file,
                        line,
                        col,
                        f"{use.where}: unknown business_hours '{calendar}'"
                        f"{did_you_mean(calendar, flow.business_hours)}",
                    )
                )
    return problems
