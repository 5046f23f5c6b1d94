"""The campaign acceptance run's checks (bench/acceptance_checks.py) over a hand-made sipp
trace: a wrong reading here would pass a run that broke the rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.acceptance_callees import read_trace
from bench.acceptance_checks import JITTER, Planned, check_attempts, check_invites, max_lines, within_hours

T = datetime(2026, 12, 2, 13, 59, 0, tzinfo=UTC)  # 08:59 in New York


def block(at: datetime, received: bool, message: str) -> str:
    head = "UDP message received [1] bytes :" if received else "UDP message sent (1 bytes):"
    return f"{'-' * 47} {at:%Y-%m-%d %H:%M:%S.%f}\n{head}\n\n{message}\n\n"


def invite(number: str, call_id: str) -> str:
    return f"INVITE sip:{number}@127.0.0.1:5080 SIP/2.0\nCall-ID: {call_id}\nCSeq: 1 INVITE\n"


def reply(status: str, call_id: str) -> str:
    return f"SIP/2.0 {status}\nCall-ID: {call_id}\nCSeq: 1 INVITE\n"


def trace(tmp_path: Path) -> Path:
    s = timedelta(seconds=1)
    path = tmp_path / "messages.log"
    path.write_text(
        block(T, True, invite("+12025550143", "a"))
        + block(T, True, invite("+12025550143", "a"))  # a retransmission: one call
        + block(T + s / 2, False, reply("200 OK", "a"))
        + block(T + 90 * s, True, "BYE sip:x SIP/2.0\nCall-ID: a\nCSeq: 2 BYE\n")
        + block(T + 61 * s, True, invite("+12025550144", "b"))
        + block(T + 61 * s, False, reply("486 Busy Here", "b"))
        + block(T + 62 * s, True, invite("+12025550144", "c"))
        + block(T + 64 * s, True, "CANCEL sip:x SIP/2.0\nCall-ID: c\nCSeq: 1 CANCEL\n")
    )
    return path


def plan(phone: str, behaviour: str, deadline: datetime) -> Planned:
    margin = timedelta(seconds=30)
    return Planned(phone, "c", "America/New_York", "09:00-21:00", deadline, margin, behaviour, False, False)


def test_the_trace_gives_each_call_once_with_its_wall_clock_times(tmp_path: Path) -> None:
    calls = read_trace(trace(tmp_path))
    assert sorted(calls) == ["a", "b", "c"]
    a, b, c = calls["a"], calls["b"], calls["c"]
    assert (a.number, a.invite_at, a.answered_at, a.ended_at) == (
        "+12025550143",
        T,
        T + timedelta(seconds=0.5),
        T + timedelta(seconds=90),
    )
    assert (b.final_status, b.ended_at) == (486, T + timedelta(seconds=61))
    assert c.cancelled_at == T + timedelta(seconds=64) and c.answered_at is None


def test_an_invite_before_the_hours_or_after_the_deadline_is_reported(tmp_path: Path) -> None:
    calls = read_trace(trace(tmp_path)).values()
    deadline = T + timedelta(seconds=80)
    found = check_invites(
        calls,
        {
            "+12025550143": plan("+12025550143", "yes", deadline),
            "+12025550144": plan("+12025550144", "busy", T),
        },
    )
    assert len(found["outside_hours"]) == 1 and "local 08:59:00" in found["outside_hours"][0]  # call a
    assert len(found["after_deadline"]) == 2  # b and c came after T
    assert within_hours(T + timedelta(minutes=1), "America/New_York", "09:00-21:00")
    assert not within_hours(T.replace(hour=2), "America/New_York", "09:00-21:00")  # 21:00 the day before
    assert within_hours(T.replace(hour=4, minute=59), "America/New_York", "09:00-24:00")


def test_lines_and_attempts_are_counted_as_the_callees_saw_them(tmp_path: Path) -> None:
    calls = read_trace(trace(tmp_path))
    # b is over the instant it starts (486 at once); a and c overlap from c's INVITE on.
    assert max_lines(calls.values(), T + timedelta(hours=1)) == (2, (T + timedelta(seconds=62)).isoformat())
    assert max_lines(calls.values(), T, JITTER)[0] == 2
    rows = {
        "+12025550143": {
            "row": "2",
            "attempts": "1",
            "last_result": "answered_human",
            "outcome": "confirmed",
        },
        "+12025550144": {"row": "3", "attempts": "2", "last_result": "busy", "outcome": ""},
    }
    planned = {p: plan(p, b, T) for p, b in (("+12025550143", "yes"), ("+12025550144", "busy"))}
    by_number = {"+12025550143": [calls["a"]], "+12025550144": [calls["b"], calls["c"]]}
    found = check_attempts(by_number, rows, planned, ring_timeout_s=8)
    # Call c was our own CANCEL two seconds in (a busy line is never cancelled by a ring timeout),
    # so only one of the two INVITEs may count.
    assert found["cancelled_by_dialer"] == 1
    assert found["attempt_mismatches"] == [
        "row 3 (busy): export attempts 2, callee saw 2 INVITEs of which 1 we cancelled"
    ]
