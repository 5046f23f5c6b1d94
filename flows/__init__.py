"""Flow engine: YAML-defined multi-turn voice dialogues as a pure state machine.

The call side needs only this::

    from flows import load_flow, FlowSession, events, actions

    flow = load_flow("flows/library/hotline.yaml")      # raises FlowValidationError
    session = FlowSession(flow, {"contact": {...}, "caller": {"number": "+44..."}}, now)
    for action in session.start(now): ...                # Play, Listen, Transfer, HangUp, ...
    for action in session.handle(events.Recognition("my balance", 0.82), now): ...
    session.finished, session.outcome, session.variables

``Flow.metadata`` carries name, version, language, voice, rate and the barge-in default;
``Flow.static_prompts()`` lists prompts TTS can render ahead of calls. For ``serve``,
:class:`FlowRepository` hands out the current valid flow and reloads it when the file
changes. The protocol (which event to send when) is in ``docs/flows.md``.
"""

from flows import actions, events
from flows.actions import (
    Action,
    DtmfSettings,
    EmitEvent,
    HangUp,
    Listen,
    PauseRecording,
    Play,
    ResumeRecording,
    SetOutcome,
    Transfer,
)
from flows.errors import FlowError, FlowRuntimeError, FlowValidationError, Problem
from flows.events import (
    CallerHangUp,
    CallStarted,
    DtmfDigit,
    Event,
    NoInput,
    PromptFinished,
    Recognition,
    TransferResult,
)
from flows.loader import load_flow, validate_paths
from flows.model import Flow, Metadata
from flows.repository import FlowRepository
from flows.session import FlowSession

__all__ = [
    "Action",
    "CallStarted",
    "CallerHangUp",
    "DtmfDigit",
    "DtmfSettings",
    "EmitEvent",
    "Event",
    "Flow",
    "FlowError",
    "FlowRepository",
    "FlowRuntimeError",
    "FlowSession",
    "FlowValidationError",
    "HangUp",
    "Listen",
    "Metadata",
    "NoInput",
    "PauseRecording",
    "Play",
    "Problem",
    "PromptFinished",
    "Recognition",
    "ResumeRecording",
    "SetOutcome",
    "Transfer",
    "TransferResult",
    "actions",
    "events",
    "load_flow",
    "validate_paths",
]
