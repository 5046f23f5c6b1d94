"""``campaign import --help``, ``list``, ``delete``, ``recycle`` and ``status --watch`` as the
manager runs them, on a SQLite data dir; the live view on a (pretend) terminal."""

from __future__ import annotations

import argparse
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import update
from sqlalchemy.orm import Session

from config.errors import ConfigError, IvrError
from config.settings import load_settings
from dialer import cli
from dialer.db import make_engine
from dialer.models import Contact
from dialer.status import CampaignStatus, campaign_status
from dialer.status_view import show

SOON = (datetime.now(UTC) + timedelta(hours=2)).isoformat(timespec="seconds")
CALLS = f"phone,first_name,cooling_off_end\n13812345678,Li,{SOON}\n13912345678,Wang,{SOON}\n"
FLOW = ["--kind", "compliance_callback", "--flow", "flows/library/compliance_callback.yaml", "--region", "CN"]


def run(data: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="run_ivr.py")
    cli.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([*argv, "--data-dir", str(data)])
    try:
        return int(args.func(args))
    except (ConfigError, IvrError) as exc:
        print(f"error: {exc}")
        return 2


def imported(tmp_path: Path, name: str = "march") -> Path:
    data = tmp_path / "data"
    calls = tmp_path / "calls.csv"
    calls.write_text(CALLS, encoding="utf-8")
    assert run(data, "campaign", "import", name, str(calls), *FLOW) == 0
    return data


def test_import_help_documents_every_column(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run(Path("unused"), "campaign", "import", "--help")
    text = capsys.readouterr().out
    for line in (
        "phone (required): a number, E.164",
        "cooling_off_end (required for compliance_callback): ISO 8601 date-time",
        "first_name (optional)",
        "timezone (optional): IANA time zone name, e.g. Asia/Shanghai",
        "priority (optional)",
        "compliance_callback: product, amount, purchase_date, date_of_birth, id_last4",
        "retention: topic",
        "docs/campaigns.md",
    ):
        assert line in text, line


def test_an_import_rejecting_every_row_says_so_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    calls = tmp_path / "calls.csv"
    calls.write_text("phone,cooling_off_end\n12345,2030-01-01T09:00:00+08:00\n13812345678,\n", "utf-8")
    assert run(data, "campaign", "import", "march", str(calls), *FLOW) == 1
    out = capsys.readouterr().out
    assert f"{calls}:2: phone: '12345' is not a valid number for its country" in out
    assert f"{calls}:3: cooling_off_end: missing (required for compliance callbacks)" in out
    assert "rejected by field: phone 1, cooling_off_end 1" in out
    assert "campaign march was not created: no row was imported" in out
    assert "every row was rejected; `run_ivr.py campaign import --help` lists the columns" in out
    assert run(data, "campaign", "list") == 0
    assert capsys.readouterr().out.strip() == "no campaigns"


def test_list_and_delete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = imported(tmp_path)
    assert run(data, "campaign", "start", "march") == 0
    capsys.readouterr()
    assert run(data, "campaign", "list") == 0
    header, line = capsys.readouterr().out.splitlines()
    assert header.split() == [
        "name",
        "kind",
        "state",
        "contacts",
        "pending",
        "in_call",
        "done",
        "dnc",
        "attempts",
    ]
    assert line.split() == ["march", "compliance_callback", "running", "2", "2", "0", "0", "0", "0"]
    assert run(data, "campaign", "list", "--json") == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert (listed["name"], listed["contacts"], listed["state"]) == ("march", 2, "running")

    assert run(data, "campaign", "delete", "march", "--yes") == 2
    assert (
        "error: campaign 'march' is running: pause it first (campaign pause march)" in capsys.readouterr().out
    )
    assert run(data, "campaign", "pause", "march") == 0
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO("march\n"))  # not a terminal: no prompt
    assert run(data, "campaign", "delete", "march") == 2
    assert "add --yes to delete without a prompt" in capsys.readouterr().out

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "april")
    assert run(data, "campaign", "delete", "march") == 1
    assert "campaign march: not deleted" in capsys.readouterr().out
    monkeypatch.setattr("builtins.input", lambda prompt: "march")
    assert run(data, "campaign", "delete", "march") == 0
    captured = capsys.readouterr()
    assert "campaign march deleted: 2 contacts, 0 attempts, 0 contact events" in captured.out
    assert (
        "event=campaign.deleted" in captured.err and "user=" in captured.err and "contacts=2" in captured.err
    )
    assert run(data, "campaign", "delete", "march", "--yes") == 2
    assert "campaign 'march' does not exist" in capsys.readouterr().out


def test_recycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = imported(tmp_path)
    engine = make_engine(load_settings(overrides={"data_dir": str(data)}).database_url)
    try:
        with Session(engine) as session, session.begin():
            session.execute(
                update(Contact)
                .where(Contact.phone == "+8613812345678")
                .values(state="done", outcome="max_attempts", last_result="no_answer", attempts=5)
            )
    finally:
        engine.dispose()
    assert run(data, "campaign", "recycle", "march", "--result", "busy,no_answer") == 0
    captured = capsys.readouterr()
    assert "campaign march: 1 contacts queued again (due now, attempts reset)" in captured.out
    assert "event=campaign.recycled" in captured.err and "results=busy,no_answer" in captured.err
    assert run(data, "campaign", "recycle", "march", "--result", "nope") == 2
    assert "--result 'nope': unknown result 'nope'" in capsys.readouterr().out


def test_status_watch_redraws_then_exits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = imported(tmp_path)
    capsys.readouterr()
    argv = ["campaign", "status", "march", "--watch", "--interval", "0.01", "--iterations", "3"]
    assert run(data, *argv) == 0
    out = capsys.readouterr().out
    assert out.count("campaign march (compliance_callback): draft") == 3  # not a terminal: plain blocks
    assert "contacts (in a call, next retries, latest outcomes):" not in out  # nobody called yet
    assert run(data, *argv, "--json") == 0
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(documents) == 3 and documents[0][0]["name"] == "march"
    assert documents[0][0]["rates"]["connect_rate"] is None
    assert run(data, "campaign", "status", "nope", "--watch") == 2
    assert "campaign 'nope' does not exist" in capsys.readouterr().out
    assert run(data, "campaign", "status", "--interval", "0") == 2


def test_the_live_view_redraws_on_a_terminal(tmp_path: Path) -> None:
    data = imported(tmp_path)
    engine = make_engine(load_settings(overrides={"data_dir": str(data)}).database_url)
    fetched: list[CampaignStatus] = []

    def fetch() -> list[CampaignStatus]:
        fetched.append(campaign_status(engine, "march", datetime.now(UTC)))
        return fetched[-1:]

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=160, color_system=None)
    try:
        assert show(fetch, console=console, watch=True, interval=0, iterations=3, sleep=lambda _: None) == 0
        assert len(fetched) == 3
        text = screen.getvalue()
        assert text.count("campaign march (compliance_callback): draft") >= 3  # one frame per redraw
        assert "at risk of missing their deadline" in text and "abandonment" in text
        assert "+86" not in text
        once = io.StringIO()
        show(fetch, console=Console(file=once, force_terminal=True, width=160), watch=False)
        assert once.getvalue().count("campaign march") == 1
    finally:
        engine.dispose()
