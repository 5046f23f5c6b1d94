"""Admins edit the flow while ``serve`` runs: valid edits reach new calls, typos never do."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ROOT, place_call

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def greeting(ivr: Any, workdir: Path) -> str:
    """Call, hang up during the greeting, and return what the bot said first."""
    before = {r["call_id"] for r in ivr.recordings()}
    call = place_call(ivr, "caller_hangs_up", workdir)
    assert call.returncode == 0, call.output
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        new = [r for r in ivr.recordings() if r["call_id"] not in before]
        if new and new[0]["status"] == "complete":
            return str(next(t["text"] for t in new[0]["turns"] if t["speaker"] == "bot"))
        time.sleep(0.2)
    raise AssertionError("the call left no finished recording")


def touch_later(path: Path) -> None:
    """Make sure the edit is seen as a change even within one mtime tick."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))


def test_valid_edit_reaches_new_calls_and_a_broken_one_is_kept_out(start_ivr: Any, tmp_path: Path) -> None:
    flow = tmp_path / "line.yaml"
    shutil.copy(ROOT / "flows" / "library" / "demo.yaml", flow)
    ivr = start_ivr(flow=flow)
    assert greeting(ivr, tmp_path / "first").startswith("Hello, and thank you for calling the demo line")

    flow.write_text(
        flow.read_text().replace("thank you for calling the demo line", "welcome to the new line")
    )
    touch_later(flow)
    ivr.wait_for("flow.reloaded", timeout=15)
    assert greeting(ivr, tmp_path / "second").startswith("Hello, and welcome to the new line")

    flow.write_text(flow.read_text().replace("next: ask", "next: aks"))  # a typo in a step name
    touch_later(flow)
    rejected = ivr.wait_for("flow_reload_rejected", timeout=15)[0]
    assert "line.yaml" in rejected
    assert greeting(ivr, tmp_path / "third").startswith("Hello, and welcome to the new line")
    assert ivr.stop() == 0


def test_hotline_answers_a_real_call(start_ivr: Any, tmp_path: Path) -> None:
    ivr = start_ivr(flow=ROOT / "flows" / "library" / "hotline.yaml")
    first = greeting(ivr, tmp_path / "call")
    # Open or closed depends on the hour in London; either way the bank greets the caller.
    assert first.startswith(("Welcome to Acme Bank", "Thank you for calling Acme Bank"))
    assert ivr.stop() == 0
