"""What goes into and comes out of :class:`~ivr.call_core.CallCore`: small frozen dataclasses.

Inputs are what happened (frames crossed the bridge, a prompt was rendered and queued, the
recognizer answered, a digit arrived, the far end hung up); commands are what the adapter must
do (render and queue a prompt, stop playback, run recognizer work, write a transcript turn,
publish an event, send BYE). Times are ``time.monotonic()`` seconds unless a name says
otherwise; positions on the call's media clock end in ``_s``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ivr.media_bridge import BridgeRecord
from media.amd import Verdict
from media.frames import Frame
from media.pipeline import AsrFailed, AsrFinal, AsrPartial, AsrWork

# -- inputs ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connected:
    """The call is up: screen for a machine (outbound) or start the flow."""


@dataclass(frozen=True, slots=True)
class MediaDrained:
    """Frames that crossed the media bridge since the last drain, in order; ``frames[i]`` is
    ``records[i]`` decoded (silence where no audio arrived), decoded once for every consumer."""

    records: Sequence[BridgeRecord]
    frames: Sequence[Frame]


@dataclass(frozen=True, slots=True)
class PromptQueued:
    """The adapter rendered prompt ``prompt_id`` and queued its ``frames`` frames for playback."""

    prompt_id: int
    frames: int


@dataclass(frozen=True, slots=True)
class AsrResults:
    """What the recognizer returned for the work of a :class:`RunAsr`."""

    results: Sequence[AsrPartial | AsrFinal | AsrFailed]


@dataclass(frozen=True, slots=True)
class DigitReceived:
    digit: str
    method: str


@dataclass(frozen=True, slots=True)
class HangupRequested:
    """Someone outside the call wants it over (shutdown, drain timeout)."""

    reason: str


@dataclass(frozen=True, slots=True)
class FarEndGone:
    """SIP says the call is over; ``by_remote`` when the other side hung up."""

    by_remote: bool


@dataclass(frozen=True, slots=True)
class TransferUpdate:
    """The agent leg of a transfer answered (success), failed (reason), or hung up (left)."""

    success: bool = False
    reason: str = ""
    agent_left: bool = False


@dataclass(frozen=True, slots=True)
class Tick:
    """Only time has passed (a deadline from :meth:`CallCore.next_deadline` is due)."""


CoreEvent = (
    Connected
    | MediaDrained
    | PromptQueued
    | AsrResults
    | DigitReceived
    | HangupRequested
    | FarEndGone
    | TransferUpdate
    | Tick
)

# -- commands -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlayPrompt:
    """Render ``text`` and queue it on the bridge as ``prompt_id``; answer with :class:`PromptQueued`."""

    prompt_id: int
    text: str
    barge_in: bool
    step: str


@dataclass(frozen=True, slots=True)
class StopPlayback:
    """Drop every queued prompt frame now (barge-in, hang-up)."""


@dataclass(frozen=True, slots=True)
class RunAsr:
    """Run this recognizer work in order, off the loop; answer with :class:`AsrResults`."""

    work: Sequence[AsrWork]


@dataclass(frozen=True, slots=True)
class WriteTurn:
    """A transcript turn for the recording."""

    speaker: Literal["caller", "bot"]
    text: str
    start_s: float
    end_s: float
    confidence: float | None = None
    interrupted: bool = False
    """A bot prompt cut short by a barge-in or a hang-up (QA checks disclosures by it)."""
    latency: Mapping[str, float] | None = None
    """A bot reply to speech: speech end, end-of-turn decision, recognizer final, first frame."""


@dataclass(frozen=True, slots=True)
class SetRecording:
    """Pause (``paused``) or resume writing audio to the recording."""

    paused: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Publish:
    """An event for the outside world (``ivr/call/<id>/<event>``)."""

    event: str
    payload: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RaiseAlert:
    """A supervision alert fired (:mod:`supervision.alerts`): publish it on
    ``ivr/call/<id>/alert`` and store it with the recording."""

    payload: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class StartTransfer:
    """Ring ``target`` (queue name or SIP URI) and bridge it; answer with :class:`TransferUpdate`."""

    target: str


@dataclass(frozen=True, slots=True)
class SendHangup:
    """Send BYE: every prompt has finished (or been cut)."""


Command = (
    PlayPrompt
    | StopPlayback
    | RunAsr
    | WriteTurn
    | SetRecording
    | Publish
    | RaiseAlert
    | StartTransfer
    | SendHangup
)


@dataclass(frozen=True)
class CallSummary:
    """How the call went, for the recorder, the dialer and the logs: read once, at the end."""

    outcome: str
    flow_started: bool
    flow_variables: Mapping[str, object]
    answered_by: Verdict | None
    message_left: bool
    hangup_sent: bool
    flow_started_at: float | None = None
    """Monotonic ``now`` when the flow started; ``None`` when it never did."""
