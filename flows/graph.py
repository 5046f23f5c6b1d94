"""The step graph of a flow: its edges, the one walk every whole-flow check uses
(:func:`reachable`), and ``flows graph`` (a Mermaid flowchart for reviews and documentation).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable

from flows.model import Ask, Flow, Step

# Characters that end or re-open a quoted Mermaid label, or start an entity or markdown string:
# written as Mermaid entity codes (``#quot;``, ``#35;``...) so a label shows what the YAML says.
_UNSAFE = re.compile(r'["<>{}\[\]|#;`&]')


def reachable(starts: Iterable[str], neighbours: Callable[[str], Iterable[str]]) -> set[str]:
    """Every node reached from ``starts`` (included) by following ``neighbours``, breadth first."""
    seen = set(starts)
    queue = deque(seen)
    while queue:
        for node in neighbours(queue.popleft()):
            if node not in seen:
                seen.add(node)
                queue.append(node)
    return seen


def successors(flow: Flow, step: Step) -> list[str]:
    """Every existing step ``step`` can lead to: its own references, the global intents active
    at its question and the flow-wide ``on_failure``."""
    targets = step.targets()
    if step.ask is not None:
        targets.extend(
            g.goto
            for g in flow.globals
            if g.goto and (step.ask.globals is None or g.name in step.ask.globals)
        )
        if not step.ask.on_failure and flow.settings.on_failure:
            targets.append(flow.settings.on_failure)
    return [t for t in targets if t in flow.steps]


def onward(step: Step) -> list[str]:
    """Where a step goes without waiting for the caller: none for a question or a hang-up."""
    if step.ask is not None or step.hangup is not None:
        return []
    if step.branch:
        return [case.goto for case in step.branch]
    if step.transfer is not None:
        return [step.transfer.on_failure]
    return [step.next] if step.next else []


def answer_targets(ask: Ask) -> list[tuple[str, str]]:
    """``(label, step)`` for each way the caller's own answer to ``ask`` can go (not globals)."""
    edges = [
        (intent.name + (f" / {intent.dtmf}" if intent.dtmf else ""), intent.goto) for intent in ask.intents
    ]
    edges += [(label, target) for label, target in (("yes", ask.yes), ("no", ask.no), ("other", ask.other))]
    if ask.next:
        edges.append(("answer", ask.next))
    return [(label, target) for label, target in edges if target]


def _id(name: str) -> str:
    return "s_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def _label(text: str, limit: int = 48) -> str:
    """Label text safe inside Mermaid's double quotes: one line, cut to ``limit`` characters
    before escaping (so an entity code is never cut in half)."""
    text = " ".join(text.split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return _UNSAFE.sub(lambda match: f"#{ord(match.group())};", text)


def _edge_label(text: str) -> str:
    """An edge label, always quoted: unquoted, ``is_open('x')`` breaks Mermaid's parser."""
    return f'|"{_label(text, 32)}"|'


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
        edges += [(target, label) for label, target in answer_targets(ask)]
        if ask.on_failure:
            edges.append((ask.on_failure, "failure"))
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
                arrow = f"-->{_edge_label(label)}" if label else "-->"
                lines.append(f"    {_id(step.name)} {arrow} {_id(target)}")
    active = [g for g in flow.globals if g.goto in flow.steps]
    if active:
        lines.append('    globals{{"any question"}}')
        for intent in active:
            key = f" / {intent.dtmf}" if intent.dtmf else ""
            lines.append(f"    globals -.->{_edge_label(intent.name + key)} {_id(intent.goto)}")
    if flow.settings.on_failure in flow.steps:
        lines.append(f"    globals -.->{_edge_label('too many failures')} {_id(flow.settings.on_failure)}")
    return "\n".join(lines) + "\n"
