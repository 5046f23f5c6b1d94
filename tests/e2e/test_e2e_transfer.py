"""A caller bridged to an agent: a real ``sipp`` caller, ``serve``, and a ``sipp`` agent phone."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from ivr.sipp_peer import synthesize_caller_audio
from tests.e2e.conftest import active_seconds, place_call, read_stereo, sipp_uas

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FLOW = """
flow: {name: transfer_line, barge_in: false, start: connect}
globals: {agent: false, goodbye: false}
steps:
  connect:
    say: Connecting you to an agent.
    transfer: queue:cards
    on_failure: sorry
  sorry:
    say: Sorry, nobody is free right now. Goodbye.
    hangup: agent_unavailable
"""


def agent_phone(workdir: Path, talk_ms: int) -> tuple[subprocess.Popen[str], int]:
    """An agent's phone that answers, talks, and hangs up after ``talk_ms``."""
    return sipp_uas("uas_agent", workdir, extra=("-d", str(talk_ms)))


def test_caller_is_bridged_to_the_agent_and_both_are_recorded(start_ivr: Any, tmp_path: Path) -> None:
    flow = tmp_path / "transfer_line.yaml"
    flow.write_text(FLOW)
    agent_dir = tmp_path / "agent"
    agent_dir.mkdir()
    synthesize_caller_audio(
        "Hello, this is Sam from the cards team. How can I help you today?",
        agent_dir / "agent.wav",
        lead_s=0.3,
        tail_s=20.0,
    )
    agent, agent_port = agent_phone(agent_dir, talk_ms=9000)
    ivr = start_ivr(flow=flow, IVR_TRANSFER__QUEUES__CARDS=f"sip:cards@127.0.0.1:{agent_port}")
    # The caller speaks once the agent has greeted them, then waits for the hang-up.
    call = place_call(ivr, "caller_speaks", tmp_path / "caller", say="I lost my card yesterday.", lead_s=9.0)
    assert call.returncode == 0, call.output
    assert agent.wait(30) == 0, (agent_dir / "sipp_errors.log").read_text(errors="replace")
    ivr.wait_for("call.ended")
    for event in ("call.transferring", "call.transferred", "call.agent_hung_up"):
        assert ivr.events(event), event
    closed = ivr.events("call.bridge_closed")[0]
    to_agent_s = float(closed.split("to_agent_s=")[1].split()[0])
    assert to_agent_s > 5.0  # the caller's audio went to the agent while they were connected

    (rec,) = ivr.recordings()
    assert rec["outcome"] == "transferred"
    assert [t["text"] for t in rec["turns"] if t["speaker"] == "bot"] == ["Connecting you to an agent."]
    greeting_end = next(t["end_s"] for t in rec["turns"] if t["speaker"] == "bot")
    caller, right = read_stereo(rec["path"])
    assert caller.size == right.size
    rate = 8000
    # Ringback, then the agent's voice, on the right channel after the greeting ...
    after = right[int((greeting_end + 0.3) * rate) :]
    assert active_seconds(after) > 3.0
    # ... and the caller's sentence on the left, recorded while bridged.
    assert active_seconds(caller[int(8.5 * rate) :]) > 0.8
    assert ivr.stop() == 0


def test_transfer_to_a_queue_with_no_route_takes_the_failure_branch(start_ivr: Any, tmp_path: Path) -> None:
    flow = tmp_path / "transfer_line.yaml"
    flow.write_text(FLOW)
    ivr = start_ivr(flow=flow)  # transfer.queues has no "cards"
    call = place_call(ivr, "caller_speaks", tmp_path / "caller", say="Hello?", lead_s=1.0)
    assert call.returncode == 0, call.output
    ivr.wait_for("call.ended")
    assert "no SIP URI for queue 'cards'" in ivr.events("call.transfer_unavailable")[0]
    (rec,) = ivr.recordings()
    assert rec["outcome"] == "agent_unavailable"
    assert ivr.stop() == 0


def test_an_agent_who_is_busy_takes_the_failure_branch(start_ivr: Any, tmp_path: Path) -> None:
    flow = tmp_path / "transfer_line.yaml"
    flow.write_text(FLOW)
    busy_dir = tmp_path / "busy"
    busy_dir.mkdir()
    busy, port = sipp_uas("uas_busy", busy_dir)
    ivr = start_ivr(flow=flow, IVR_TRANSFER__QUEUES__CARDS=f"sip:cards@127.0.0.1:{port}")
    call = place_call(ivr, "caller_speaks", tmp_path / "caller", say="Hello?", lead_s=1.0)
    assert call.returncode == 0, call.output
    assert busy.wait(30) == 0
    ivr.wait_for("call.ended")
    assert "reason=busy" in ivr.events("call.transfer_failed")[0]
    (rec,) = ivr.recordings()
    assert rec["outcome"] == "agent_unavailable"
    assert ivr.stop() == 0
