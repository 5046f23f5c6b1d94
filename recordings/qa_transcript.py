"""A call as the QA rules see it: its turns in time order, their words normalized, its pauses.

Built from a :class:`~recordings.sidecar.Sidecar` or from the sidecar's JSON object as read
from disk (the batch judges the exact bytes it hashed), so the checks work on one shape.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from recordings.errors import RecordingError
from recordings.qa_matching import Phrase, clip, found_any, normalize
from recordings.sidecar import Sidecar


class QaInputError(RecordingError):
    """The sidecar data given to :func:`~recordings.qa_check.evaluate` is not a sidecar (a field is
    missing or wrong)."""


@dataclass(frozen=True)
class Span:
    """A stretch of the recording, seconds from its start."""

    start_s: float
    end_s: float

    def label(self) -> str:
        if abs(self.end_s - self.start_s) < 0.005:
            return f"{self.start_s:.2f}s"
        return f"{self.start_s:.2f}-{self.end_s:.2f}s"

    def to_json(self) -> dict[str, float]:
        return {"start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3)}


@dataclass(frozen=True)
class Turn:
    """One turn, with its words normalized once (:func:`~recordings.qa_matching.normalize`)."""

    position: int
    """Index in time order."""
    speaker: str
    text: str
    norm: str
    start_s: float
    end_s: float
    interrupted: bool | None
    """An explicit barge-in mark; ``None`` when the sidecar does not say."""

    @property
    def span(self) -> Span:
        return Span(self.start_s, self.end_s)

    @property
    def redacted(self) -> bool:
        return self.text.startswith("[redacted")

    def quote(self, limit: int = 60) -> str:
        return clip(self.text, limit)


@dataclass(frozen=True)
class Call:
    """What the rules judge: the call's outcome and flow, its turns in time order, its pauses."""

    call_id: str
    outcome: str
    flow_name: str
    flow_version: str
    turns: tuple[Turn, ...]
    pauses: tuple[Span, ...]

    def of(self, *speakers: str) -> list[Turn]:
        return [t for t in self.turns if t.speaker in speakers]

    def has_text(self, speaker: str) -> bool:
        """A track has a transcript when one of its turns has text."""
        return any(t.text.strip() for t in self.turns if t.speaker == speaker)

    def saying(self, speaker: str, *phrases: Phrase) -> list[Turn]:
        """The turns of ``speaker`` that say one of ``phrases``."""
        return [t for t in self.turns if t.speaker == speaker and found_any(phrases, t.norm)]


def call_from(sidecar: Sidecar | Mapping[str, Any]) -> Call:
    """The call of a sidecar; raises :class:`QaInputError` for a mapping that is not a sidecar."""
    if isinstance(sidecar, Sidecar):
        raw_turns: list[_RawTurn] = [
            (t.speaker, t.text, t.start_s, t.end_s, t.interrupted or None) for t in sidecar.turns
        ]
        pauses = [(p.start_s, p.end_s) for p in sidecar.pauses]
        call_id, outcome = sidecar.call_id, sidecar.outcome
        flow_name, flow_version = sidecar.flow_name, sidecar.flow_version
        end = sidecar.duration_s
    else:
        call_id, outcome, flow_name, flow_version, raw_turns, pauses, end = _parse_mapping(sidecar)
    ordered = sorted(enumerate(raw_turns), key=lambda item: (item[1][2], item[0]))
    turns = tuple(
        Turn(pos, speaker, text, normalize(text), start, max(start, stop), mark)
        for pos, (_, (speaker, text, start, stop, mark)) in enumerate(ordered)
    )
    limit = end if end is not None else max((t.end_s for t in turns), default=0.0)
    spans = tuple(Span(start, limit if stop is None else stop) for start, stop in pauses)
    return Call(call_id, outcome, flow_name, flow_version, turns, spans)


_RawTurn = tuple[str, str, float, float, bool | None]


def _parse_mapping(
    raw: Mapping[str, Any],
) -> tuple[str, str, str, str, list[_RawTurn], list[tuple[float, float | None]], float | None]:
    def number(value: Any, where: str, optional: bool = False) -> float | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise QaInputError(f"sidecar {where}: expected a number, got {value!r:.40}")
        return float(value)

    def text(value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise QaInputError(f"sidecar {where}: expected text, got {value!r:.40}")
        return value

    turns: list[_RawTurn] = []
    raw_turns = raw.get("turns", [])
    if not isinstance(raw_turns, list):
        raise QaInputError("sidecar turns: expected a list")
    for index, item in enumerate(raw_turns):
        where = f"turns[{index}]"
        if not isinstance(item, Mapping):
            raise QaInputError(f"sidecar {where}: expected an object")
        mark = item.get("interrupted", item.get("barged_in"))
        turns.append(
            (
                text(item.get("speaker"), f"{where}.speaker"),
                text(item.get("text", ""), f"{where}.text"),
                number(item.get("start_s"), f"{where}.start_s") or 0.0,
                number(item.get("end_s"), f"{where}.end_s") or 0.0,
                mark if isinstance(mark, bool) else None,
            )
        )
    pauses: list[tuple[float, float | None]] = []
    raw_pauses = raw.get("pauses", [])
    if not isinstance(raw_pauses, list):
        raise QaInputError("sidecar pauses: expected a list")
    for index, item in enumerate(raw_pauses):
        if not isinstance(item, Mapping):
            raise QaInputError(f"sidecar pauses[{index}]: expected an object")
        start = number(item.get("start_s"), f"pauses[{index}].start_s") or 0.0
        pauses.append((start, number(item.get("end_s"), f"pauses[{index}].end_s", optional=True)))
    flow = raw.get("flow", {})
    flow = flow if isinstance(flow, Mapping) else {}
    return (
        str(raw.get("call_id", "")),
        str(raw.get("outcome") or ""),
        str(flow.get("name", "")),
        str(flow.get("version", "")),
        turns,
        pauses,
        number(raw.get("duration_s"), "duration_s", optional=True),
    )
