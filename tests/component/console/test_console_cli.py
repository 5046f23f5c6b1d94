"""``run_ivr.py users ...`` and the console started beside ``serve`` (console.enabled)."""

from __future__ import annotations

import argparse
import io
import time
import urllib.request
from pathlib import Path

import pytest

from console.cli import console_beside_serve
from ivr.cli import main
from ivr.sipp_peer import free_port


def run(capsys: pytest.CaptureFixture[str], data_dir: Path, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--data-dir", str(data_dir)])
    out, err = capsys.readouterr()
    return code, out, err


def test_users_add_list_disable_passwd(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    code, out, _ = run(
        capsys,
        tmp_path,
        "users",
        "add",
        "ann",
        "--role",
        "manager",
        "--grant",
        "recordings.play",
        "--password-stdin",
    )
    assert (code, out) == (0, "user ann: added\n")
    answers = iter(["first password!!", "second password!"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    code, _, err = run(capsys, tmp_path, "users", "add", "bob", "--role", "auditor")
    assert code == 2 and "the two passwords differ" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    code, _, err = run(capsys, tmp_path, "users", "passwd", "ann", "--password-stdin")
    assert code == 2 and "at least 10 characters" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("x" * 12 + "\n"))
    code, _, err = run(capsys, tmp_path, "users", "add", "ann", "--role", "admin", "--password-stdin")
    assert code == 2 and "user 'ann' already exists" in err
    assert run(capsys, tmp_path, "users", "disable", "ann")[0] == 0
    code, out, _ = run(capsys, tmp_path, "users", "list")
    assert out == "ann\tmanager\trecordings.play\tdisabled\n"
    code, _, err = run(capsys, tmp_path, "users", "disable", "nobody")
    assert code == 2 and "no user 'nobody'" in err
    assert "a long enough password" not in err


def test_serve_starts_the_console_beside_it_when_enabled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = argparse.Namespace(config=None, data_dir=str(tmp_path))
    with console_beside_serve(args):
        pass  # disabled by default: nothing started
    port = free_port()
    monkeypatch.setenv("IVR_CONSOLE__ENABLED", "true")
    monkeypatch.setenv("IVR_CONSOLE__PORT", str(port))
    with console_beside_serve(args):
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "the console did not start beside serve"
                time.sleep(0.3)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2)
