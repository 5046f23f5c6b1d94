"""Kill a dialer worker process (SIGKILL) mid-campaign while another runs: after the dead
worker's leases expire the survivor finishes; every contact ends with exactly one outcome and
no contact was ever in two live calls at once."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from dialer.models import Attempt, Contact, ContactEvent, EventKind
from dialer.worker import SystemClock
from tests.component.dialer.dialer_data_helpers import ALWAYS_OPEN, add_contacts, make_campaign

HELPER = Path(__file__).with_name("dialer_data_crash_worker.py")
CONTACTS = 40
LEASE_S = 2.0


def spawn(db_url: str, log: Path, owner: str, call_s: float = 0.3) -> subprocess.Popen[bytes]:
    timing = ("--lease", str(LEASE_S), "--call", str(call_s))
    return subprocess.Popen(
        [sys.executable, str(HELPER), db_url, str(log), owner, *timing],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_for(log: Path, predicate: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text() if log.exists() else ""
        if sum(1 for line in text.splitlines() if line.startswith(predicate)) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"log never had {count} lines starting {predicate!r}:\n{text}")


def wait_for_call_of(log: Path, owner: str, timeout: float) -> None:
    """Until ``owner`` has a call in progress (a start without its end), so the kill lands mid-call."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        live: set[str] = set()
        for line in (log.read_text() if log.exists() else "").splitlines():
            what, number, _, who = line.split()
            if who == owner and what in ("start", "end"):
                (live.add if what == "start" else live.discard)(number)
        if live:
            return
        time.sleep(0.02)
    raise AssertionError(f"{owner} never had a call in progress:\n{log.read_text()}")


def test_dialer_data_killed_worker_loses_nothing(engine: Engine, db_url: str, tmp_path: Path) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN, retry={"busy": "1s"})
    add_contacts(engine, cid, CONTACTS, start=SystemClock().now() - timedelta(hours=1))
    log = tmp_path / "calls.log"
    victim = spawn(db_url, log, "victim", call_s=1.0)  # long calls: the kill finds one in progress
    wait_for(log, "ready", 1, 30)
    survivor = spawn(db_url, log, "survivor")
    try:
        wait_for(log, "ready", 2, 30)
        wait_for(log, "start", 12, 30)
        wait_for_call_of(log, "victim", 30)
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        killed_at = time.time()
        survivor.wait(90)
    finally:
        for proc in (victim, survivor):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert survivor.returncode == 0, survivor.stderr.read().decode() if survivor.stderr else ""

    # Rebuild every call's interval; a call the victim never ended died with it at kill time.
    intervals: dict[int, list[tuple[float, float, str]]] = defaultdict(list)
    open_calls: dict[tuple[int, str], float] = {}
    for line in log.read_text().splitlines():
        what, number, at, owner = line.split()
        if what == "start":
            open_calls[(int(number), owner)] = float(at)
        elif what == "end":
            began = open_calls.pop((int(number), owner))
            intervals[int(number)].append((began, float(at), owner))
    assert all(owner == "victim" for _, owner in open_calls), open_calls
    assert open_calls, "the victim was killed with no call in progress; the test proves nothing"
    for (contact_id, owner), began in open_calls.items():
        intervals[contact_id].append((began, killed_at, owner))
    for contact_id, calls in intervals.items():
        calls.sort()
        for (_, end, _), (start, _, _) in itertools.pairwise(calls):
            assert start >= end, f"contact {contact_id} was in two live calls at once: {calls}"

    with Session(engine) as session:
        contacts = session.scalars(select(Contact)).all()
        outcome_events = dict(
            session.execute(
                select(ContactEvent.contact_id, func.count())
                .where(ContactEvent.kind == EventKind.OUTCOME)
                .group_by(ContactEvent.contact_id)
            ).all()
        )
        lost = session.scalar(select(func.count()).where(Attempt.result == "worker_lost"))
        open_attempts = session.scalar(select(func.count()).where(Attempt.ended_at.is_(None)))
    assert len(contacts) == CONTACTS
    assert {(c.state, c.outcome) for c in contacts} == {("done", "confirmed")}
    assert all(outcome_events.get(c.id) == 1 for c in contacts)
    # The victim may also die between recording an attempt and dialling, or between hanging
    # up and recording the result: those attempts are "worker_lost" too.
    assert lost is not None and lost >= len(open_calls)
    assert open_attempts == 0
