"""``flows graph``: a Mermaid flowchart of a flow, for reviews and documentation."""

from __future__ import annotations

import re

from flows.model import Flow, Step

_UNSAFE = re.compile(r'["<>{}\[\]|#;`]')


def _id(name: str) -> str:
    return "s_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def _label(text: str, limit: int = 48) -> str:
    text = _UNSAFE.sub("", " ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _node(step: Step) -> str:
    title = step.name
    if step.ask is not None:
        detail = step.ask.prompt[0] if step.ask.prompt else ""
        return f'{_id(step.name)}[/"{_label(title)}: {_label(detail)}"/]'
    if step.branch:
        return f'{_id(step.name)}{{"{_label(title)}"}}'
    if step.hangup is not None:
        return f'{_id(step.name)}(["{_label(title)}: hang up {_label(step.hangup or "")}"])'
    if step.transfer is not None:
        return f'{_id(step.name)}[["{_label(title)}: transfer {_label(step.transfer.target)}"]]'
    detail = step.say[0] if step.say else ""
    return f'{_id(step.name)}["{_label(title)}{": " + _label(detail) if detail else ""}"]'


def _edges(step: Step) -> list[tuple[str, str]]:
    """(target, label) pairs leaving a step."""
    edges: list[tuple[str, str]] = []
    ask = step.ask
    if ask is not None:
        for intent in ask.intents:
            key = f" / {intent.dtmf}" if intent.dtmf else ""
            edges.append((intent.goto, intent.name + key))
        for target, label in (
            (ask.yes, "yes"),
            (ask.no, "no"),
            (ask.other, "other"),
            (ask.next, "answer"),
            (ask.on_failure, "failure"),
        ):
            if target:
                edges.append((target, label))
    for case in step.branch:
        edges.append((case.goto, "else" if case.condition is None else case.condition))
    if step.transfer is not None:
        edges.append((step.transfer.on_failure, "no answer"))
    if step.next and ask is None:
        edges.append((step.next, ""))
    return edges


def to_mermaid(flow: Flow) -> str:
    lines = ["flowchart TD", f'    start(("{_label(flow.metadata.name)}")) --> {_id(flow.start)}']
    lines += [f"    {_node(step)}" for step in flow.steps.values()]
    for step in flow.steps.values():
        for target, label in _edges(step):
            if target in flow.steps:
                arrow = f"-->|{_label(label, 32)}|" if label else "-->"
                lines.append(f"    {_id(step.name)} {arrow} {_id(target)}")
    active = [g for g in flow.globals if g.goto in flow.steps]
    if active:
        lines.append('    globals{{"any question"}}')
        for intent in active:
            key = f" / {intent.dtmf}" if intent.dtmf else ""
            lines.append(f"    globals -.->|{_label(intent.name + key, 32)}| {_id(intent.goto)}")
    if flow.settings.on_failure in flow.steps:
        lines.append(f"    globals -.->|too many failures| {_id(flow.settings.on_failure)}")
    return "\n".join(lines) + "\n"
