"""What happened on one outbound attempt, and what a contact finally ended with.

The dialer's vocabulary: the SIP adapter turns a final response into a :class:`CallResult`
with :func:`ivr.sip_status.classify_sip_status`, answering-machine detection refines ``ANSWERED`` into
``ANSWERED_HUMAN`` or ``ANSWERED_MACHINE``, the retry policy turns a result into either another
attempt or an :class:`Outcome`. Values are lower-case strings so they can be stored and
exported as they are.
"""

from __future__ import annotations

from enum import StrEnum

from config.errors import IvrError


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
