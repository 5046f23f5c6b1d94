"""The ``campaign`` commands end to end on a SQLite data dir: import, start, pause, status,
export, do-not-call management; errors exit non-zero with a message that says what and where."""

from __future__ import annotations

import argparse
import asyncio
import csv
from datetime import timedelta
from pathlib import Path

import pytest

from config.errors import ConfigError, IvrError
from config.settings import load_settings
from dialer import cli
from dialer.call_result import CallResult
from dialer.cli import run_dialer
from dialer.db import make_engine
from dialer.store import DialerStore
from dialer.worker import CallReport, CallRequest, SystemClock

CALLS = """phone,first_name,last_name,cooling_off_end,product
13812345678,Li,Wei,2030-03-01T10:00:00+08:00,Fund A
13912345678,Wang,Fang,2030-03-01T11:00:00+08:00,Fund B
12345,Bad,Number,2030-03-01T10:00:00+08:00,Fund C
"""


def run(data: Path, *argv: str) -> int:
    """Parse like ``run_ivr.py`` does (only the dialer's commands) and run."""
    parser = argparse.ArgumentParser(prog="run_ivr.py")
    cli.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([*argv, "--data-dir", str(data)])
    try:
        return int(args.func(args))
    except (ConfigError, IvrError) as exc:
        print(f"error: {exc}")
        return 2


def test_dialer_data_cli_campaign_lifecycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    calls = tmp_path / "calls.csv"
    calls.write_text(CALLS, encoding="utf-8")
    flow = ["--kind", "compliance_callback", "--flow", "flows/library/callback.yaml", "--region", "CN"]
    options = ["--retry", "busy=10m", "--machine", "leave_message", "--holiday", "2030-10-01"]
    assert run(data, "campaign", "import", "march", str(calls), *flow, *options) == 1  # one reject
    out = capsys.readouterr().out
    assert f"{calls}:4: phone: '12345' is not a valid number for its country" in out
    assert "3 rows, 2 imported, 0 already imported, 1 rejected" in out
    assert (tmp_path / "calls.rejects.csv").exists()
    assert (data / "ivr.sqlite3").exists()
    engine = make_engine(load_settings(overrides={"data_dir": str(data)}).database_url)
    try:
        stored = DialerStore(engine).campaign("march")
    finally:
        engine.dispose()
    # A callback whose callee hangs up undecided is called again by default.
    assert stored.retry == {
        "max_attempts": 5,
        "message_left_final": True,
        "busy": "10m",
        "outcomes": {"no_decision": "30m"},
    }
    assert stored.calling_hours == {"default": "09:00-21:00", "holidays": ["2030-10-01"]}
    assert stored.machine_policy == "leave_message"

    assert run(data, "campaign", "import", "march", str(calls), *flow) == 1
    assert "0 imported, 2 already imported" in capsys.readouterr().out

    assert run(data, "campaign", "dnc", "add", "139 1234 5678", "--region", "CN", "--reason", "asked") == 0
    assert "+8613912345678: added; 1 contacts marked" in capsys.readouterr().out
    assert run(data, "campaign", "dnc", "list") == 0
    assert capsys.readouterr().out.startswith("+8613912345678\t")

    assert run(data, "campaign", "start", "march") == 0
    assert "campaign march: draft -> running" in capsys.readouterr().out
    assert run(data, "campaign", "pause", "march") == 0
    assert run(data, "campaign", "resume", "march") == 0
    assert "paused -> running" in capsys.readouterr().out

    assert run(data, "campaign", "status", "march") == 0
    status = capsys.readouterr().out
    assert "campaign march (compliance_callback): running" in status
    assert "contacts: 2  (do-not-call: 1, finished: 1)" in status
    assert "by state: done 1, pending 1" in status
    assert "by outcome: do_not_call 1" in status
    assert "connect rate: n/a (0/0 contacts)  success rate: n/a (0/0)" in status
    assert "13812345678" not in status

    assert run(data, "campaign", "export", "march") == 0
    assert "2 contacts written to" in capsys.readouterr().out
    with (data / "exports" / "march.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["phone"], r["dnc"], r["state"], r["product"]) for r in rows] == [
        ("+8613812345678", "no", "pending", "Fund A"),
        ("+8613912345678", "yes", "done", "Fund B"),
    ]
    assert rows[0]["retry_at"] == "2030-03-01T02:00:00+00:00" and rows[1]["retry_at"] == ""

    assert run(data, "campaign", "dnc", "remove", "+8613912345678") == 0
    assert "+8613912345678: removed" in capsys.readouterr().out


def test_dialer_data_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    assert run(data, "campaign", "start", "nope") == 2
    assert "campaign 'nope' does not exist" in capsys.readouterr().out
    assert run(data, "campaign", "dnc", "add", "not a number") == 2
    assert "'not a number' is not a phone number" in capsys.readouterr().out
    assert run(data, "campaign", "dnc", "remove", "+8613812345678") == 2
    assert "+8613812345678 is not on the do-not-call list" in capsys.readouterr().out
    missing = tmp_path / "missing.csv"
    args = ["--kind", "retention", "--flow", "f.yaml", "--starts", "2030-01-01T09:00"]
    assert run(data, "campaign", "import", "x", str(missing), *args) == 2
    assert "--starts '2030-01-01T09:00': add a UTC offset" in capsys.readouterr().out
    bad_retry = ["--kind", "retention", "--flow", "f.yaml", "--retry", "bussy=5m"]
    (tmp_path / "calls.csv").write_text(CALLS, encoding="utf-8")
    assert run(data, "campaign", "import", "x", str(tmp_path / "calls.csv"), *bad_retry) == 2
    assert "retry.bussy: unknown key" in capsys.readouterr().out
    for bad, message in (
        ("no_decision", "--retry-outcome 'no_decision': expected OUTCOME=DELAY"),
        ("no_decision=soon", "retry.outcomes.no_decision: expected a duration"),
    ):
        options = ["--kind", "retention", "--flow", "f.yaml", "--retry-outcome", bad]
        assert run(data, "campaign", "import", "x", str(tmp_path / "calls.csv"), *options) == 2
        assert message in capsys.readouterr().out
    bad_hours = ["--kind", "retention", "--flow", "f.yaml", "--hours", "21:00-09:00"]
    (tmp_path / "calls.csv").write_text(CALLS, encoding="utf-8")
    assert run(data, "campaign", "import", "x", str(tmp_path / "calls.csv"), *bad_hours) == 2
    assert "end must be after start" in capsys.readouterr().out


def test_dialer_data_cli_dnc_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    dnc_file = tmp_path / "dnc.csv"
    dnc_file.write_text("phone,reason\n+8613812345678,asked\nnonsense,x\n+8613812345678,again\n", "utf-8")
    assert run(data, "campaign", "dnc", "import", str(dnc_file)) == 1
    out = capsys.readouterr().out
    assert f"{dnc_file}:3: phone: 'nonsense' is not a phone number" in out
    assert "3 rows: 1 added, 1 already listed, 1 rejected" in out


class AnsweringPlacer:
    """Every call is answered and confirmed at once."""

    def __init__(self) -> None:
        self.numbers: list[str] = []
        self.closed = False

    async def place(self, request: CallRequest) -> CallReport:
        self.numbers.append(request.number)
        now = SystemClock().now()
        return CallReport(CallResult.ANSWERED_HUMAN, now, now, 200, "confirmed", f"rec-{request.contact_id}")

    async def aclose(self) -> None:
        self.closed = True


def test_dialer_data_run_dialer_finishes_a_campaign(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    calls = tmp_path / "calls.csv"
    soon = (SystemClock().now() - timedelta(minutes=1)).isoformat()
    calls.write_text(
        f"phone,timezone,cooling_off_end\n+8613812345678,UTC,{soon}\n+8613912345678,UTC,{soon}\n"
    )
    flow = ["--kind", "compliance_callback", "--flow", "f.yaml", "--hours", "00:00-24:00"]
    assert run(data, "campaign", "import", "now", str(calls), *flow) == 0
    assert run(data, "campaign", "start", "now") == 0
    settings = load_settings(overrides={"data_dir": str(data)})
    engine = make_engine(settings.database_url)
    placer = AnsweringPlacer()

    async def scenario() -> int:
        stop = asyncio.Event()
        task = asyncio.create_task(run_dialer(settings, engine, placer, campaign="now", workers=2, stop=stop))
        store = DialerStore(engine)
        for _ in range(100):
            if store.campaign("now").state == "finished":
                break
            await asyncio.sleep(0.05)
        stop.set()
        return await asyncio.wait_for(task, 10)

    try:
        placed = asyncio.run(scenario())
    finally:
        engine.dispose()
    assert placed == 2 and placer.closed
    assert sorted(placer.numbers) == ["+8613812345678", "+8613912345678"]
    capsys.readouterr()
    assert run(data, "campaign", "status", "now") == 0
    status = capsys.readouterr().out
    assert "campaign now (compliance_callback): finished" in status
    assert "by outcome: confirmed 2" in status
    assert "connect rate: 100.0 % (2/2 contacts)  success rate: 100.0 % (2/2)" in status
