"""What a :class:`~flows.session.FlowSession` asks the call to do: frozen dataclasses.

Actions come in a list and are executed in order; see ``docs/flows.md`` for the protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class Play:
    """Speak ``text``. With ``barge_in`` the caller may interrupt it by speaking or keying."""

    text: str
    barge_in: bool = True
    step: str = ""


@dataclass(frozen=True)
class DtmfSettings:
    """How keys are collected during a ``Listen``.

    ``max_digits`` keys complete the input at once; ``terminator`` completes it early; after a
    key, ``inter_digit_timeout_s`` of quiet means the caller is done (send ``NoInput``).
    """

    enabled: bool = True
    max_digits: int = 1
    terminator: str = "#"
    inter_digit_timeout_s: float = 3.0


@dataclass(frozen=True)
class Listen:
    """Wait for the caller: speech (``Recognition``), keys (``DtmfDigit``) or ``NoInput``.

    ``phrases`` is what this step expects (for an ASR grammar or phrase hints); with
    ``open_vocabulary`` the recognizer should decode freely and use the phrases only as hints.
    """

    step: str
    phrases: tuple[str, ...] = ()
    open_vocabulary: bool = True
    dtmf: DtmfSettings = field(default_factory=DtmfSettings)
    no_input_timeout_s: float = 6.0
    slot: str = ""


@dataclass(frozen=True)
class Transfer:
    """Connect the caller to a queue name or SIP URI; answer with ``TransferResult``."""

    target: str
    step: str = ""


@dataclass(frozen=True)
class HangUp:
    """Hang up after every earlier ``Play`` has finished; the session is over."""

    outcome: str


@dataclass(frozen=True)
class SetOutcome:
    """The call's business outcome so far (it may still change before the end)."""

    outcome: str


@dataclass(frozen=True)
class PauseRecording:
    """Stop writing audio to the recording (card numbers, PINs) until ``ResumeRecording``."""


@dataclass(frozen=True)
class ResumeRecording:
    """Start writing audio to the recording again."""


@dataclass(frozen=True)
class EmitEvent:
    """A business event for the outside world (MQTT, the dialer): e.g. ``do_not_call``."""

    name: str
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


Action = Play | Listen | Transfer | HangUp | SetOutcome | PauseRecording | ResumeRecording | EmitEvent
