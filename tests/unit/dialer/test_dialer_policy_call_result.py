"""SIP final responses map to the results the retry policy understands."""

from __future__ import annotations

import pytest

from config.errors import IvrError
from dialer.call_result import CallResult, PolicyError
from ivr.sip_status import classify_sip_status


@pytest.mark.parametrize(
    ("status", "timed_out", "expected"),
    [
        (200, False, CallResult.ANSWERED),
        (200, True, CallResult.ANSWERED),  # answered just as the timer fired: still answered
        (486, False, CallResult.BUSY),
        (600, False, CallResult.BUSY),
        (408, False, CallResult.NO_ANSWER),
        (480, False, CallResult.NO_ANSWER),
        (487, True, CallResult.NO_ANSWER),  # our ring timeout cancelled it
        (None, True, CallResult.NO_ANSWER),
        (487, False, CallResult.CANCELLED),
        (603, False, CallResult.REJECTED),
        (403, False, CallResult.REJECTED),
        (606, False, CallResult.REJECTED),
        (404, False, CallResult.INVALID_NUMBER),
        (484, False, CallResult.INVALID_NUMBER),
        (410, False, CallResult.INVALID_NUMBER),
        (604, False, CallResult.INVALID_NUMBER),
        (500, False, CallResult.NETWORK_FAILURE),
        (503, False, CallResult.NETWORK_FAILURE),
        (407, False, CallResult.NETWORK_FAILURE),
        (488, False, CallResult.NETWORK_FAILURE),
        (None, False, CallResult.NETWORK_FAILURE),
    ],
)
def test_sip_status_maps_to_result(status: int | None, timed_out: bool, expected: CallResult) -> None:
    assert classify_sip_status(status, timed_out) is expected


@pytest.mark.parametrize("status", [0, 99, 700, -1])
def test_impossible_status_is_a_clear_error(status: int) -> None:
    with pytest.raises(PolicyError, match=f"SIP status {status} is not a response code"):
        classify_sip_status(status, False)
    assert issubclass(PolicyError, IvrError)


def test_connected_results() -> None:
    assert {r for r in CallResult if r.connected} == {
        CallResult.ANSWERED, CallResult.ANSWERED_HUMAN, CallResult.ANSWERED_MACHINE}
    assert CallResult("busy") is CallResult.BUSY
