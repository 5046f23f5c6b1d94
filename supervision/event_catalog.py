"""Every MQTT topic the engine publishes, and the JSON Schema of its messages (docs/events.md).

The schemas are files in ``supervision/event_schemas/`` so a consumer (a dashboard, a console,
a test) can validate against exactly what is documented. Topics are written relative to
``mqtt.topic_prefix`` with ``+`` for one level (the call id, the campaign).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parent / "event_schemas"

TOPICS: tuple[tuple[str, str], ...] = (
    ("call/+/connected", "call_connected"),
    ("call/+/ended", "call_ended"),
    ("call/+/qa", "call_qa"),
    ("call/+/flow_event", "call_flow_event"),
    ("call/+/step", "call_step"),
    ("call/+/transcript", "call_transcript"),
    ("call/+/alert", "call_alert"),
    ("call/+/supervision", "call_supervision"),
    ("call/+/transferring", "call_transferring"),
    ("call/+/transferred", "call_transfer_result"),
    ("call/+/transfer_failed", "call_transfer_result"),
    ("dialer/intake/+/result", "intake_result"),
    ("dialer/+/attempt", "dialer_attempt"),
    ("dialer/+/outcome", "dialer_attempt"),
    ("dialer/+/expired", "dialer_expired"),
    ("dialer/+/paused", "dialer_paused"),
)
"""(topic pattern, schema name), first match wins."""


def schema_name(topic: str, prefix: str = "") -> str | None:
    """The schema of a published ``topic`` (with ``prefix``, e.g. ``ivr``, stripped), or None."""
    levels = topic.removeprefix(f"{prefix.strip('/')}/" if prefix else "").split("/")
    for pattern, name in TOPICS:
        wanted = pattern.split("/")
        if len(wanted) == len(levels) and all(w in ("+", got) for w, got in zip(wanted, levels, strict=True)):
            return name
    return None


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema ``name`` (a file of :data:`SCHEMA_DIR`), parsed once."""
    path = SCHEMA_DIR / f"{name}.json"
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema
