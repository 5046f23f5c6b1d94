"""``chat``: talk to a flow in the terminal, no phone needed.

Type words as the caller; ``#123`` presses keys, ``/silence`` is no input, ``/hangup`` ends
the call, ``/vars`` shows the variables, ``/quit`` leaves. ``0.4: words`` sets the recognizer's
confidence for one turn. Works with stdin from a pipe (the prompt is only shown on a terminal).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from flows.model import Flow
from flows.simulator import Simulator

_CONFIDENCE = re.compile(r"^(0(?:\.\d+)?|1(?:\.0+)?):\s*(.*)$")


def run_chat(
    flow: Flow,
    lines: Iterable[str],
    write: Callable[[str], None],
    *,
    variables: Mapping[str, Any] | None = None,
    now: datetime | None = None,
    prompt: Callable[[], None] | None = None,
) -> Simulator:
    """Play ``flow`` against caller ``lines``; every output line goes through ``write``."""
    sim = Simulator(flow, variables, now)
    write(
        f"[flow {flow.metadata.name} v{flow.metadata.version}: type words, #digits, /silence, /hangup, /quit]"
    )
    for line in sim.start():
        write(f"bot: {line}")
    iterator = iter(lines)
    while not sim.finished:
        if prompt is not None:
            prompt()
        raw = next(iterator, None)
        if raw is None:
            raw = "/hangup"
        text = raw.strip()
        if not text:
            continue
        if text == "/quit":
            break
        if text == "/vars":
            write(json.dumps(sim.session.variables, default=str, sort_keys=True))
            continue
        confidence = 0.9
        match = _CONFIDENCE.match(text)
        if match:
            confidence, text = float(match.group(1)), match.group(2)
        for line in sim.turn(text, confidence):
            write(f"bot: {line}")
    write(f"[outcome {sim.session.outcome or '(none)'}]")
    return sim
