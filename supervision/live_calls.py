"""The console's live calls view, folded from the MQTT call events (docs/events.md). Pure.

Feed every message of ``<prefix>/call/#`` to :meth:`LiveCalls.apply` with ``now``; :meth:`view`
lists the calls in progress: flow and step, elapsed time, the last transcript lines (and the
caller's partial result being spoken), the alerts, and a supervisor's mode. An ended call stays
``linger_s`` seconds (marked ended) so a team lead sees how it finished, then leaves the view.

The broker is shared, so a message is checked before it counts: an unknown topic, a payload
that is not an object, or a field of the wrong type is counted in :attr:`rejected` and changes
nothing. Lines and alerts per call are bounded, and so is the number of calls tracked.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

MAX_CALLS = 2000
"""Calls tracked at most; a flood of fake ``connected`` events evicts the oldest ended ones first."""


@dataclass
class LiveCall:
    call_id: str
    flow: str = ""
    direction: str = ""
    remote: str = ""
    started: datetime | None = None
    step: str = ""
    lines: deque[dict[str, object]] = field(default_factory=lambda: deque(maxlen=8))
    partial: str = ""
    alerts: deque[dict[str, object]] = field(default_factory=lambda: deque(maxlen=20))
    supervisor_mode: str = ""
    ended: datetime | None = None
    outcome: str = ""

    def to_json(self, now: datetime) -> dict[str, object]:
        end = self.ended or now
        elapsed = (end - self.started).total_seconds() if self.started else 0.0
        return {
            "call_id": self.call_id,
            "flow": self.flow,
            "direction": self.direction,
            "remote": self.remote,
            "step": self.step,
            "elapsed_s": round(max(0.0, elapsed), 1),
            "lines": list(self.lines),
            "partial": self.partial,
            "alerts": list(self.alerts),
            "supervisor_mode": self.supervisor_mode,
            "ended": self.ended is not None,
            "outcome": self.outcome,
        }


class LiveCalls:
    """See the module docstring; ``prefix`` is ``mqtt.topic_prefix``."""

    def __init__(self, prefix: str = "ivr", *, max_lines: int = 8, linger_s: float = 30.0) -> None:
        self.prefix = prefix.strip("/")
        self.max_lines = max_lines
        self.linger_s = linger_s
        self.calls: dict[str, LiveCall] = {}
        self.rejected = 0

    def apply(self, topic: str, payload: object, now: datetime) -> str | None:
        """Fold one message in; returns the id of the call it changed (None: ignored)."""
        levels = topic.split("/")
        base = self.prefix.split("/")
        if len(levels) != len(base) + 3 or levels[: len(base)] != base or levels[len(base)] != "call":
            self.rejected += 1
            return None
        call_id, event = levels[-2], levels[-1]
        if not isinstance(payload, Mapping) or not call_id:
            self.rejected += 1
            return None
        try:
            changed = self._apply(call_id, event, payload, now)
        except (TypeError, ValueError):
            self.rejected += 1
            return None
        self._expire(now)
        return call_id if changed else None

    def view(self, now: datetime) -> list[dict[str, object]]:
        """The calls in progress (and those ended within ``linger_s``), oldest first."""
        self._expire(now)
        calls = sorted(self.calls.values(), key=lambda c: (c.started or now, c.call_id))
        return [call.to_json(now) for call in calls]

    # -- folding ----------------------------------------------------------------------------
    def _apply(self, call_id: str, event: str, payload: Mapping[str, object], now: datetime) -> bool:
        if event == "connected":
            flow, direction = _text(payload, "flow"), _text(payload, "direction")
            remote = _text(payload, "remote")
            call = self.calls.get(call_id) or self._store(LiveCall(call_id))
            call.flow, call.direction, call.remote = flow, direction, remote
            call.started = call.started or now
            return True
        known = self.calls.get(call_id)
        if known is None:
            if event not in ("step", "transcript", "alert"):
                return False
            joined = LiveCall(call_id, started=now)  # joined mid-call: what we see from now on
            self._fold(joined, event, payload, now)  # raises before anything is stored
            self._store(joined)
            return True
        return self._fold(known, event, payload, now)

    def _fold(self, call: LiveCall, event: str, payload: Mapping[str, object], now: datetime) -> bool:
        if event == "step":
            call.step = _text(payload, "step")
        elif event == "transcript":
            self._line(call, payload)
        elif event == "alert":
            call.alerts.append(
                {
                    "rule": _text(payload, "rule"),
                    "severity": _text(payload, "severity"),
                    "evidence": _text(payload, "evidence"),
                    "at_s": _number(payload, "at_s"),
                }
            )
        elif event == "supervision":
            mode = payload.get("mode")
            call.supervisor_mode = mode if isinstance(mode, str) else ""
        elif event == "ended":
            call.ended = now
            call.outcome = _text(payload, "outcome")
            call.partial = ""
        else:
            return False
        return True

    def _line(self, call: LiveCall, payload: Mapping[str, object]) -> None:
        speaker, kind, text = _text(payload, "speaker"), _text(payload, "kind"), _text(payload, "text")
        if kind == "partial":
            call.partial = text
            return
        if kind != "final":
            raise ValueError(f"transcript kind {kind!r}")
        if speaker == "caller":
            call.partial = ""
        if call.lines.maxlen != self.max_lines:
            call.lines = deque(call.lines, maxlen=self.max_lines)
        call.lines.append({"speaker": speaker, "text": text, "end_s": _number(payload, "end_s")})

    def _store(self, call: LiveCall) -> LiveCall:
        if len(self.calls) >= MAX_CALLS:
            oldest = min(
                self.calls.values(),
                key=lambda c: (c.ended is None, c.started.timestamp() if c.started else math.inf),
            )
            del self.calls[oldest.call_id]
        self.calls[call.call_id] = call
        return call

    def _expire(self, now: datetime) -> None:
        gone = [
            cid
            for cid, call in self.calls.items()
            if call.ended is not None and (now - call.ended).total_seconds() > self.linger_s
        ]
        for cid in gone:
            del self.calls[cid]


def _text(payload: Mapping[str, object], key: str) -> str:
    value = payload.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"{key} is not text")
    return value[:2000]


def _number(payload: Mapping[str, object], key: str) -> float:
    value = payload.get(key, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{key} is not a number")
    return float(value)
