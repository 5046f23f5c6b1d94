"""The dialer calling real ``sipp`` UAS peers through ``run_ivr.py campaign`` and ``dial``."""

from __future__ import annotations

import csv
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ivr.sipp_peer import free_port, synthesize_caller_audio
from tests.e2e.campaign_runs import callback_list, dial, person_audio, run_ivr, start_callbacks
from tests.e2e.conftest import list_recordings, place_call, sipp_uas

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SIP_DIR = ROOT / "tests" / "sip"
FLOW = ROOT / "flows" / "library" / "compliance_callback.yaml"


def callee(
    scenario: str, workdir: Path, calls: int, trace: bool = False
) -> tuple[subprocess.Popen[str], int]:
    """A sipp UAS callee; ``trace`` keeps every SIP message it saw in ``workdir/messages.log``."""
    return sipp_uas(
        scenario, workdir, calls, ("-trace_msg", "-message_file", "messages.log") if trace else ()
    )


def campaign(tmp_path: Path, *, machine: str = "hangup_retry", max_attempts: int = 2) -> Path:
    data_dir = tmp_path / "data"
    calls = callback_list(tmp_path / "calls.csv", ["+12025550143"], "the Acme Private Credit Fund")
    results = ("busy", "no_answer", "network_failure", "answered_machine")
    retries = [option for result in results for option in ("--retry", f"{result}=1s")]
    start_callbacks(
        data_dir, calls, FLOW, "--max-attempts", str(max_attempts), *retries, "--machine", machine
    )
    return data_dir


def exported(data_dir: Path, tmp_path: Path) -> dict[str, Any]:
    out = tmp_path / "export.csv"
    run_ivr(data_dir, "campaign", "export", "callbacks", "--output", str(out))
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1
    return rows[0]


def recordings(data_dir: Path) -> list[dict[str, Any]]:
    return list_recordings(data_dir)


def wrong_person(tmp_path: Path, trace: bool = False) -> tuple[Path, Path, subprocess.Popen[str], int]:
    """The callbacks campaign (data dir) and its callee (workdir, sipp, port), who is not Maria
    Lopez: "No." when asked whether they are, and "No." again when asked once more."""
    data_dir = campaign(tmp_path)
    workdir = tmp_path / "callee"
    workdir.mkdir()
    person_audio(workdir, "No.", answer_at_s=12.0, then="No.", then_after_s=6.5)
    peer, port = callee("uas_person", workdir, calls=1, trace=trace)
    return data_dir, workdir, peer, port


def test_person_who_answers_runs_the_flow_and_its_outcome_is_recorded(tmp_path: Path) -> None:
    data_dir, workdir, peer, port = wrong_person(tmp_path)
    dial(data_dir, port)
    assert peer.wait(30) == 0, (workdir / "sipp_errors.log").read_text(errors="replace")
    row = exported(data_dir, tmp_path)
    assert (row["state"], row["attempts"], row["last_result"], row["outcome"]) == (
        "done",
        "1",
        "answered_human",
        "wrong_person",
    )
    recs = recordings(data_dir)
    assert len(recs) == 1 and recs[0]["direction"] == "outbound" and recs[0]["call_id"] == row["recording_id"]
    assert recs[0]["outcome"] == "wrong_person"
    assert any("Am I speaking with Maria Lopez" in t["text"] for t in recs[0]["turns"])
    # The attempt records the real call events in order and the answer that decided the outcome.
    with sqlite3.connect(data_dir / "ivr.sqlite3") as db:
        (row,) = db.execute(
            "SELECT started_at, invite_at, answered_at, flow_started_at, ended_at, decision_text, "
            "decision_confidence, ended_after_deadline FROM attempts"
        ).fetchall()
    times = [datetime.fromisoformat(t) for t in row[:5]]
    assert times == sorted(times), times
    assert times[2] - times[1] < timedelta(seconds=5)  # the callee answers half a second after the INVITE
    assert str(row[5]).lower().strip(" .") == "no" and 0 < row[6] <= 1 and row[7] == 0, row


def test_voicemail_gets_the_message_after_the_beep(tmp_path: Path) -> None:
    data_dir = campaign(tmp_path, machine="leave_message")
    workdir = tmp_path / "callee"
    workdir.mkdir()
    greeting = synthesize_caller_audio(
        "Hi, you have reached Maria. I can't take your call right now. Please leave your name, number and a "
        "short message after the tone, and I will get back to you as soon as I can.",
        workdir / "greeting.wav",
        lead_s=0.4,
        tail_s=0.2,
    )
    subprocess.run(
        [
            "sox",
            "-n",
            "-r",
            "8000",
            "-c",
            "1",
            "-e",
            "u-law",
            str(workdir / "beep.wav"),
            "synth",
            "0.6",
            "sine",
            "1000",
            "vol",
            "0.5",
            "pad",
            "0",
            "30",
        ],
        check=True,
    )
    subprocess.run(
        ["sox", str(greeting), str(workdir / "beep.wav"), "-e", "u-law", str(workdir / "voicemail.wav")],
        check=True,
    )
    peer, port = callee("uas_voicemail", workdir, calls=1)
    dial(data_dir, port)
    assert peer.wait(30) == 0
    row = exported(data_dir, tmp_path)
    assert (row["attempts"], row["last_result"], row["outcome"]) == ("1", "answered_machine", "message_left")
    recs = recordings(data_dir)
    assert len(recs) == 1
    bot = [t for t in recs[0]["turns"] if t["speaker"] == "bot"]
    assert len(bot) == 1 and "automated call" in bot[0]["text"]
    assert bot[0]["start_s"] > 8.0  # after the greeting and the beep, not over them


@pytest.mark.parametrize(
    ("scenario", "result", "ring_timeout_s"),
    [("uas_busy", "busy", 30), ("uas_unavailable", "network_failure", 30), ("uas_no_answer", "no_answer", 3)],
)
def test_unanswered_calls_are_retried_then_closed(
    tmp_path: Path, scenario: str, result: str, ring_timeout_s: float
) -> None:
    data_dir = campaign(tmp_path, max_attempts=2)
    workdir = tmp_path / "callee"
    workdir.mkdir()
    peer, port = callee(scenario, workdir, calls=2)
    dial(data_dir, port, ring_timeout_s=ring_timeout_s)
    assert peer.wait(30) == 0, (workdir / "sipp_errors.log").read_text(errors="replace")
    row = exported(data_dir, tmp_path)
    assert (row["state"], row["attempts"], row["last_result"]) == ("done", "2", result)
    assert row["outcome"] in {"max_attempts", "unreached"}
    assert recordings(data_dir) == []


def test_dial_calls_from_the_sip_port_it_is_given(tmp_path: Path) -> None:
    """A trunk that accepts calls only from a known address and port (``dial --sip-port``)."""
    data_dir = campaign(tmp_path, max_attempts=1)
    workdir = tmp_path / "callee"
    workdir.mkdir()
    peer, port = callee("uas_busy", workdir, calls=1, trace=True)
    source = free_port()
    dial(data_dir, port, extra=("--sip-port", str(source), "--bind", "127.0.0.1"))
    assert peer.wait(30) == 0, (workdir / "sipp_errors.log").read_text(errors="replace")
    assert f"Via: SIP/2.0/UDP 127.0.0.1:{source}" in (workdir / "messages.log").read_text(errors="replace")


def test_retention_callee_who_says_stop_calling_lands_on_the_do_not_call_list(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    calls = tmp_path / "calls.csv"
    calls.write_text(
        "phone,first_name,last_name,timezone,topic\n"
        "+12025550143,Maria,Lopez,America/New_York,that your loan application is not finished\n"
    )
    run_ivr(
        data_dir,
        "campaign",
        "import",
        "winback",
        str(calls),
        "--kind",
        "retention",
        "--flow",
        str(ROOT / "flows" / "library" / "retention.yaml"),
        "--hours",
        "00:00-23:59",
    )
    run_ivr(data_dir, "campaign", "start", "winback")
    workdir = tmp_path / "callee"
    workdir.mkdir()
    # Once asked whether they are Maria Lopez; then "yes" when asked to confirm they want no calls.
    person_audio(workdir, "Stop calling me.", answer_at_s=12.5, then="Yes.", then_after_s=5.5)
    peer, port = callee("uas_person", workdir, calls=1)
    dial(data_dir, port)
    assert peer.wait(30) == 0
    out = tmp_path / "export.csv"
    run_ivr(data_dir, "campaign", "export", "winback", "--output", str(out))
    with out.open(newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert (row["attempts"], row["last_result"], row["outcome"]) == ("1", "answered_human", "do_not_call")
    assert "+12025550143" in run_ivr(data_dir, "campaign", "dnc", "list")


def test_serve_with_dial_answers_a_caller_and_works_the_campaign_on_one_endpoint(
    start_ivr: Any, tmp_path: Path
) -> None:
    data_dir, workdir, peer, port = wrong_person(tmp_path, trace=True)
    ivr = start_ivr(
        flow=ROOT / "flows" / "library" / "demo.yaml",
        data_dir=data_dir,
        extra_args=("--dial", "--campaign", "callbacks"),
        IVR_DIALER__TRUNK_URI=f"sip:{{number}}@127.0.0.1:{port}",
    )
    # While the dialer's call runs, a caller dials in to the same process.
    call = place_call(ivr, "caller_speaks", tmp_path / "caller", say="I want to check my balance", lead_s=7.0)
    assert call.returncode == 0, call.output
    assert peer.wait(90) == 0, (workdir / "sipp_errors.log").read_text(errors="replace")
    ivr.wait_for("dialer.outcome", timeout=30)
    assert ivr.stop() == 0
    assert ivr.events("serve.stopped")
    # The campaign's INVITE left from serve's own SIP port: one endpoint for both directions.
    invite = (workdir / "messages.log").read_text(errors="replace")
    assert f"Via: SIP/2.0/UDP 127.0.0.1:{ivr.port}" in invite
    row = exported(data_dir, tmp_path)
    assert (row["state"], row["attempts"], row["outcome"]) == ("done", "1", "wrong_person")
    by_direction = {rec["direction"]: rec for rec in recordings(data_dir)}
    assert set(by_direction) == {"inbound", "outbound"}
    assert by_direction["inbound"]["outcome"] == "understood"
    assert by_direction["outbound"]["call_id"] == row["recording_id"]


def test_serve_dial_with_an_unknown_campaign_fails_before_listening(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "run_ivr.py"),
            "serve",
            "--dial",
            "--campaign",
            "no-such-campaign",
            "--data-dir",
            str(tmp_path / "data"),
            "--sip-port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "no-such-campaign" in proc.stderr


def test_serve_workers_with_dial_pass_the_dialer_on_to_the_worker_processes(
    start_ivr: Any, tmp_path: Path
) -> None:
    data_dir, workdir, peer, port = wrong_person(tmp_path)
    ivr = start_ivr(
        data_dir=data_dir,
        workers=2,
        extra_args=("--dial",),
        # One call at a time on this trunk: only one of the two workers may dial.
        IVR_DIALER__MAX_CONCURRENT_CALLS="1",
        IVR_DIALER__TRUNK_URI=f"sip:{{number}}@127.0.0.1:{port}",
    )
    assert peer.wait(90) == 0, (workdir / "sipp_errors.log").read_text(errors="replace")
    ivr.wait_for("dialer.outcome", timeout=30)
    assert len(ivr.events("dialer.worker_started")) == 1
    assert ivr.stop() == 0
    row = exported(data_dir, tmp_path)
    assert (row["state"], row["attempts"], row["outcome"]) == ("done", "1", "wrong_person")
