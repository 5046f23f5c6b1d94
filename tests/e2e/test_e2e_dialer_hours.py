"""The dialer's rules hold at the moment each INVITE reaches the callee (issue 14).

A real ``run_ivr.py dial`` calls a ``sipp`` callee that answers every INVITE busy, so the
dialer keeps retrying every 2 s. One campaign's callee-local calling hours (New York) close
during the run, the other campaign's deadline (less its 5 s margin) passes during the run.
sipp's message trace gives the wall-clock time of every INVITE it received; each is checked
against the hours and the deadline, and against what the database recorded.
"""

from __future__ import annotations

import csv
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from datetime import time as wall_time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.campaign_runs import run_ivr
from tests.e2e.conftest import ROOT, sipp_uas

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NY = ZoneInfo("America/New_York")
CLOSING = ["+12025550143", "+12025550144"]  # New York callees whose hours close during the run
DEADLINE = ["+8613812345678", "+8613912345678"]  # Shanghai callees whose deadline passes
MARGIN_S = 5
_STAMP = re.compile(r"^-{10,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)$")


def import_campaign(data_dir: Path, tmp_path: Path, name: str, rows: list[list[str]], *args: str) -> None:
    calls = tmp_path / f"{name}.csv"
    with calls.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone", "first_name", "last_name", "timezone", "topic"])
        writer.writerows(rows)
    run_ivr(
        data_dir,
        "campaign",
        "import",
        name,
        str(calls),
        "--kind",
        "retention",
        "--flow",
        str(ROOT / "flows" / "library" / "retention.yaml"),
        "--retry",
        "busy=2s",
        "--max-attempts",
        "500",
        *args,
    )
    run_ivr(data_dir, "campaign", "start", name)


def closing_hours(now: datetime) -> tuple[str, datetime]:
    """Hours, New York time, that are open now and close at a minute boundary 35-95 s away."""
    local = (now + timedelta(seconds=35)).astimezone(NY)
    close = (local + timedelta(minutes=1)).replace(second=0, microsecond=0)
    if close.date() != local.date():  # closes at midnight
        return "23:00-24:00", close.astimezone(UTC)
    start = max(close - timedelta(hours=1), close.replace(hour=0, minute=0))
    return f"{start:%H:%M}-{close:%H:%M}", close.astimezone(UTC)


def invites(messages: Path) -> dict[str, tuple[str, datetime]]:
    """Every INVITE sipp received: Call-ID -> (number, first time seen), retransmissions once."""
    found: dict[str, tuple[str, datetime]] = {}
    stamp: datetime | None = None
    lines = messages.read_text(errors="replace").splitlines()
    for n, line in enumerate(lines):
        match = _STAMP.match(line)
        if match:
            stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
            continue
        if line.startswith("INVITE sip:") and stamp is not None and "received" in lines[n - 2]:
            number = line.split(":", 1)[1].split("@", 1)[0]
            call_id = next(x for x in lines[n:] if x.lower().startswith("call-id:")).split(":", 1)[1].strip()
            found.setdefault(call_id, (number, stamp))
    return found


def test_no_invite_after_calling_hours_close_or_the_deadline_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "UTC")  # sipp stamps its trace in local time
    data_dir = tmp_path / "data"
    now = datetime.now(UTC)
    hours, closes_at = closing_hours(now)
    ends_at = now + timedelta(seconds=45)
    cutoff = ends_at - timedelta(seconds=MARGIN_S)
    import_campaign(
        data_dir,
        tmp_path,
        "closing",
        [[n, "Ann", "Lee", "America/New_York", "your loan"] for n in CLOSING],
        "--hours",
        hours,
    )
    import_campaign(
        data_dir,
        tmp_path,
        "deadline",
        [[n, "Li", "Wei", "Asia/Shanghai", "your loan"] for n in DEADLINE],
        "--hours",
        "00:00-24:00",
        "--starts",
        (now - timedelta(hours=1)).isoformat(),
        "--ends",
        ends_at.isoformat(),
        "--retry",
        f"deadline_margin={MARGIN_S}s",
    )
    workdir = tmp_path / "callee"
    workdir.mkdir()
    peer, port = sipp_uas("uas_busy", workdir, 100000, ("-trace_msg", "-message_file", "messages.log"))
    log = (tmp_path / "dial.log").open("w")  # a file, not a pipe nobody reads while it dials
    dial = subprocess.Popen(
        [sys.executable, str(ROOT / "run_ivr.py"), "dial", "--data-dir", str(data_dir)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env={
            **os.environ,
            "IVR_DIALER__TRUNK_URI": f"sip:{{number}}@127.0.0.1:{port}",
            "IVR_SIP__RTP_PORT_START": str(20000 + (port % 200) * 100),
            "IVR_SIP__RTP_PORT_RANGE": "100",
            "PYTHONUNBUFFERED": "1",
        },
    )
    try:
        time.sleep(max((max(closes_at, ends_at) - datetime.now(UTC)).total_seconds(), 0) + 10)
        dial.send_signal(signal.SIGINT)
        dial.wait(60)
    finally:
        if dial.poll() is None:
            dial.kill()
            dial.wait()
        peer.kill()
        peer.wait()
        log.close()
    output = (tmp_path / "dial.log").read_text()
    assert dial.returncode == 0, output[-5000:]
    assert "dialer stopped" in output, output

    received = invites(workdir / "messages.log")
    by_number: dict[str, list[datetime]] = {}
    for number, at in received.values():
        by_number.setdefault(number, []).append(at)
    start_t, end_t = (wall_time.fromisoformat("00:00" if p == "24:00" else p) for p in hours.split("-"))
    for number in CLOSING:
        times = sorted(by_number.get(number, []))
        assert len(times) >= 3, (number, times, output[-3000:])
        for at in times:
            local = at.astimezone(NY)
            assert at < closes_at, f"INVITE to {number} at {local:%H:%M:%S.%f} New York; hours {hours}"
            assert local.time() >= start_t or end_t == wall_time(0)
        assert times[-1] > closes_at - timedelta(seconds=20), "the dialer was not calling up to the close"
    for number in DEADLINE:
        times = sorted(by_number.get(number, []))
        assert len(times) >= 3, (number, times)
        assert all(at < cutoff for at in times), f"INVITE to {number} after the last start {cutoff}: {times}"
        assert times[-1] > cutoff - timedelta(seconds=20)

    with sqlite3.connect(data_dir / "ivr.sqlite3") as db:
        dialled = dict(
            db.execute(
                "SELECT c.phone, COUNT(a.invite_at) FROM contacts c JOIN attempts a ON a.contact_id = c.id "
                "GROUP BY c.phone"
            ).fetchall()
        )
        counted = dict(db.execute("SELECT phone, attempts FROM contacts").fetchall())
        results = {r for (r,) in db.execute("SELECT DISTINCT result FROM attempts").fetchall()}
        leftover = db.execute(
            "SELECT COUNT(*) FROM attempts WHERE result = 'cancelled' AND invite_at IS NOT NULL"
        ).fetchone()[0]
        outcomes = dict(db.execute("SELECT phone, outcome FROM contacts").fetchall())
        expired_at = [
            datetime.fromisoformat(t).replace(tzinfo=UTC)
            for (t,) in db.execute("SELECT outcome_at FROM contacts WHERE outcome = 'expired'").fetchall()
        ]
    for number in CLOSING + DEADLINE:
        seen = {k: len(v) for k, v in by_number.items()}
        assert dialled[number] == len(by_number[number]), (number, dialled, seen)
        assert counted[number] == len(by_number[number])  # every INVITE counted, nothing else
    assert results <= {"busy", "cancelled"}, results  # never a network failure for our own stop
    assert leftover == 0
    assert all(outcomes[n] is None for n in CLOSING)  # waiting for tomorrow's hours
    assert all(outcomes[n] == "expired" for n in DEADLINE), outcomes
    assert len(expired_at) == len(DEADLINE) and all(t < ends_at for t in expired_at)  # before the deadline
