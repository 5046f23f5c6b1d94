"""Parsing one step of a flow file into a :class:`~flows.model.Step`.

A step is: entry effects (``set``, ``record``, ``outcome``, ``emit``), prompts (``say``), then
exactly one way on: ``ask``, ``branch``, ``transfer``, ``hangup``, ``next``/``goto``,
``subflow`` or (inside an included file) ``return``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flows.model import BranchCase, EmitSpec, Intent, Ref, Step, TransferSpec
from flows.questions import VARIABLE_NAME, parse_ask
from flows.schema import Reader
from flows.yaml_source import MarkedDict, MarkedList, Pos

STEP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
TERMINALS = ("ask", "branch", "transfer", "hangup", "subflow", "return")
ASK_KEYS = (
    "intents",
    "slot",
    "save_as",
    "yes",
    "no",
    "other",
    "confirm",
    "confirm_prompt",
    "confirm_negative_prompt",
    "no_input",
    "no_match",
    "help",
    "max_no_input",
    "max_no_match",
    "timeout",
    "vocabulary",
    "globals",
)
STEP_KEYS = (
    "say",
    "barge_in",
    "set",
    "record",
    "outcome",
    "emit",
    "next",
    "goto",
    "on_failure",
    "description",
    *TERMINALS,
    *ASK_KEYS,
)


@dataclass(frozen=True)
class TemplateUse:
    """A template or expression found in the file, checked once every name is known."""

    text: str
    file: str
    pos: Pos
    where: str
    expression: bool = False


@dataclass
class StepContext:
    """What parsing a step needs from the file around it."""

    prefix: str
    globals: tuple[Intent, ...]
    include: Callable[[str, Pos, str, str], str | None]
    return_to: str | None = None
    templates: list[TemplateUse] = field(default_factory=list)
    defined: set[str] = field(default_factory=set)


def parse_step(reader: Reader, name: str, raw: Any, pos: Pos, ctx: StepContext) -> Step | None:
    where = f"steps.{name}"
    if not STEP_NAME.match(name):
        reader.report(pos, f"{where}: invalid step name (use letters, digits, _ and -)")
    if not isinstance(raw, MarkedDict):
        reader.report(pos, f"{where}: expected a mapping of step keys (say, ask, next, ...)")
        return None
    reader.check_keys(raw, STEP_KEYS, where)
    refs: list[Ref] = []

    def ref(data: MarkedDict, key: str, label: str) -> str:
        target = reader.text(data, key, label)
        if not target:
            return ""
        line, col = data.where_value(key)
        full = ctx.prefix + target
        refs.append(Ref(full, reader.file, line, col, label))
        return full

    def template(text: str, at: Pos, label: str, expression: bool = False) -> str:
        ctx.templates.append(TemplateUse(text, reader.file, at, label, expression))
        return text

    present = [key for key in TERMINALS if key in raw]
    next_key = "next" if "next" in raw else "goto" if "goto" in raw else ""
    if "next" in raw and "goto" in raw:
        reader.report(raw.where_key("goto"), f"{where}: has both next and goto (they mean the same)")
    if len(present) > 1:
        reader.report(
            raw.where_key(present[1]),
            f"{where}: has both {present[0]} and {present[1]}; "
            "a step has one way on (split it into two steps)",
        )
    elif present and present[0] in ("branch", "transfer", "hangup", "return") and next_key:
        reader.report(raw.where_key(next_key), f"{where}: {next_key} cannot follow {present[0]}")
    if "ask" not in raw:
        for key in ASK_KEYS:
            if key in raw:
                reader.report(raw.where_key(key), f"{where}: '{key}' is only allowed in an ask step")
    if "on_failure" in raw and not {"ask", "transfer"} & raw.keys():
        reader.report(raw.where_key("on_failure"), f"{where}: on_failure needs an ask or transfer step")

    say = reader.texts(raw, "say", where)
    if "say" in raw:
        say_pos = raw.where_value("say")
        if not say or any(not text.strip() for text in say):
            reader.report(say_pos, f"{where}.say: missing prompt text")
        for text in say:
            template(text, say_pos, f"{where}.say")
    assignments = _parse_set(reader, raw, where, ctx, template)
    record = reader.choice(raw, "record", where, ("pause", "resume"), "") if "record" in raw else ""
    outcome = reader.text(raw, "outcome", where) if "outcome" in raw else None
    emits = _parse_emit(reader, raw, where, template)
    barge_in = reader.boolean(raw, "barge_in", where, True) if "barge_in" in raw else None

    next_step = ref(raw, next_key, f"{where}.{next_key}") if next_key else ""
    ask = branch = transfer = None
    hangup: str | None = None
    if "ask" in raw:
        ask = parse_ask(
            reader,
            raw,
            where,
            globals_=ctx.globals,
            defined=ctx.defined,
            ref=ref,
            template=template,
            next_step=next_step,
        )
    elif "branch" in raw:
        branch = _parse_branch(reader, raw, where, ref, template)
    elif "transfer" in raw:
        target = reader.text(raw, "transfer", where)
        if not target:
            reader.report(raw.where_value("transfer"), f"{where}.transfer: missing queue or SIP URI")
        template(target, raw.where_value("transfer"), f"{where}.transfer")
        if "on_failure" not in raw:
            reader.report(
                raw.where_key("transfer"),
                f"{where}: transfer needs on_failure (the step to run when no one answers)",
            )
        transfer = TransferSpec(target, ref(raw, "on_failure", f"{where}.on_failure"))
    elif "hangup" in raw:
        value = raw["hangup"]
        hangup = "" if value is True or value is None else reader.text(raw, "hangup", where)
    elif "subflow" in raw:
        if not next_key:
            reader.report(raw.where_key("subflow"), f"{where}: subflow needs next (where to go on return)")
        entry = ctx.include(
            reader.text(raw, "subflow", where), raw.where_value("subflow"), ctx.prefix + name, next_step
        )
        if entry:
            line, col = raw.where_value("subflow")
            refs.append(Ref(entry, reader.file, line, col, f"{where}.subflow"))
        next_step = entry or ""
    elif "return" in raw:
        if ctx.return_to is None:
            reader.report(raw.where_key("return"), f"{where}: return is only allowed in a subflow file")
        else:
            next_step = ctx.return_to
            line, col = raw.where_key("return")
            refs.append(Ref(next_step, reader.file, line, col, f"{where}.return"))
    if not present and not next_key:
        reader.report(pos, f"{where}: step has no way out: add next, ask, branch, transfer or hangup")

    return Step(
        name=ctx.prefix + name,
        file=reader.file,
        line=pos[0],
        col=pos[1],
        set=assignments,
        record=record,
        outcome=outcome,
        emit=emits,
        say=say,
        barge_in=barge_in,
        ask=ask,
        branch=branch or (),
        transfer=transfer,
        hangup=hangup,
        next=next_step,
        refs=tuple(refs),
    )


def _parse_set(
    reader: Reader, raw: MarkedDict, where: str, ctx: StepContext, template: Callable[..., str]
) -> tuple[tuple[str, Any], ...]:
    values = reader.mapping(raw, "set", where)
    if values is None:
        return ()
    out: list[tuple[str, Any]] = []
    for var, value in values.items():
        if not VARIABLE_NAME.match(var):
            reader.report(values.where_key(var), f"{where}.set: invalid variable name '{var}'")
        ctx.defined.add(var)
        if isinstance(value, str):
            template(value, values.where_value(var), f"{where}.set.{var}")
        out.append((var, value))
    return tuple(out)


def _parse_emit(
    reader: Reader, raw: MarkedDict, where: str, template: Callable[..., str]
) -> tuple[EmitSpec, ...]:
    value = raw.get("emit")
    if value is None:
        return ()
    items = value if isinstance(value, MarkedList) else [value]
    out: list[EmitSpec] = []
    for index, item in enumerate(items):
        at = items.where(index) if isinstance(items, MarkedList) else raw.where_value("emit")
        if isinstance(item, str) and item:
            out.append(EmitSpec(item, {}))
        elif isinstance(item, MarkedDict):
            reader.check_keys(item, ("event", "data"), f"{where}.emit")
            event = reader.text(item, "event", f"{where}.emit")
            if not event:
                reader.report(at, f"{where}.emit: missing event name")
            data = reader.mapping(item, "data", f"{where}.emit") or MarkedDict()
            for key, val in data.items():
                if isinstance(val, str):
                    template(val, data.where_value(key), f"{where}.emit.data.{key}")
            out.append(EmitSpec(event, dict(data)))
        else:
            reader.report(at, f"{where}.emit: expected an event name or {{event: NAME, data: {{...}}}}")
    return tuple(out)


def _parse_branch(
    reader: Reader,
    raw: MarkedDict,
    where: str,
    ref: Callable[[MarkedDict, str, str], str],
    template: Callable[..., str],
) -> tuple[BranchCase, ...]:
    cases = raw["branch"]
    if not isinstance(cases, MarkedList) or not cases:
        reader.report(
            raw.where_value("branch"),
            f"{where}.branch: expected a list of {{if: CONDITION, goto: STEP}} ending with {{else: STEP}}",
        )
        return ()
    out: list[BranchCase] = []
    for index, case in enumerate(cases):
        label = f"{where}.branch[{index}]"
        if not isinstance(case, MarkedDict):
            reader.report(
                cases.where(index), f"{label}: expected {{if: CONDITION, goto: STEP}} or {{else: STEP}}"
            )
            continue
        if "else" in case:
            reader.check_keys(case, ("else",), label)
            out.append(BranchCase(None, ref(case, "else", f"{label}.else")))
            if index != len(cases) - 1:
                reader.report(cases.where(index), f"{label}: else must be the last case")
            continue
        reader.check_keys(case, ("if", "goto"), label)
        condition = reader.text(case, "if", label)
        if not condition:
            reader.report(cases.where(index), f"{label}: missing if condition")
        else:
            template(condition, case.where_value("if"), f"{label}.if", True)
        if "goto" not in case:
            reader.report(cases.where(index), f"{label}: missing goto")
        out.append(BranchCase(condition, ref(case, "goto", f"{label}.goto")))
    if out and out[-1].condition is not None:
        reader.report(raw.where_key("branch"), f"{where}.branch: needs a final {{else: STEP}} case")
    return tuple(out)
