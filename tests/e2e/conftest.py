"""End-to-end fixtures: a real ``run_ivr.py serve`` subprocess called by a real ``sipp``."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ivr.sipp_peer import free_port, require_tool, sipp_command, synthesize_caller_audio
from tests.e2e.mqtt_collector import MqttCollector
from tests.mqtt_broker import require_broker

ROOT = Path(__file__).resolve().parents[2]
SIP_DIR = ROOT / "tests" / "sip"


@dataclass
class IvrProcess:
    proc: subprocess.Popen[str]
    port: int
    data_dir: Path
    lines: list[str] = field(default_factory=list)

    def events(self, name: str) -> list[str]:
        return [line for line in self.lines if f"event={name}" in line]

    def wait_for(self, name: str, count: int = 1, timeout: float = 30.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(name)
            if len(found) >= count:
                return found
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(
            f"no {count}x event={name} within {timeout}s; log tail:\n" + "\n".join(self.lines[-30:])
        )

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"serve did not exit within {timeout:.0f} s of SIGTERM") from None

    def recordings(self) -> list[dict[str, Any]]:
        return list_recordings(self.data_dir)


def run_ivr_cli(
    data_dir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 180.0
) -> subprocess.CompletedProcess[str]:
    """``run_ivr.py ARGS --data-dir DATA_DIR`` (plus ``env``), which must exit 0."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run_ivr.py"), *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, f"run_ivr.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def list_recordings(data_dir: Path) -> list[dict[str, Any]]:
    """What ``run_ivr.py recordings list --json`` reports for ``data_dir``."""
    return list(json.loads(run_ivr_cli(data_dir, "recordings", "list", "--json").stdout))


@pytest.fixture
def start_ivr(tmp_path: Path) -> Iterator[Any]:
    started: list[IvrProcess] = []

    def start(
        flow: str | Path = ROOT / "flows" / "library" / "demo.yaml",
        max_calls: int = 20,
        workers: int = 1,
        data_dir: Path | None = None,
        extra_args: tuple[str, ...] = (),
        **env: str,
    ) -> IvrProcess:
        port = free_port()
        data_dir = data_dir or tmp_path / f"data-{port}"
        environment = dict(os.environ)
        environment.update(
            {
                "IVR_SIP__RTP_PORT_START": str(random.randrange(20000, 60000, 200)),
                "IVR_SIP__RTP_PORT_RANGE": "200",
                "IVR_LOG_LEVEL": "info",
                "PYTHONUNBUFFERED": "1",
                **env,
            }
        )
        proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "run_ivr.py"),
                "serve",
                "--bind",
                "127.0.0.1",
                "--sip-port",
                str(port),
                "--data-dir",
                str(data_dir),
                "--flow",
                str(flow),
                "--max-calls",
                str(max_calls),
                "--workers",
                str(workers),
                *extra_args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
            env=environment,
        )
        ivr = IvrProcess(proc, port, data_dir)
        assert proc.stdout is not None
        stream = proc.stdout
        threading.Thread(target=lambda: ivr.lines.extend(iter(stream.readline, "")), daemon=True).start()
        started.append(ivr)
        ivr.wait_for("serve.ready", count=workers + 1 if workers > 1 else 1, timeout=90)
        return ivr

    yield start
    for ivr in started:
        if ivr.proc.poll() is None:
            ivr.proc.kill()
            ivr.proc.wait()


@pytest.fixture
def mqtt_collector() -> Iterator[MqttCollector]:
    """Every message published under a fresh topic prefix on the real Mosquitto (skipped when it
    is not running, except under CI=true); pass ``**mqtt_collector.serve_env()`` to ``start_ivr``."""
    require_broker()
    collector = MqttCollector()
    collector.start()
    yield collector
    collector.stop()


@dataclass
class CallResult:
    returncode: int
    output: str
    workdir: Path


def _prepare_call(
    ivr: IvrProcess,
    scenario: str,
    workdir: Path,
    *,
    say: str | None,
    lead_s: float,
    codec: str,
    calls: int,
    concurrent: int,
    timeout_s: float,
) -> list[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    if say is not None:
        # A real phone keeps sending RTP (silence) after it speaks; so does this one, until BYE.
        synthesize_caller_audio(
            say,
            workdir / "caller.wav",
            codec="PCMA" if codec == "PCMA" else "PCMU",
            lead_s=lead_s,
            tail_s=30.0,
        )
    return sipp_command(
        SIP_DIR / f"{scenario}.xml",
        f"127.0.0.1:{ivr.port}",
        local_port=free_port(),
        calls=calls,
        concurrent=concurrent,
        rate=20,
        timeout_s=timeout_s,
    )


def place_call(
    ivr: IvrProcess,
    scenario: str,
    workdir: Path,
    *,
    say: str | None = None,
    lead_s: float = 0.0,
    codec: str = "PCMU",
    calls: int = 1,
    concurrent: int = 1,
    timeout_s: float = 60.0,
) -> CallResult:
    """Call the IVR with ``tests/sip/<scenario>.xml`` from ``workdir`` (which gets caller.wav)."""
    cmd = _prepare_call(
        ivr,
        scenario,
        workdir,
        say=say,
        lead_s=lead_s,
        codec=codec,
        calls=calls,
        concurrent=concurrent,
        timeout_s=timeout_s,
    )
    proc = subprocess.run(
        cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout_s + 30, check=False
    )
    errors = workdir / "sipp_errors.log"
    output = proc.stdout[-3000:] + proc.stderr[-3000:] + (errors.read_text() if errors.exists() else "")
    return CallResult(proc.returncode, output, workdir)


def start_call(
    ivr: IvrProcess, scenario: str, workdir: Path, timeout_s: float = 60.0
) -> subprocess.Popen[str]:
    """The same call as :func:`place_call`, left running in the background."""
    cmd = _prepare_call(
        ivr, scenario, workdir, say=None, lead_s=0.0, codec="PCMU", calls=1, concurrent=1, timeout_s=timeout_s
    )
    return subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def read_stereo(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    with wave.open(str(path)) as wav:
        assert wav.getnchannels() == 2 and wav.getsampwidth() == 2 and wav.getframerate() == 8000
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    return data[:, 0], data[:, 1]


def active_seconds(channel: np.ndarray, threshold: float = 300.0) -> float:
    """Seconds of 20 ms frames whose RMS is above ``threshold``."""
    frames = channel[: channel.size // 160 * 160].astype(np.float64).reshape(-1, 160)
    return float((np.sqrt((frames**2).mean(axis=1)) > threshold).sum() * 0.02)


def sipp_uas(
    scenario: str, workdir: Path, calls: int = 1, extra: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[str], int]:
    """A sipp UAS on a free port answering ``calls`` calls as ``tests/sip/<scenario>.xml`` says.

    It runs in ``workdir`` (where its audio files are) and writes errors to sipp_errors.log there.
    """
    port = free_port()
    proc = subprocess.Popen(
        [
            require_tool("sipp", "sip-tester"),
            "-sf",
            str(SIP_DIR / f"{scenario}.xml"),
            "-i",
            "127.0.0.1",
            "-mi",
            "127.0.0.1",
            "-p",
            str(port),
            "-m",
            str(calls),
            "-nostdin",
            "-trace_err",
            "-error_file",
            "sipp_errors.log",
            *extra,
        ],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, port
