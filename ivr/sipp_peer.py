"""A real SIP peer for the demo and the tests: ``sipp`` scenarios plus espeak-ng caller audio.

sipp streams a file as RTP without decoding it (it skips the WAV header), so caller audio is
made as an 8 kHz G.711 WAV with the silence around the words baked in: that decides when the
caller speaks.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from config.errors import MissingDependencyError

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"


def require_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise MissingDependencyError(name, f"install the Debian package '{package}' (scripts/setup.sh does)")
    return path


def synthesize_caller_audio(
    text: str,
    path: Path,
    *,
    codec: Literal["PCMU", "PCMA"] = "PCMU",
    lead_s: float = 0.0,
    tail_s: float = 0.5,
    voice: str = "en-us",
    rate_wpm: int = 150,
) -> Path:
    """Speak ``text`` with espeak-ng into an 8 kHz G.711 WAV padded with silence."""
    espeak = require_tool("espeak-ng", "espeak-ng")
    sox = require_tool("sox", "sox")
    raw = path.with_suffix(".espeak.wav")
    subprocess.run(
        [espeak, "-v", voice, "-s", str(rate_wpm), "-w", str(raw), text], check=True, capture_output=True
    )
    encoding = "u-law" if codec == "PCMU" else "a-law"
    subprocess.run(
        [
            sox,
            str(raw),
            "-r",
            "8000",
            "-c",
            "1",
            "-e",
            encoding,
            str(path),
            "pad",
            f"{lead_s:.3f}",
            f"{tail_s:.3f}",
        ],
        check=True,
        capture_output=True,
    )
    raw.unlink()
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP right now (SIP listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
            return port
    raise OSError("no free port for SIP on " + host)


@dataclass(frozen=True)
class SippResult:
    returncode: int
    stdout: str
    stderr: str
    errors: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def sipp_command(
    scenario: Path,
    target: str,
    *,
    local_port: int,
    calls: int = 1,
    concurrent: int = 1,
    rate: float = 10.0,
    timeout_s: float = 60.0,
    service: str = "ivr",
    extra: tuple[str, ...] = (),
) -> list[str]:
    sipp = require_tool("sipp", "sip-tester")
    return [
        sipp,
        "-sf",
        str(scenario),
        target,
        "-s",
        service,
        "-i",
        "127.0.0.1",
        "-mi",
        "127.0.0.1",
        "-p",
        str(local_port),
        "-m",
        str(calls),
        "-l",
        str(concurrent),
        "-r",
        str(rate),
        "-timeout",
        f"{int(timeout_s)}s",
        "-timeout_error",
        "-nostdin",
        "-trace_err",
        "-error_file",
        "sipp_errors.log",
        *extra,
    ]


async def run_sipp(cmd: list[str], cwd: Path, timeout_s: float = 90.0) -> SippResult:
    """Run sipp to completion in ``cwd`` (where it finds caller.wav and writes its logs)."""
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        cwd=str(cwd),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
    errors_file = cwd / "sipp_errors.log"
    errors = errors_file.read_text(errors="replace") if errors_file.exists() else ""
    return SippResult(
        proc.returncode if proc.returncode is not None else -1,
        out.decode(errors="replace"),
        err.decode(errors="replace"),
        errors,
    )
