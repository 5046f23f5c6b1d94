"""The call page's transcript column as plain data: turns and recording pauses in time order,
with the silences between turns shown as gaps (an auditor asks "how long did the caller wait?").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from recordings.sidecar import Pause, Turn

GAP_S = 2.0
"""A silence between two turns at least this long is shown as its own line."""


@dataclass(frozen=True)
class TimelineItem:
    kind: str
    """``turn``, ``pause`` (recording paused, e.g. around a card number) or ``gap`` (silence)."""
    start_s: float
    end_s: float | None
    speaker: str = ""
    text: str = ""
    confidence: float | None = None
    interrupted: bool = False

    @property
    def clock(self) -> str:
        """``m:ss.s`` of the start, as the player shows time."""
        minutes, seconds = divmod(max(0.0, self.start_s), 60)
        return f"{int(minutes)}:{seconds:04.1f}"

    @property
    def length_s(self) -> float | None:
        return None if self.end_s is None else max(0.0, self.end_s - self.start_s)


def timeline(turns: Sequence[Turn], pauses: Sequence[Pause], gap_s: float = GAP_S) -> list[TimelineItem]:
    """Turns and pauses sorted by start; a gap wherever no one spoke for ``gap_s`` or more
    (and no pause explains the silence)."""
    items = [
        TimelineItem("turn", t.start_s, t.end_s, t.speaker, t.text, t.confidence, t.interrupted)
        for t in turns
    ]
    items += [TimelineItem("pause", p.start_s, p.end_s, text=p.reason) for p in pauses]
    items.sort(key=lambda item: (item.start_s, item.kind != "pause"))
    out: list[TimelineItem] = []
    spoken_until: float | None = None
    for item in items:
        if item.kind == "turn" and spoken_until is not None and item.start_s - spoken_until >= gap_s:
            out.append(TimelineItem("gap", spoken_until, item.start_s))
        out.append(item)
        end = item.end_s if item.end_s is not None else item.start_s
        spoken_until = end if spoken_until is None else max(spoken_until, end)
    return out
