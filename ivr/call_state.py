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
from supervision.supervisor_modes import ROUTES, Mode


@dataclass
class CallState:
    """See the module docstring; ``out`` and ``now`` are replaced on every ``handle``."""

    call_id: str
    flow: FlowSession
    now: float
    wall_offset: float  # time.time() - time.monotonic()
    flow_started: bool = False
    flow_started_at: float | None = None
    """``now`` when the flow started (its first prompt was asked for)."""
    gone: bool = False
    """The far end is gone: nothing is played or sent any more."""
    hangup_requested: bool = False
    """Someone wants the call over: BYE goes out once no prompt is busy."""
    out: list[Command] = field(default_factory=list)
    """The commands of the current ``handle``, in order."""
    flow_inbox: deque[FlowEvent] = field(default_factory=deque)
    """Events for the flow, fed to it at the end of the current ``handle``."""
    supervisor_mode: Mode | None = None
    """A supervisor's mode on the call (:mod:`supervision.supervisor_modes`); None: nobody."""
    bot_left: bool = False
    """A supervisor took the call over: no prompt, flow step or recognition for good."""

    @property
    def bot_paused(self) -> bool:
        """The bot neither speaks, listens nor runs the flow (barge, or taken over)."""
        return self.bot_left or not ROUTES[self.supervisor_mode].bot_active

    def utc(self) -> datetime:
        """``now`` on the wall clock, for the flow (calling hours, ``callback_at``)."""
        return datetime.fromtimestamp(self.now + self.wall_offset, UTC)
