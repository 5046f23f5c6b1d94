"""Supervised workers and drain mode: real processes, real signals, real sipp callers.

A worker killed mid-call is noticed at once, its caller's recording is sealed by its successor,
new callers go to the other worker meanwhile and to it again once it is back. SIGUSR1 drains:
new callers get 503 with Retry-After, the live call runs to its end, the process exits 0.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from ivr.sipp_peer import synthesize_caller_audio
from tests.e2e.conftest import IvrProcess, place_call, start_call

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# The demo flow's greeting and question last about 6.6 s; the caller speaks after them.
AFTER_QUESTION_S = 7.0


def field(line: str, name: str) -> str:
    match = re.search(rf" {name}=(\S+)", line)
    assert match is not None, f"no {name}= in {line}"
    return match.group(1)


def worker_pid(ivr: IvrProcess, index: int) -> int:
    started = [line for line in ivr.events("worker.started") if f" index={index} " in line]
    return int(field(started[-1], "pid"))


def connected_on(ivr: IvrProcess) -> list[str]:
    """Which worker each connected call ran on, in order (``worker=N`` prefixes its log lines)."""
    return [line.split(" ", 1)[0] for line in ivr.events("call.connected")]


def start_speaking_caller(ivr: IvrProcess, workdir: Path) -> subprocess.Popen[str]:
    """A redirected caller that speaks after the question and then stays on the line."""
    workdir.mkdir(parents=True)
    synthesize_caller_audio("opening hours", workdir / "caller.wav", lead_s=AFTER_QUESTION_S, tail_s=60.0)
    return start_call(ivr, "caller_redirected", workdir, timeout_s=90)


def finish(call: subprocess.Popen[str], timeout: float = 90.0) -> tuple[int, str]:
    """Wait for a background sipp (reading its output so it never blocks on a full pipe)."""
    try:
        out, _ = call.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        call.terminate()
        out, _ = call.communicate(timeout=30)
    return call.returncode, out[-3000:]


def wait_for_line(ivr: IvrProcess, text: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(text in line for line in ivr.lines):
        assert time.monotonic() < deadline, f"no {text!r} in the log; tail:\n" + "\n".join(ivr.lines[-30:])
        time.sleep(0.05)


def test_a_killed_worker_is_replaced_and_its_call_recording_sealed(start_ivr: Any, tmp_path: Path) -> None:
    ivr = start_ivr(workers=2, IVR_BALANCER__FRONT="redirect")  # the 302 front, no Kamailio
    live = start_speaking_caller(ivr, tmp_path / "live")
    try:
        ivr.wait_for("call.connected")
        assert connected_on(ivr) == ["worker=0"]  # both idle: the lower index takes it
        os.kill(worker_pid(ivr, 0), signal.SIGKILL)
        died = ivr.wait_for("worker.died", timeout=5)[0]
        assert field(died, "index") == "0"
        assert field(died, "exit_code") == "-9" and field(died, "signal") == "SIGKILL"

        # Meanwhile the other worker takes new callers.
        second = place_call(
            ivr, "caller_redirected", tmp_path / "second", say="opening hours", lead_s=AFTER_QUESTION_S
        )
        assert second.returncode == 0, second.output
        assert connected_on(ivr)[1] == "worker=1"
    finally:
        finish(live, timeout=1)  # it waits for a BYE its dead worker will never send

    restarted = ivr.wait_for("worker.restarted", timeout=90)[0]
    assert field(restarted, "index") == "0" and int(field(restarted, "pid")) == worker_pid(ivr, 0)
    # The new worker sealed what the killed one was recording before it listened.
    recovered = [line for line in ivr.events("recording.recovery_done") if field(line, "recovered") == "1"]
    assert recovered and recovered[0].startswith("worker=0 "), ivr.events("recording.recovery_done")
    statuses = sorted(rec["status"] for rec in ivr.recordings())
    assert statuses == ["complete", "interrupted"]

    # It gets callers again, and its load was forgotten with the dead process (else worker 1,
    # idle, would be chosen over a worker still counting the killed call).
    third = place_call(
        ivr, "caller_redirected", tmp_path / "third", say="opening hours", lead_s=AFTER_QUESTION_S
    )
    assert third.returncode == 0, third.output
    assert connected_on(ivr)[2] == "worker=0"
    assert ivr.stop() == 0
    assert "worker_exit_codes=0,0" in ivr.events("serve.stopped")[-1]


def test_a_native_crash_leaves_a_traceback_of_every_thread_in_the_log(start_ivr: Any) -> None:
    ivr = start_ivr()
    os.kill(ivr.proc.pid, signal.SIGSEGV)
    assert ivr.proc.wait(10) == -signal.SIGSEGV
    wait_for_line(ivr, "Fatal Python error: Segmentation fault")
    wait_for_line(ivr, "Current thread 0x")
    assert any(line.startswith("Thread 0x") for line in ivr.lines)  # the pjsua2 thread and the rest


def test_drain_refuses_new_callers_and_exits_once_the_live_call_ends(start_ivr: Any, tmp_path: Path) -> None:
    ivr = start_ivr()
    live = start_call(ivr, "caller_silent", tmp_path / "live", timeout_s=90)
    try:
        ivr.wait_for("call.connected")
        os.kill(ivr.proc.pid, signal.SIGUSR1)
        assert field(ivr.wait_for("serve.draining")[0], "live_calls") == "1"
        refused = place_call(ivr, "caller_unavailable", tmp_path / "refused")
        assert refused.returncode == 0, refused.output  # 503 with a Retry-After
        assert "status=503" in ivr.wait_for("call.refused")[0]
        assert ivr.proc.poll() is None  # the live call goes on
    finally:
        code, output = finish(live)
    assert code == 0, output  # the bot ended it politely (BYE), as without a drain
    assert ivr.proc.wait(30) == 0
    assert field(ivr.events("serve.stopping")[0], "reason") == "drained"
    ivr.wait_for("serve.stopped")
    recordings = ivr.recordings()
    assert [rec["status"] for rec in recordings] == ["complete"]


def test_drain_of_the_front_drains_every_worker(start_ivr: Any, tmp_path: Path) -> None:
    ivr = start_ivr(workers=2, IVR_BALANCER__FRONT="redirect")  # the 302 front, no Kamailio
    live = start_speaking_caller(ivr, tmp_path / "live")
    try:
        ivr.wait_for("call.connected")
        os.kill(ivr.proc.pid, signal.SIGUSR1)
        ivr.wait_for("serve.draining", count=3)  # the front and both workers
        refused = place_call(ivr, "caller_unavailable", tmp_path / "refused")
        assert refused.returncode == 0, refused.output
        assert ivr.proc.poll() is None
    finally:
        code, output = finish(live)
    assert code == 0, output
    assert ivr.proc.wait(60) == 0
    assert len(ivr.events("worker.exited")) == 2 and not ivr.events("worker.died")
    assert "worker_exit_codes=0,0" in ivr.events("serve.stopped")[-1]
    assert [rec["status"] for rec in ivr.recordings()] == ["complete"]
