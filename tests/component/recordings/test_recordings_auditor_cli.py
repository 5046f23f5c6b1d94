"""``run_ivr.py recordings search|show|export|hold|release|purge|reindex|audit`` as an auditor runs
them (in-process through ``ivr.cli.main``, one real subprocess), on SQLite and PostgreSQL: every
access is in the audit log, bad filters are refused with a message that says what to type."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.component.recordings.conftest import T0, config_file, record, recordings

pytestmark = [pytest.mark.component, pytest.mark.usefixtures("cli_environment")]
ROOT = Path(__file__).resolve().parents[3]


def audit_log(data: Path, config: Path | None, *args: str) -> list[dict[str, Any]]:
    result = recordings(data, config, "audit", "--json", *args)
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def test_every_access_is_appended_to_the_audit_log(tmp_path: Path, db_url: str) -> None:
    data = tmp_path / "data"
    config = config_file(data, db_url, {"default": 90})
    record(data, "c1", said="I want to cancel", index_url=db_url)
    record(data, "c2", start=T0 + timedelta(hours=1), caller="sip:+15550100999@10.0.0.1")

    steps = [
        ("list",),
        ("show", "c1", "--as", "Ann Auditor"),
        ("search", "--number", "+1 555 010 0123", "--says", "cancel", "--speaker", "caller", "--json"),
        ("export", "--call", "c2", "--out", str(tmp_path / "bundle.zip"), "--as", "Ann Auditor"),
        ("hold", "c1", "--reason", "case 2024-17", "--as", "Legal Lee"),
        ("purge", "--dry-run"),
        ("release", "c1", "--as", "Legal Lee"),
        ("reindex",),
    ]
    outputs = {}
    for step in steps:
        result = recordings(data, config, *step)
        assert result.returncode == 0, (step, result.stdout, result.stderr)
        outputs[step[0]] = result.stdout
    assert [row["call_id"] for row in json.loads(outputs["search"])] == ["c1"]
    assert "HELD c1" in outputs["purge"] and "DUE c2" in outputs["purge"]

    log = audit_log(data, config)
    assert [row["action"] for row in log] == [
        "list",
        "show",
        "search",
        "export",
        "hold",
        "purge",
        "release",
        "reindex",
        "audit",
    ]
    by_action = {row["action"]: row for row in log}
    assert by_action["list"]["call_ids"] == ["c1", "c2"]
    assert by_action["show"]["actor"] == "Ann Auditor" and by_action["show"]["call_ids"] == ["c1"]
    assert by_action["show"]["os_user"] and by_action["show"]["host"] and by_action["show"]["pid"] > 0
    assert by_action["search"]["call_ids"] == ["c1"]
    assert by_action["search"]["detail"] == {
        "limit": 50,
        "number": "(hashed)",
        "says": "cancel",
        "speaker": "caller",
    }
    assert by_action["export"]["call_ids"] == ["c2"]
    assert by_action["export"]["detail"]["out"] == str((tmp_path / "bundle.zip").resolve())
    assert by_action["hold"]["actor"] == "Legal Lee" and by_action["hold"]["detail"] == {
        "reason": "case 2024-17"
    }
    assert by_action["purge"]["call_ids"] == ["c2"] and by_action["purge"]["detail"]["dry_run"] is True
    assert by_action["purge"]["detail"]["held"] == ["c1"]
    assert by_action["release"]["call_ids"] == ["c1"]
    assert by_action["list"]["actor"] == by_action["list"]["os_user"].split(" ")[0]
    assert "5550100123" not in json.dumps(log)

    # --since and the table
    assert audit_log(data, config, "--since", "2999-01-01") == []
    table = recordings(data, config, "audit", "--limit", "3")
    lines = table.stdout.splitlines()
    assert lines[0].split()[:4] == ["AT", "(UTC)", "WHO", "ACTION"] and len(lines) == 4
    assert "audit" in lines[-1]


def test_search_table_json_and_refused_filters(tmp_path: Path) -> None:
    """SQLite at the default place under the data dir (no config at all)."""
    data = tmp_path / "data"
    record(data, "c1", said="I want to cancel", outcome="cancelled")
    record(
        data,
        "c2",
        start=T0 + timedelta(days=1),
        direction="outbound",
        caller="sip:100@pbx",
        callee="+15550100123",
        tags={"campaign": "renewals", "contact_id": "7"},
    )

    table = recordings(data, None, "search", "--from", "2024-05-01", "--to", "2024-05-02")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        "STARTED",
        "(UTC)",
        "CALL",
        "ID",
        "DIR",
        "NUMBER",
        "FLOW",
        "OUTCOME",
        "DURATION",
        "HOLD",
        "QA",
    ]
    assert lines[1].split() == [
        "2024-05-02",
        "09:30:00",
        "c2",
        "outbound",
        "+*********23",
        "hotline",
        "balance_told",
        "1.0s",
    ]
    assert lines[2].split()[2:7] == ["c1", "inbound", "+*********23", "hotline", "cancelled"]

    as_json = json.loads(recordings(data, None, "search", "--campaign", "renewals", "--json").stdout)
    assert [(c["call_id"], c["campaign"], c["contact_id"], c["number"], c["qa"]) for c in as_json] == [
        ("c2", "renewals", "7", "+*********23", None)
    ]
    none = recordings(data, None, "search", "--outcome", "nothing-like-this")
    assert none.returncode == 0 and "(no matching calls)" in none.stdout
    more = recordings(data, None, "search", "--limit", "1")
    assert "more calls match" in more.stderr

    refused = {
        ("--from", "2024-13-01"): "--from '2024-13-01': not a date or time; use YYYY-MM-DD",
        ("--from", "2024-05-03", "--to", "2024-05-01"): "--from 2024-05-03 is after --to 2024-05-01",
        ("--speaker", "caller"): "--speaker narrows --says",
        ("--says", "?!"): "--says '?!': no word to search for",
        ("--number", "( )"): "--number '( )': no digits to search for",
        ("--limit", "0"): "--limit 0: must be at least 1",
        ("--flow", " "): "--flow: give a name",
    }
    for args, message in refused.items():
        result = recordings(data, None, "search", *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    bad_speaker = recordings(data, None, "search", "--says", "x", "--speaker", "operator")
    assert bad_speaker.returncode == 2 and "invalid choice: 'operator'" in bad_speaker.stderr


def test_show_and_hold_name_a_call_that_does_not_exist(tmp_path: Path) -> None:
    data = tmp_path / "data"
    record(data, "c1")
    for args in (("show", "nope"), ("hold", "nope", "--reason", "x"), ("release", "c1")):
        result = recordings(data, None, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert "no recording of call 'nope'" in result.stderr or "call c1 is not on hold" in result.stderr
    assert [row["action"] for row in audit_log(data, None)] == ["audit"]  # refused: nothing accessed


def test_the_real_command_line_writes_the_audit_row(tmp_path: Path) -> None:
    """One subprocess, as cron or an auditor's shell runs it: the OS user and host are recorded."""
    data = tmp_path / "data"
    record(data, "c1", said="I want to cancel")
    env = {key: value for key, value in os.environ.items() if not key.startswith("IVR_")}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "run_ivr.py"),
            "recordings",
            "search",
            "--says",
            "cancel",
            "--json",
            "--data-dir",
            str(data),
            "--as",
            "Cron Job",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
        check=False,
    )
    if "ModuleNotFoundError" in result.stderr and os.environ.get("CI") != "true":
        pytest.skip(f"run_ivr.py cannot start yet: {result.stderr.strip().splitlines()[-1]}")
    assert result.returncode == 0, result.stderr
    assert [c["call_id"] for c in json.loads(result.stdout)] == ["c1"]
    (row,) = [r for r in audit_log(data, None) if r["action"] == "search"]
    assert row["actor"] == "Cron Job" and row["call_ids"] == ["c1"] and row["pid"] != os.getpid()
