"""The ``run_ivr.py serve --workers 1`` processes the capacity bench measures.

A :class:`Workspace` starts each one in its own folder of the bench's temp dir (``data/`` for
its data dir, ``sipp/`` for the client's files, ``serve.log``); a :class:`Serve` is one running
process: what it logged, its CPU and memory from /proc, whether it still answers SIP.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from config.settings import load_settings
from ivr.sipp_peer import free_port

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
DEMO_FLOW = ROOT / "flows" / "library" / "demo.yaml"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Admission limits raised where the bench measures the engine rather than its load shedding.
RAISED_ADMISSION = {
    "IVR_SIP__INVITES_PER_SOURCE_PER_S": "1000",
    "IVR_SIP__INVITE_BURST_PER_SOURCE": "1000",
    "IVR_SIP__MAX_PENDING_INVITES": "64",
}

_EVENT = re.compile(r"\bevent=(\S+)")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def add_serve_env_argument(parser: argparse.ArgumentParser) -> None:
    """``--serve-env KEY=VALUE``, shared by the benches that start serves so they read alike."""
    parser.add_argument(
        "--serve-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for every serve process, e.g. IVR_MEDIA__SPEECH_WORKERS=0 (repeatable)",
    )


def serve_env_vars(parser: argparse.ArgumentParser, items: list[str]) -> dict[str, str]:
    """The ``--serve-env`` items as a mapping; a parser error (before any call) if one is malformed."""
    env: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("IVR_"):
            parser.error(f"--serve-env {item!r}: expected IVR_...=VALUE")
        env[key] = value
    return env


@dataclass
class Serve:
    """A ``run_ivr.py serve --workers 1`` subprocess and what it logged."""

    proc: subprocess.Popen[str]
    port: int
    rtp_ports: tuple[int, int]  # first and last RTP/RTCP port serve may use
    folder: Path  # data/ (serve's data dir), sipp/ (the client's working dir), serve.log
    admission: str = ""  # the effective admission settings, for the tables
    lines: list[str] = field(default_factory=list)
    exit_status: int | None = None  # once stopped; None: it had to be killed

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def sipp_dir(self) -> Path:
        return self.folder / "sipp"

    def events(self) -> Counter[str]:
        found: Counter[str] = Counter()
        for line in list(self.lines):
            match = _EVENT.search(line)
            if match:
                found[match.group(1)] += 1
        return found

    def wait_until(self, done: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return True
            if self.proc.poll() is not None:
                return bool(done())
            time.sleep(0.1)
        return bool(done())

    def settled(self, answered: int) -> bool:
        """At least ``answered`` calls were offered, and every offered call was released and ended."""
        ev = self.events()
        offered = ev["call.offered"]
        return offered >= answered and ev["call.released"] >= offered and ev["call.ended"] >= offered

    def processes(self) -> int:
        """serve and its live descendants (speech workers, a TTS render)."""
        return 1 + len(_descendants(self.proc.pid))

    def cpu_ticks(self) -> tuple[int, int]:
        """CPU clock ticks used so far: (serve's own utime + stime, the whole process tree's).

        The tree is serve, its live descendants (speech workers, a TTS render) and the children
        they reaped (cutime + cstime), so a child that came and went between two readings counts.
        """
        own = _proc_stat(self.proc.pid)
        if own is None:
            return 0, 0
        tree = 0
        for pid in [self.proc.pid, *_descendants(self.proc.pid)]:
            fields = _proc_stat(pid)
            if fields is not None:
                tree += sum(int(fields[i]) for i in (11, 12, 13, 14))
        return int(own[11]) + int(own[12]), tree

    def status_mib(self, key: str, tree: bool = False) -> float:
        """A /proc/<pid>/status figure of serve (``tree``: summed over its live descendants too)."""
        pids = [self.proc.pid, *(_descendants(self.proc.pid) if tree else [])]
        return sum(_status_kib(pid, key) for pid in pids) / 1024

    def running(self) -> bool:
        return self.proc.poll() is None

    def alive(self) -> bool:
        """Running and still answering SIP (an OPTIONS gets a final response)."""
        return self.running() and options_probe(self.port) is not None

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then the exit status (None: it had to be killed); the log goes to serve.log."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.exit_status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.exit_status = None
        time.sleep(0.2)  # the reader thread takes the last lines
        (self.folder / "serve.log").write_text("".join(self.lines))
        return self.exit_status

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.lines[-lines:])


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2 :].split()


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    todo = [root]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _status_kib(pid: int, key: str) -> int:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


@dataclass(frozen=True)
class Workspace:
    """The bench's temp dir, and the environment every serve gets last (``--serve-env``)."""

    tmp: Path
    serve_env: Mapping[str, str] = field(default_factory=dict)

    @contextmanager
    def serve(
        self,
        name: str,
        *,
        max_calls: int | None,
        env: Mapping[str, str],
        rtp_range: int = 400,
        tts_cache: Path | None = None,
    ) -> Iterator[Serve]:
        """A serve in ``tmp/name`` (its data dir seeded with ``tts_cache``), stopped on the way out."""
        folder = self.tmp / name
        if tts_cache is not None and tts_cache.exists():
            shutil.copytree(tts_cache, folder / "data" / "tts-cache")
        serve = self._start(folder, max_calls=max_calls, env=env, rtp_range=rtp_range)
        try:
            yield serve
        finally:
            serve.stop()

    def _start(self, folder: Path, *, max_calls: int | None, env: Mapping[str, str], rtp_range: int) -> Serve:
        port = free_port()
        rtp_start = random.randrange(20000, 60000 - rtp_range, 2)
        environment = dict(os.environ)
        environment.update(
            {
                "IVR_SIP__RTP_PORT_START": str(rtp_start),
                "IVR_SIP__RTP_PORT_RANGE": str(rtp_range),
                "IVR_LOG_LEVEL": "info",
                "PYTHONUNBUFFERED": "1",
                **env,
                **self.serve_env,
            }
        )
        cmd = [
            sys.executable,
            str(ROOT / "run_ivr.py"),
            "serve",
            "--workers",
            "1",
            "--bind",
            LOOPBACK,
            "--sip-port",
            str(port),
            "--data-dir",
            str(folder / "data"),
            "--flow",
            str(DEMO_FLOW),
        ]
        if max_calls is not None:
            cmd += ["--max-calls", str(max_calls)]
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=environment
        )
        sip = load_settings(None, env=environment).sip
        lines = min(max_calls or sip.max_concurrent_calls, sip.engine_call_limit)
        admission = (
            f"{sip.invites_per_source_per_s:g}/s per source (burst {sip.invite_burst_per_source}), "
            f"{sip.max_pending_invites} pending, {lines} lines"
        )
        serve = Serve(proc, port, (rtp_start, rtp_start + rtp_range + 1), folder, admission)
        assert proc.stdout is not None
        stream = proc.stdout
        threading.Thread(target=lambda: serve.lines.extend(iter(stream.readline, "")), daemon=True).start()
        if not serve.wait_until(lambda: serve.events()["serve.ready"] >= 1, 120):
            serve.stop()
            raise RuntimeError(f"serve did not start within 120 s; log tail:\n{serve.tail()}")
        return serve


def options_probe(port: int, timeout: float = 5.0) -> int | None:
    """The status of the final response to an OPTIONS over UDP, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        local = sock.getsockname()[1]
        tag = uuid.uuid4().hex[:12]
        request = (
            f"OPTIONS sip:ivr@{LOOPBACK}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {LOOPBACK}:{local};branch=z9hG4bK{tag}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:bench@{LOOPBACK}:{local}>;tag={tag}\r\n"
            f"To: <sip:ivr@{LOOPBACK}:{port}>\r\n"
            f"Call-ID: probe-{tag}@{LOOPBACK}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            f"Contact: <sip:bench@{LOOPBACK}:{local}>\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        deadline = time.monotonic() + timeout
        next_send = 0.0
        while time.monotonic() < deadline:
            if time.monotonic() >= next_send:
                sock.sendto(request, (LOOPBACK, port))
                next_send = time.monotonic() + 0.5
            ready, _, _ = select.select([sock], [], [], 0.1)
            if not ready:
                continue
            data = sock.recv(65535).decode(errors="replace")
            match = re.match(r"SIP/2\.0 (\d{3})", data)
            if match and int(match.group(1)) >= 200 and f"probe-{tag}" in data:
                return int(match.group(1))
    return None
