from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from config.logs import KeyValueFormatter, mask_number

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("+15550100123", "+*********23"),
        ("sip:+15550100123@10.0.0.1:5060", "sip:+*********23@10.0.0.1:5060"),
        ('"Test Caller" <sip:+15550100123@127.0.0.1>', "sip:+*********23@127.0.0.1"),
        ("sip:ivr@127.0.0.1", "sip:***@127.0.0.1"),
        ("sip:@host", "sip:***@host"),
        ("1234", "****"),
    ],
)
def test_mask_number_keeps_only_the_last_two_digits(raw: str, masked: str) -> None:
    assert mask_number(raw) == masked


def test_formatter_writes_one_line_of_key_values() -> None:
    record = logging.LogRecord("ivr.call", logging.INFO, __file__, 1, "call.ended", None, None)
    record.fields = {"call_id": "abc", "reason": 'said "bye"\nthen left'}
    line = KeyValueFormatter().format(record)
    assert "\n" not in line
    assert "event=call.ended" in line and "call_id=abc" in line
    assert 'reason="said \\"bye\\"\\nthen left"' in line


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
