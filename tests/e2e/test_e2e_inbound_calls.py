"""Real calls into ``run_ivr.py serve`` from ``sipp``; asserts on what an auditor would check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import IvrProcess, active_seconds, place_call, read_stereo, start_call

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# The demo flow's greeting and question last about 6.6 s; the caller speaks after them.
AFTER_QUESTION_S = 7.0


def assert_complete(rec: dict[str, Any]) -> None:
    assert rec["status"] == "complete"
    assert rec["channels"] == 2
    # The file is the connected call, sample for sample: both channels come from one clock.
    assert rec["connected_duration_s"] is not None
    assert abs(rec["duration_s"] - rec["connected_duration_s"]) <= 0.04


def only_recording(ivr: IvrProcess) -> dict[str, Any]:
    recordings = ivr.recordings()
    assert len(recordings) == 1, recordings
    assert_complete(recordings[0])
    return recordings[0]


def turns(rec: dict[str, Any], speaker: str) -> list[str]:
    return [t["text"] for t in rec["turns"] if t["speaker"] == speaker]


def assert_stopped_cleanly(ivr: IvrProcess) -> None:
    assert ivr.stop() == 0
    assert ivr.events("serve.stopped"), ivr.lines[-10:]


def test_caller_who_speaks_is_understood_and_recorded_on_two_tracks(start_ivr: Any, tmp_path: Path) -> None:
    ivr = start_ivr()
    call = place_call(
        ivr, "caller_speaks", tmp_path / "call", say="I want to check my balance", lead_s=AFTER_QUESTION_S
    )
    assert call.returncode == 0, call.output
    ivr.wait_for("call.ended")
    rec = only_recording(ivr)
    assert rec["outcome"] == "understood"
    heard = " ".join(turns(rec, "caller"))
    assert "balance" in heard
    assert any("check your balance" in text for text in turns(rec, "bot"))
    caller, bot = read_stereo(rec["path"])
    assert caller.size == bot.size
    assert active_seconds(caller) > 0.8  # the sentence is on the caller's track ...
    assert active_seconds(caller[: int(6.5 * 8000)]) < 0.1  # ... and not before they spoke
    assert active_seconds(bot) > 3.0  # greeting, question, read-back on the bot's track
    assert "+15550100123" not in "\n".join(ivr.lines)  # numbers are masked in logs
    assert_stopped_cleanly(ivr)


def test_silent_caller_gets_reprompted_then_a_polite_end(start_ivr: Any, tmp_path: Path) -> None:
    ivr = start_ivr()
    call = place_call(ivr, "caller_silent", tmp_path / "call", timeout_s=90)
    assert call.returncode == 0, call.output
    ivr.wait_for("call.ended")
    rec = only_recording(ivr)
    assert turns(rec, "caller") == []
    bot_lines = turns(rec, "bot")
    assert any("didn't hear anything" in text for text in bot_lines)
    assert bot_lines[-1] == "Thank you for calling. Goodbye."
    caller, bot = read_stereo(rec["path"])
    assert active_seconds(caller) == 0.0
    assert active_seconds(bot) > 5.0
    assert len(ivr.events("call.no_input")) == 2
    assert_stopped_cleanly(ivr)


def test_caller_hanging_up_during_the_greeting_closes_the_recording(start_ivr: Any, tmp_path: Path) -> None:
    ivr = start_ivr()
    call = place_call(ivr, "caller_hangs_up", tmp_path / "call")
    assert call.returncode == 0, call.output
    ivr.wait_for("call.ended")
    rec = only_recording(ivr)
    assert 1.2 < rec["duration_s"] < 3.0
    assert rec["outcome"] == "abandoned"
    _caller, bot = read_stereo(rec["path"])
    assert active_seconds(bot) > 0.8  # the greeting was playing when they left
    assert "hung_up_by=remote" in ivr.events("call.ended")[0]
    assert_stopped_cleanly(ivr)


def test_rfc2833_digit_answers_the_question(start_ivr: Any, tmp_path: Path) -> None:
    ivr = start_ivr()
    call = place_call(ivr, "caller_dtmf", tmp_path / "call")
    assert call.returncode == 0, call.output
    ivr.wait_for("call.ended")
    rec = only_recording(ivr)
    assert turns(rec, "caller") == ["#1"]
    assert "method=rfc2833" in ivr.events("call.dtmf")[0]
    assert rec["outcome"] == "understood"
    assert_stopped_cleanly(ivr)


def test_pcma_only_caller_is_answered_in_alaw(start_ivr: Any, tmp_path: Path) -> None:
    ivr = start_ivr()
    call = place_call(
        ivr, "caller_pcma", tmp_path / "call", say="I lost my card", lead_s=AFTER_QUESTION_S, codec="PCMA"
    )
    assert call.returncode == 0, call.output
    ivr.wait_for("call.ended")
    rec = only_recording(ivr)
    assert rec["tags"]["codec"] == "PCMA"
    assert "card" in " ".join(turns(rec, "caller"))
    caller, _bot = read_stereo(rec["path"])
    assert active_seconds(caller) > 0.5
    assert_stopped_cleanly(ivr)


def test_call_beyond_the_limit_is_refused_with_486(start_ivr: Any, tmp_path: Path) -> None:
    ivr = start_ivr(max_calls=1)
    first = start_call(ivr, "caller_silent", tmp_path / "first", timeout_s=90)
    try:
        ivr.wait_for("call.connected")
        busy = place_call(ivr, "caller_busy", tmp_path / "busy")
        assert busy.returncode == 0, busy.output
        assert "status=486" in ivr.wait_for("call.refused")[0]
    finally:
        first.terminate()
        first.wait(30)
    assert_stopped_cleanly(ivr)  # SIGTERM with a call still up hangs it up and closes its recording
    recordings = ivr.recordings()
    assert len(recordings) == 1 and recordings[0]["status"] == "complete"


def test_ten_simultaneous_calls_through_the_redirecting_front(start_ivr: Any, tmp_path: Path) -> None:
    """One pjsua2 process holds 4 calls (the wheel's PJSUA_MAX_CALLS): ten at once need workers."""
    ivr = start_ivr(workers=3, IVR_BALANCER__FRONT="redirect")  # the no-Kamailio fallback
    call = place_call(
        ivr,
        "caller_redirected",
        tmp_path / "calls",
        say="opening hours",
        lead_s=AFTER_QUESTION_S,
        calls=10,
        concurrent=10,
        timeout_s=150,
    )
    assert call.returncode == 0, call.output
    ivr.wait_for("call.ended", count=10, timeout=60)
    assert len(ivr.events("call.redirected")) == 10
    recordings = ivr.recordings()
    assert len({r["call_id"] for r in recordings}) == 10
    for rec in recordings:
        assert_complete(rec)
        assert turns(rec, "caller"), rec
    assert ivr.stop() == 0
    assert "worker_exit_codes=0,0,0" in ivr.events("serve.stopped")[-1]


def test_ten_calls_each_get_a_recording(start_ivr: Any, tmp_path: Path) -> None:
    """Ten callers to one process, as many at once as it holds (4)."""
    ivr = start_ivr()
    call = place_call(
        ivr,
        "caller_speaks",
        tmp_path / "calls",
        say="opening hours",
        lead_s=AFTER_QUESTION_S,
        calls=10,
        concurrent=4,
        timeout_s=150,
    )
    assert call.returncode == 0, call.output
    ivr.wait_for("call.ended", count=10, timeout=60)
    recordings = ivr.recordings()
    assert len(recordings) == 10
    assert len({r["call_id"] for r in recordings}) == 10
    for rec in recordings:
        assert_complete(rec)
        assert turns(rec, "caller"), rec
    assert_stopped_cleanly(ivr)
