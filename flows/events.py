"""What the call tells a :class:`~flows.session.FlowSession`: one frozen dataclass per event.

The order the call must send them in is described in ``docs/flows.md`` (the protocol).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CallStarted:
    """The call is answered (same as ``session.start(now)``)."""


@dataclass(frozen=True)
class PromptFinished:
    """One :class:`~flows.actions.Play` has finished, or was cut short by the caller."""

    interrupted: bool = False


@dataclass(frozen=True)
class Recognition:
    """The recognizer's final result for one utterance after a ``Listen``.

    ``in_grammar`` is False when a grammar-mode recognizer heard something outside the
    phrases it was given; the session then treats the turn as a no-match.
    """

    text: str
    confidence: float = 1.0
    in_grammar: bool = True


@dataclass(frozen=True)
class DtmfDigit:
    """One key press: ``0``-``9``, ``*``, ``#`` (or ``A``-``D``)."""

    digit: str


@dataclass(frozen=True)
class NoInput:
    """Nothing was heard within ``Listen.no_input_timeout_s``, or the caller stopped keying
    digits for ``Listen.dtmf.inter_digit_timeout_s`` after at least one key."""


@dataclass(frozen=True)
class CallerHangUp:
    """The caller (or the network) ended the call."""


@dataclass(frozen=True)
class TransferResult:
    """The outcome of a :class:`~flows.actions.Transfer`: ``success`` once the far end answered."""

    success: bool
    reason: str = ""


Event = CallStarted | PromptFinished | Recognition | DtmfDigit | NoInput | CallerHangUp | TransferResult
