"""A real call into ``run_ivr.py serve`` from ``sipp``, then the auditor's workbench on it: found
by the caller's number and by what they said, read, held, exported as a bundle that checks with
sha256sum and openssl, judged by its flow's QA rules and found by the verdict, every access in
the audit log, the archive still verifying (next to the QA file)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ROOT, place_call

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

AFTER_QUESTION_S = 7.0  # the demo flow's greeting and question, then the caller speaks
CALLER = "+15550100123"  # tests/sip/caller_speaks.xml


def auditor(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("IVR_")}
    return subprocess.run(
        [sys.executable, str(ROOT / "run_ivr.py"), "recordings", *args, "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
        check=False,
    )


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def heard_by_the_engine(data: Path) -> list[Any]:
    """Every call's outcome and transcript, for a failure message: a miss under load is then
    told apart (the recognizer heard something else) from a search that does not find."""
    calls = as_json(auditor(data, "search", "--json"))
    shown = [auditor(data, "show", call["call_id"]).stdout for call in calls]
    return [(call.get("outcome"), text) for call, text in zip(calls, shown, strict=True)]


def test_a_served_call_is_found_held_exported_and_audited(start_ivr: Any, tmp_path: Path) -> None:
    ivr = start_ivr()
    call = place_call(
        ivr, "caller_speaks", tmp_path / "call", say="I want to check my balance", lead_s=AFTER_QUESTION_S
    )
    assert call.returncode == 0, call.output
    ivr.wait_for("call.ended")
    assert ivr.stop() == 0
    data = ivr.data_dir

    # found by the caller's number in another format, and by the word the caller said
    found = as_json(
        auditor(
            data,
            "search",
            "--number",
            "1 (555) 010-0123",
            "--says",
            "balance",
            "--speaker",
            "caller",
            "--json",
            "--as",
            "Ann Auditor",
        )
    )
    assert len(found) == 1, (found, heard_by_the_engine(data))
    call_id = found[0]["call_id"]
    assert found[0]["direction"] == "inbound" and found[0]["outcome"] == "understood"
    assert found[0]["number"].endswith("23") and CALLER not in json.dumps(found)
    assert as_json(auditor(data, "search", "--says", "balance", "--speaker", "bot", "--json")) != []
    assert as_json(auditor(data, "search", "--number", "+15550100999", "--json")) == []

    shown = auditor(data, "show", call_id, "--as", "Ann Auditor")
    assert shown.returncode == 0 and "balance" in shown.stdout

    held = auditor(data, "hold", call_id, "--reason", "e2e case 1", "--as", "Legal Lee")
    assert held.returncode == 0, held.stderr
    listed = as_json(auditor(data, "search", "--json"))
    assert [c["held"] for c in listed] == [True]

    bundle = tmp_path / "case.zip"
    exported = auditor(data, "export", "--call", call_id, "--out", str(bundle), "--as", "Ann Auditor")
    assert exported.returncode == 0, exported.stderr
    unpacked = tmp_path / "regulator"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(unpacked)
    if shutil.which("openssl") is not None:
        checked = subprocess.run(
            ["sh", "verify.sh"], cwd=unpacked, capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert f"OK {call_id}" in checked.stdout

    # judged by the demo flow's shipped QA rules; the verdict lands in the index
    judged = auditor(data, "qa", "--no-progress")
    assert judged.returncode in (0, 1) and f" {call_id} score " in judged.stdout, (
        judged.stdout + judged.stderr
    )
    status = judged.stdout.split()[0].lower()
    (indexed,) = as_json(auditor(data, "search", "--qa", status, "--json"))
    assert indexed["call_id"] == call_id and indexed["qa"]["status"] == status
    assert as_json(auditor(data, "search", "--qa", "none", "--json")) == []

    log = as_json(auditor(data, "audit", "--json"))
    assert [(row["action"], row["actor"]) for row in log if row["actor"] != row["os_user"].split(" ")[0]] == [
        ("search", "Ann Auditor"),
        ("show", "Ann Auditor"),
        ("hold", "Legal Lee"),
        ("export", "Ann Auditor"),
    ]
    assert all(row["call_ids"] == [call_id] for row in log if row["action"] in ("show", "hold", "export"))

    verified = auditor(data, "verify", "--all")
    assert verified.returncode == 0, verified.stdout
    assert "1 of 1 recordings verified" in verified.stdout
