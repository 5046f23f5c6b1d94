"""A native crash in a process started by run_ivr.py leaves every thread's traceback on stderr
(moved out of tests/unit/ivr/test_ivr_logs.py: it starts a Python process of its own)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.component

ROOT = Path(__file__).resolve().parents[3]


def test_a_native_crash_leaves_every_threads_traceback_on_stderr() -> None:
    """What a SIGSEGV in pjsua2 leaves in the log of a process started by run_ivr.py."""
    code = (
        "import os, signal, threading\n"
        "from config.logs import enable_crash_tracebacks\n"
        "enable_crash_tracebacks()\n"
        "threading.Thread(target=threading.Event().wait, name='pjsua2', daemon=True).start()\n"
        "os.kill(os.getpid(), signal.SIGSEGV)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONFAULTHANDLER"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=30,
        check=False,
    )
    assert done.returncode == -signal.SIGSEGV
    assert "Fatal Python error: Segmentation fault" in done.stderr
    assert "Current thread 0x" in done.stderr
    assert "\nThread 0x" in done.stderr  # every thread, not just the one that crashed
