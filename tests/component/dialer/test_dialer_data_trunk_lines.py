"""Trunk-wide limits in the database (issue 14, E): lines and calls per second shared by every
dialer process, on SQLite and PostgreSQL; real processes on PostgreSQL never exceed 2 lines."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dialer.call_result import CallResult
from dialer.models import Contact
from dialer.pacing import Pacer
from dialer.store import DialerStore
from dialer.trunk_lines import LineLostError, TrunkLines, trunk_key
from dialer.worker import DialerWorker, SystemClock, WorkerConfig
from tests.component.dialer.dialer_data_fakes import FakeClock, Scripted, ScriptedPlacer
from tests.component.dialer.dialer_data_helpers import ALWAYS_OPEN, T0, add_contacts, make_campaign

HELPER = Path(__file__).with_name("dialer_data_line_worker.py")
S = timedelta(seconds=1)


def test_dialer_data_trunk_key_is_the_trunk_host() -> None:
    assert trunk_key("sip:{number}@trunk.example.com:5060;transport=tcp") == "trunk.example.com:5060"
    assert trunk_key("<sip:{number}@10.0.0.1>") == "10.0.0.1"


def test_dialer_data_lines_are_taken_released_and_expire(engine: Engine) -> None:
    lines = TrunkLines(engine, "t1", 2, hold=timedelta(seconds=60))
    first, second = lines.acquire("p1", T0), lines.acquire("p2", T0)
    assert first is not None and second is not None and {first.line, second.line} == {0, 1}
    assert lines.acquire("p3", T0) is None
    assert lines.in_use(T0) == 2
    lines.release(first)
    third = lines.acquire("p3", T0 + S)
    assert third is not None and third.line == first.line
    lines.release(first)  # a stale release frees nothing
    assert lines.in_use(T0 + S) == 2
    renewed = lines.renew(second, T0 + 30 * S)
    assert renewed.expires_at == T0 + 90 * S
    # p3's process dies: its line expires and is taken over; p3 cannot renew or free it.
    fourth = lines.acquire("p4", T0 + 62 * S)
    assert fourth is not None and fourth.line == third.line
    with pytest.raises(LineLostError):
        lines.renew(third, T0 + 62 * S)
    lines.release(third)
    assert lines.in_use(T0 + 62 * S) == 2


def test_dialer_data_a_smaller_limit_uses_fewer_lines(engine: Engine) -> None:
    wide, narrow = TrunkLines(engine, "t1", 3), TrunkLines(engine, "t1", 1)
    taken = narrow.acquire("n", T0)
    assert taken is not None and narrow.acquire("n", T0) is None
    assert wide.acquire("w", T0) is not None and wide.acquire("w", T0) is not None
    assert wide.acquire("w", T0) is None  # 3 in all, one of them the narrow process's


def test_dialer_data_calls_per_second_are_shared(engine: Engine) -> None:
    one, other = (TrunkLines(engine, "t2", 5, calls_per_second=2.0, burst=2) for _ in range(2))
    assert one.acquire("a", T0) is not None and other.acquire("b", T0) is not None  # the burst
    assert one.acquire("a", T0) is None and other.acquire("b", T0 + 0.4 * S) is None
    assert other.acquire("b", T0 + 0.5 * S) is not None
    assert one.acquire("a", T0 + 0.6 * S) is None and one.acquire("a", T0 + 1.0 * S) is not None


def test_dialer_data_worker_waits_for_a_trunk_line(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN)
    add_contacts(engine, cid, 3)
    clock = FakeClock(T0)
    talk = Scripted(CallResult.ANSWERED_HUMAN, "confirmed", 200, seconds=30)
    placer = ScriptedPlacer(clock, {f"+86{13800000000 + i}": [talk] for i in range(3)})
    lines = TrunkLines(engine, "t3", 1)
    worker = DialerWorker(
        DialerStore(engine), Pacer(4, 100.0, burst=4), placer, clock, WorkerConfig(owner="w"), lines=lines
    )

    async def scenario() -> None:
        for _ in range(6):
            await worker.tick()
            for _ in range(200):
                if placer.live or not worker.active_calls:
                    break
                await asyncio.sleep(0.005)
            assert worker.active_calls <= 1
            clock.advance(30)
            await worker.wait_idle()

    asyncio.run(scenario())
    assert placer.max_live == 1 and len(placer.invites) == 3
    assert lines.in_use(clock.now()) == 0


def spawn(db_url: str, log: Path, owner: str, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(HELPER), db_url, str(log), owner, *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def intervals(log: Path, killed: dict[str, float] | None = None) -> list[tuple[float, float, str]]:
    """Every call as (start, end, owner); a call whose process was killed ends at the kill."""
    calls: list[tuple[float, float, str]] = []
    started: dict[tuple[int, str], float] = {}
    for line in log.read_text().splitlines():
        what, contact, at, owner = line.split()
        if what == "start":
            started[(int(contact), owner)] = float(at)
        elif what == "end":
            calls.append((started.pop((int(contact), owner)), float(at), owner))
    for (_, owner), began in started.items():
        assert killed is not None and owner in killed, f"{owner} left a call open"
        calls.append((began, killed[owner], owner))
    return calls


def most_at_once(calls: list[tuple[float, float, str]]) -> int:
    edges = sorted([(start, 1) for start, _, _ in calls] + [(end, -1) for _, end, _ in calls])
    live = peak = 0
    for _, step in edges:  # an end sorts before a start at the same instant
        live += step
        peak = max(peak, live)
    return peak


def wait_for(log: Path, prefix: str, count: int, timeout: float, owner: str = "") -> None:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = log.read_text() if log.exists() else ""
        if sum(1 for ln in text.splitlines() if ln.startswith(prefix) and ln.endswith(owner)) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"log never had {count} lines starting {prefix!r}:\n{text}")


def finish(procs: list[subprocess.Popen[bytes]], timeout: float) -> None:
    try:
        for proc in procs:
            if proc.returncode is None:
                proc.wait(timeout)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc in procs:
        if proc.returncode != -signal.SIGKILL:
            assert proc.returncode == 0, proc.stderr.read().decode() if proc.stderr else ""


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_dialer_data_three_processes_share_two_lines(engine: Engine, db_url: str, tmp_path: Path) -> None:
    """Three dialer processes, each allowing itself 4 calls, on a 2-line trunk: never more than
    2 calls live at once across them, and all three dial."""
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN)
    add_contacts(engine, cid, 24, start=SystemClock().now() - timedelta(hours=1))
    log = tmp_path / "calls.log"
    procs = [
        spawn(db_url, log, f"p{n}", "--lines", "2", "--call", "0.4", "--together", "3") for n in range(3)
    ]
    finish(procs, 120)
    calls = intervals(log)
    assert len(calls) == 24
    assert most_at_once(calls) == 2, sorted(calls)
    by_owner: dict[str, int] = defaultdict(int)
    for _, _, owner in calls:
        by_owner[owner] += 1
    assert len(by_owner) >= 2, by_owner
    with Session(engine) as session:
        outcomes = {c.outcome for c in session.scalars(select(Contact))}
    assert outcomes == {"confirmed"}


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_dialer_data_lines_of_a_killed_process_expire(engine: Engine, db_url: str, tmp_path: Path) -> None:
    """A process holding both lines is killed: the other waits until the holds expire, then
    finishes the campaign; the trunk is never over its 2 lines."""
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN)
    add_contacts(engine, cid, 6, start=SystemClock().now() - timedelta(hours=1))
    log = tmp_path / "calls.log"
    victim = spawn(db_url, log, "victim", "--lines", "2", "--call", "60", "--hold", "3")
    survivor = None
    try:
        wait_for(log, "start", 2, 60, owner="victim")
        survivor = spawn(db_url, log, "survivor", "--lines", "2", "--call", "0.3", "--hold", "3")
        wait_for(log, "ready", 1, 60, owner="survivor")
        time.sleep(1.0)
        assert "survivor" not in "".join(ln for ln in log.read_text().splitlines() if ln.startswith("start"))
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        killed_at = time.time()
        finish([survivor], 120)
    finally:
        for proc in (victim, survivor):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    calls = intervals(log, {"victim": killed_at})
    assert most_at_once(calls) <= 2
    survivor_starts = [start for start, _, owner in calls if owner == "survivor"]
    assert survivor_starts and min(survivor_starts) >= killed_at
    with Session(engine) as session:
        outcomes = {c.outcome for c in session.scalars(select(Contact))}
    assert outcomes == {"confirmed"}
