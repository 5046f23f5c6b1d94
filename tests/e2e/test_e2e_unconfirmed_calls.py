"""Calls that never become calls: an INVITE answered but never ACKed still ends properly."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.raw_sip import SipSocket, reply_to, sdp_offer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_an_answered_invite_never_acked_ends_with_a_call_ended_line(start_ivr: Any, tmp_path: Path) -> None:
    ivr = start_ivr()
    with SipSocket("UDP", ivr.port) as sip:
        leg = sip.leg()
        sip.send(leg.request("INVITE", sdp_offer(rtp_port=40000)))
        deadline = time.monotonic() + 10
        status = 0
        while time.monotonic() < deadline and status < 200:
            reply = sip.receive(1.0)
            status = reply.status if reply is not None and reply.is_response else status
        assert status == 200, "the engine answered"
        # No ACK: the engine retransmits its 200, gives up after 64*T1 (32 s) and sends BYE,
        # which this peer (whose ACKs were lost, say) answers.
        bye = None
        deadline = time.monotonic() + 40
        while bye is None and time.monotonic() < deadline:
            message = sip.receive(1.0)
            if message is not None and not message.is_response and message.method == "BYE":
                bye = message
        assert bye is not None, "the engine hung up the call nobody confirmed"
        sip.send(reply_to(bye))
        line = ivr.wait_for("call.ended", timeout=10)[0]
    assert "outcome=not_connected" in line
    assert ivr.events("call.released")
    assert ivr.recordings() == [], "nothing was connected, so nothing was recorded"
    assert ivr.stop() == 0
