"""One sipp load step against a running serve, and what sipp reported about it.

:func:`load_step` runs a scenario to completion and measures serve around it (CPU of serve and
of its process tree, load average before and after); :class:`SippRun` holds sipp's final
statistics (``-trace_stat``) and :func:`parse_sipp_messages` reads its message trace.
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.capacity_serve import CLK_TCK, LOOPBACK, Serve, loadavg
from ivr.sipp_peer import free_port, sipp_command


@dataclass(frozen=True)
class SippRun:
    returncode: int
    elapsed_s: float
    stats: dict[str, str]
    output: str
    stalls: int  # sipp's own watchdog trips: its main loop did not run for 500 ms (a busy machine)

    def counter(self, name: str) -> int:
        value = self.stats.get(name, "")
        return int(value) if value.strip().lstrip("-").isdigit() else -1

    @property
    def ok(self) -> int:
        return max(self.counter("SuccessfulCall(C)"), 0)

    def failed(self, calls: int) -> int:
        """sipp's failed calls; all ``calls`` when it left no statistics."""
        return self.counter("FailedCall(C)") if self.stats else calls

    def mean_ms(self, name: str) -> float:
        """A sipp duration statistic (``HH:MM:SS:usec``) in ms."""
        parts = self.stats.get(name, "").split(":")
        if len(parts) != 4:
            return float("nan")
        hours, minutes, seconds, micros = (int(x) for x in parts)
        return ((hours * 60 + minutes) * 60 + seconds) * 1000 + micros / 1000


def run_sipp(
    scenario: Path,
    serve: Serve,
    workdir: Path,
    *,
    calls: int,
    concurrent: int,
    rate: float,
    timeout_s: float,
    extra: tuple[str, ...] = (),
) -> SippRun:
    """Run sipp to completion in ``workdir``; its final statistics come from ``-trace_stat``."""
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = sipp_command(
        scenario,
        f"{LOOPBACK}:{serve.port}",
        local_port=free_port(),
        calls=calls,
        concurrent=concurrent,
        rate=rate,
        timeout_s=timeout_s,
        extra=("-trace_stat", "-stf", "stats.csv", "-fd", "1", *extra),
    )
    started = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout_s + 30, check=False
        )
        returncode, output = proc.returncode, proc.stdout[-2000:] + proc.stderr[-2000:]
    except subprocess.TimeoutExpired:
        returncode, output = -1, "sipp did not exit in time"
    elapsed = time.monotonic() - started
    stats_file = workdir / "stats.csv"
    rows = list(csv.DictReader(stats_file.open(), delimiter=";")) if stats_file.exists() else []
    errors = workdir / "sipp_errors.log"
    error_text = errors.read_text(errors="replace") if errors.exists() else ""
    output += "\n" + error_text[-2000:]
    stalls = error_text.count("watchdog timer")
    return SippRun(returncode, elapsed, rows[-1] if rows else {}, output, stalls)


@dataclass(frozen=True)
class Step:
    """One sipp run against serve, and serve measured around it."""

    sipp: SippRun
    wall_s: float
    cpu_pct: float  # serve's own process; 100 % = one core
    tree_cpu_pct: float  # serve and every process under it (speech workers, TTS renders)
    load: str  # load average before -> after


def load_step(
    serve: Serve,
    scenario: Path,
    *,
    calls: int,
    concurrent: int,
    rate: float,
    timeout_s: float,
    extra: tuple[str, ...] = (),
    files: tuple[Path, ...] = (),
) -> Step:
    """Run ``scenario`` in serve's sipp folder (``files`` copied there first, e.g. the caller's
    audio) and measure serve's CPU over the run."""
    serve.sipp_dir.mkdir(parents=True, exist_ok=True)
    for path in files:
        shutil.copy(path, serve.sipp_dir / path.name)
    load = loadavg()
    ticks0, tree0 = serve.cpu_ticks()
    started = time.monotonic()
    run = run_sipp(
        scenario,
        serve,
        serve.sipp_dir,
        calls=calls,
        concurrent=concurrent,
        rate=rate,
        timeout_s=timeout_s,
        extra=extra,
    )
    ticks1, tree1 = serve.cpu_ticks()
    wall = time.monotonic() - started
    return Step(
        sipp=run,
        wall_s=wall,
        cpu_pct=100.0 * (ticks1 - ticks0) / CLK_TCK / wall,
        tree_cpu_pct=100.0 * (tree1 - tree0) / CLK_TCK / wall,
        load=f"{load} -> {loadavg()}",
    )


_BLOCK = re.compile(r"^-{20,}.*$", re.MULTILINE)


def parse_sipp_messages(path: Path) -> tuple[set[str], dict[str, tuple[int, bool]]]:
    """INVITE Call-IDs sipp sent, and per Call-ID the first final response to its INVITE
    (status, whether it carried Retry-After), from a ``-trace_msg`` file."""
    invites: set[str] = set()
    finals: dict[str, tuple[int, bool]] = {}
    text = path.read_text(errors="replace") if path.exists() else ""
    for block in _BLOCK.split(text):
        lines = [line.strip() for line in block.strip().splitlines()]
        if len(lines) < 3:
            continue
        sent = "message sent" in lines[0]
        body = [line for line in lines[1:] if line]
        if not body:
            continue
        start = body[0]
        headers: dict[str, str] = {}
        for line in body[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers.setdefault(name.strip().lower(), value.strip())
        call_id = headers.get("call-id") or headers.get("i") or ""
        cseq = headers.get("cseq", "")
        if sent and start.startswith("INVITE "):
            invites.add(call_id)
        elif not sent and start.startswith("SIP/2.0 ") and cseq.endswith("INVITE"):
            status = int(start.split()[1])
            if status >= 200 and call_id not in finals:
                finals[call_id] = (status, "retry-after" in headers)
    return invites, finals
