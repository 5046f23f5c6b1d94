"""What a SIP final response to our INVITE means for the call: the dialer's :class:`CallResult`.

It lives with the SIP code because it reads SIP (RFC 3261 section 21); the dialer and bridged
transfers both read a placed call's end through it.
"""

from __future__ import annotations

from dialer.call_result import CallResult, PolicyError

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
