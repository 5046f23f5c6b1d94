"""What the parts of one call's core share: the call's facts, and what one ``handle`` produced.

:class:`~ivr.call_core.CallCore` runs a call with two parts, :class:`~ivr.call_media.CallMedia`
(the media clock: prompts, barge-in, listening, digits, the transcript) and
:class:`~ivr.call_actions.FlowActions` (the flow's actions and their results). All three read
and write one :class:`CallState`. Nothing in it touches I/O or reads a clock: ``now`` is the
time the adapter passed to ``handle``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flows import Event as FlowEvent
from flows import FlowSession
from ivr.call_vocabulary import Command


@dataclass
class CallState:
    """See the module docstring; ``out`` and ``now`` are replaced on every ``handle``."""

    call_id: str
    flow: FlowSession
    now: float
    wall_offset: float  # time.time() - time.monotonic()
    flow_started: bool = False
    gone: bool = False
    """The far end is gone: nothing is played or sent any more."""
    hangup_requested: bool = False
    """Someone wants the call over: BYE goes out once no prompt is busy."""
    out: list[Command] = field(default_factory=list)
    """The commands of the current ``handle``, in order."""
    flow_inbox: deque[FlowEvent] = field(default_factory=deque)
    """Events for the flow, fed to it at the end of the current ``handle``."""

    def utc(self) -> datetime:
        """``now`` on the wall clock, for the flow (calling hours, ``callback_at``)."""
        return datetime.fromtimestamp(self.now + self.wall_offset, UTC)
