"""What happened on one outbound attempt, and what a contact finally ended with.

The dialer's vocabulary: the SIP adapter turns a final response into a :class:`CallResult`
with :func:`classify_sip_status`, answering-machine detection refines ``ANSWERED`` into
``ANSWERED_HUMAN`` or ``ANSWERED_MACHINE``, the retry policy turns a result into either another
attempt or an :class:`Outcome`. Values are lower-case strings so they can be stored and
exported as they are.
"""

from __future__ import annotations

from enum import StrEnum

from ivr.errors import IvrError


class PolicyError(IvrError, ValueError):
    """Dialer policy input is invalid (bad calling hours, retry rule, time or SIP status).

    Every policy module raises this; the message names the setting or value and the rule.
    """


class CallResult(StrEnum):
    """The result of one attempt, as far as the network and AMD could tell."""

    ANSWERED = "answered"
    """Answered; AMD was off or not sure. Treated like a person by default."""
    ANSWERED_HUMAN = "answered_human"
    ANSWERED_MACHINE = "answered_machine"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    """It rang until the ring timeout, or the far end said 408/480."""
    REJECTED = "rejected"
    """The callee declined (603, 6xx, 403)."""
    INVALID_NUMBER = "invalid_number"
    """The number does not exist (404, 410, 484, 604): retrying cannot help."""
    NETWORK_FAILURE = "network_failure"
    """No response, a 5xx, or any failure on our side of the trunk."""
    CANCELLED = "cancelled"
    """We hung up before an answer (campaign paused, shutdown): not the callee's doing."""

    @property
    def connected(self) -> bool:
        """True when the callee's side answered (a person or a machine)."""
        return self in _CONNECTED

    @property
    def reached_person(self) -> bool:
        """True when a person (not a machine) answered, so a flow outcome means something."""
        return self in (CallResult.ANSWERED, CallResult.ANSWERED_HUMAN)


_CONNECTED = frozenset({CallResult.ANSWERED, CallResult.ANSWERED_HUMAN, CallResult.ANSWERED_MACHINE})


class Outcome(StrEnum):
    """Why a contact will not be dialled again (besides the flow's own outcome).

    When a person answers, the flow's outcome (e.g. ``confirmed``) becomes the contact's
    outcome; the values here are what the dialer decides by itself.
    """

    ANSWERED = "answered"
    """A person was reached; the worker records the flow's outcome instead when it has one."""
    MESSAGE_LEFT = "message_left"
    EXPIRED = "expired"
    """The contact's deadline passed (or no attempt fits before it) while still unreached."""
    MAX_ATTEMPTS = "max_attempts"
    UNREACHED = "unreached"
    """A result configured as final (e.g. ``busy: final``) ended the contact unreached."""
    REJECTED = "rejected"
    INVALID_NUMBER = "invalid_number"
    DO_NOT_CALL = "do_not_call"


# SIP final responses with a meaning of their own (RFC 3261 section 21).
_BY_STATUS: dict[int, CallResult] = {
    403: CallResult.REJECTED,
    404: CallResult.INVALID_NUMBER,
    408: CallResult.NO_ANSWER,
    410: CallResult.INVALID_NUMBER,
    480: CallResult.NO_ANSWER,
    484: CallResult.INVALID_NUMBER,
    486: CallResult.BUSY,
    600: CallResult.BUSY,
    603: CallResult.REJECTED,
    604: CallResult.INVALID_NUMBER,
}


def classify_sip_status(status: int | None, timed_out: bool) -> CallResult:
    """Map the final SIP status of an INVITE (``None``: no response at all) to a result.

    ``timed_out`` is True when our ring timer fired and we cancelled the call, which then
    ends with 487 (or no final response): that is a no-answer, not a cancellation.
    """
    if status is not None and not 100 <= status <= 699:
        raise PolicyError(f"SIP status {status} is not a response code (100..699)")
    if status is not None and 200 <= status < 300:
        return CallResult.ANSWERED
    if timed_out:
        return CallResult.NO_ANSWER
    if status is None:
        return CallResult.NETWORK_FAILURE
    if status == 487:
        return CallResult.CANCELLED
    known = _BY_STATUS.get(status)
    if known is not None:
        return known
    if status >= 600:
        return CallResult.REJECTED
    # Other 4xx (401/407 auth, 488 codecs, ...), 5xx and stray 1xx/3xx finals: the trunk or
    # our configuration failed, not the callee; retry soon.
    return CallResult.NETWORK_FAILURE
