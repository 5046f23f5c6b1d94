"""Call capacity of one ``serve`` process over real SIP: concurrent calls, churn, INVITE flood.

Run (as root, for the loopback packet capture): .venv/bin/python bench/bench_capacity.py
(about 4-6 minutes; ``--quick`` for a one-minute smoke run; ``--update-docs`` writes the tables
into the ``capacity`` section of docs/benchmarks.md, one block per set of options;
``--serve-env IVR_MEDIA__SPEECH_WORKERS=0`` and the like change every serve's settings).

Three parts, each against a fresh ``run_ivr.py serve --workers 1`` on 127.0.0.1 with its data
dir in a temp folder:

capacity  N concurrent sipp callers (tests/sip/caller_speaks.xml, arriving at --call-rate per
          second) who each say "I want to check my balance" after the demo flow's greeting and
          question. Per N: failed calls, calls whose recording is not complete, intent right
          (recording outcome ``understood``), how much of the caller's sentence the recording
          kept, the time from the end of the sentence to the bot's reply, CPU (utime+stime from
          /proc over the run: serve's own, and serve's whole process tree with the speech
          workers), peak RSS (VmHWM) and the gaps between the RTP packets serve sends to each
          caller, captured on the loopback interface with an AF_PACKET socket (kernel
          timestamps, BPF filter on serve's RTP source ports, RTCP left out; a stream is one
          (source port, destination port) pair, as sipp sends every call's media to one port).
churn     many short calls (answer, pause, BYE; bench/sip/churn_call.xml) at a high rate with
          about 16 at once: failed calls, leaked lines (answered vs ``call.released``), whether
          serve survived, calls/s achieved. The admission limits are raised for this part.
flood     INVITEs at 100/s (bench/sip/flood_call.xml takes any final response: 200 is ACKed
          and hung up at once, 403/480/486/488/500/503 ACKed) against the default admission
          settings, then with the per-source rate lowered to 20/s (burst 40): final responses
          per status, INVITEs left without one, whether serve survived.

Each part is bounded in time (sipp -timeout, bounded waits) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import wave
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.settings import load_settings
from ivr.sipp_peer import free_port, require_tool, sipp_command, synthesize_caller_audio

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
BENCH_SIP = ROOT / "bench" / "sip"
CALLER_SCENARIO = ROOT / "tests" / "sip" / "caller_speaks.xml"
DEMO_FLOW = ROOT / "flows" / "library" / "demo.yaml"
DOCS = ROOT / "docs" / "benchmarks.md"
SENTENCE = "I want to check my balance"
AFTER_QUESTION_S = 7.0  # the demo flow's greeting and question last about 6.6 s
GAP_LIMIT_MS = 60.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Admission limits raised where the bench measures the engine rather than its load shedding.
RAISED_ADMISSION = {
    "IVR_SIP__INVITES_PER_SOURCE_PER_S": "1000",
    "IVR_SIP__INVITE_BURST_PER_SOURCE": "1000",
    "IVR_SIP__MAX_PENDING_INVITES": "64",
}


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- the serve process ----------------------------------------------------------------------------

_EVENT = re.compile(r"\bevent=(\S+)")


@dataclass
class Serve:
    """A ``run_ivr.py serve --workers 1`` subprocess and what it logged."""

    proc: subprocess.Popen[str]
    port: int
    rtp_ports: tuple[int, int]  # first and last RTP/RTCP port serve may use
    data_dir: Path
    admission: str = ""  # the effective admission settings, for the tables
    lines: list[str] = field(default_factory=list)

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

    def status_kib(self, key: str, tree: bool = False) -> int:
        """A /proc/<pid>/status figure of serve (``tree``: summed over its live descendants too)."""
        pids = [self.proc.pid, *(_descendants(self.proc.pid) if tree else [])]
        return sum(_status_kib(pid, key) for pid in pids)

    def alive(self) -> bool:
        """Running and still answering SIP (an OPTIONS gets a final response)."""
        return self.proc.poll() is None and options_probe(self.port) is not None

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then the exit status (None: it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            status: int | None = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            status = None
        time.sleep(0.2)  # the reader thread takes the last lines
        (self.data_dir.parent / "serve.log").write_text("".join(self.lines))
        return status

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


# Extra environment for every serve process (--serve-env KEY=VALUE).
SERVE_ENV: dict[str, str] = {}


def start_serve(
    data_dir: Path, *, max_calls: int | None, env: dict[str, str], rtp_range: int = 400
) -> Serve:
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
            **SERVE_ENV,
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
        str(data_dir),
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
    serve = Serve(proc, port, (rtp_start, rtp_start + rtp_range + 1), data_dir, admission)
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


def list_recordings(data_dir: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, str(ROOT / "run_ivr.py"), "recordings", "list", "--json", "--data-dir", data_dir],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=300,
    )
    return list(json.loads(out.stdout))


# -- sipp -----------------------------------------------------------------------------------------


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


# -- RTP on the wire ------------------------------------------------------------------------------

ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26
SO_TIMESTAMPNS = 35
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_OUTGOING = 4
SNAP = 64  # Ethernet + IPv4 + UDP headers and the first RTP bytes


def _bpf_udp_source_ports(first: int, last: int) -> list[tuple[int, int, int, int]]:
    """Classic BPF: outgoing copies of unfragmented IPv4/UDP packets whose source port is in
    [first, last], cut to SNAP bytes (what ``tcpdump -dd 'outbound and udp src portrange'`` says)."""
    drop = 13
    return [
        (0x30, 0, 0, 0xFFFFF004),  # ldb pkttype (ancillary)
        (0x15, 0, drop - 2, PACKET_OUTGOING),  # jeq outgoing
        (0x28, 0, 0, 12),  # ldh [12]: ethertype
        (0x15, 0, drop - 4, 0x0800),  # jeq IPv4
        (0x30, 0, 0, 23),  # ldb [23]: IP protocol
        (0x15, 0, drop - 6, 17),  # jeq UDP
        (0x28, 0, 0, 20),  # ldh [20]: flags and fragment offset
        (0x45, drop - 8, 0, 0x1FFF),  # jset fragment -> drop
        (0xB1, 0, 0, 14),  # ldxb 4*([14]&0xf): IP header length
        (0x48, 0, 0, 14),  # ldh [x+14]: UDP source port
        (0x35, 0, drop - 11, first),  # jge first
        (0x25, drop - 12, 0, last),  # jgt last -> drop
        (0x06, 0, 0, SNAP),  # accept
        (0x06, 0, 0, 0),  # drop
    ]


class RtpCapture:
    """Kernel timestamps of the RTP packets leaving serve's media ports, per (source, destination)
    port pair, i.e. per call. Needs root (CAP_NET_RAW)."""

    def __init__(self, first_port: int, last_port: int) -> None:
        self.first, self.last = first_port, last_port
        self.streams: dict[tuple[int, int], list[int]] = {}
        self.rtcp = 0
        self.kernel_drops = 0
        self._stop = threading.Event()
        program = _bpf_udp_source_ports(first_port, last_port)
        self._filter = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *op) for op in program))
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        fprog = struct.pack("HL", len(program), ctypes.addressof(self._filter))
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE (root)
        sock.bind(("lo", ETH_P_ALL))
        sock.setblocking(False)
        while True:  # whatever was queued before the filter was attached
            try:
                sock.recv(65535)
            except BlockingIOError:
                break
        sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)  # reading resets the counters
        self._sock = sock
        self._thread = threading.Thread(target=self._run, name="rtp-capture", daemon=True)

    def __enter__(self) -> RtpCapture:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        _packets, drops = struct.unpack("II", self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
        self.kernel_drops += drops
        self._sock.close()

    def _run(self) -> None:
        cmsg_space = socket.CMSG_SPACE(16)
        while not self._stop.is_set():
            ready, _, _ = select.select([self._sock], [], [], 0.2)
            if not ready:
                continue
            while True:
                try:
                    data, ancillary, _flags, _addr = self._sock.recvmsg(SNAP, cmsg_space)
                except BlockingIOError:
                    break
                self._packet(data, ancillary)

    def _packet(self, data: bytes, ancillary: list[tuple[int, int, bytes]]) -> None:
        if len(data) < 14 + 20 + 8 + 2:
            return
        ihl = (data[14] & 0x0F) * 4
        udp = 14 + ihl
        src, dst = struct.unpack_from("!HH", data, udp)
        if not self.first <= src <= self.last or len(data) < udp + 10:
            return
        if data[udp + 8] >> 6 != 2 or 72 <= data[udp + 9] & 0x7F <= 76:  # not RTP, or RTCP
            self.rtcp += 1
            return
        stamp = None
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", payload[:16])
                stamp = sec * 1_000_000_000 + nsec
        if stamp is None:
            stamp = time.time_ns()
        self.streams.setdefault((src, dst), []).append(stamp)


@dataclass(frozen=True)
class GapStats:
    streams: int
    packets: int
    max_ms: float
    p99_ms: float
    over_limit: int  # gaps > GAP_LIMIT_MS
    streams_over_limit: int
    late: tuple[tuple[float, float], ...] = ()  # (s since the stream's first packet, gap ms) > limit


def gap_stats(streams: dict[tuple[int, int], list[int]]) -> GapStats:
    """Inter-packet gaps within each stream, from its first packet to its last."""
    gaps: list[float] = []
    late: list[tuple[float, float]] = []
    streams_over = 0
    for stamps in streams.values():
        stamps.sort()
        own = [(b - a) / 1e6 for a, b in pairwise(stamps)]
        gaps.extend(own)
        over = [((stamps[i] - stamps[0]) / 1e9, g) for i, g in enumerate(own) if g > GAP_LIMIT_MS]
        late.extend(over)
        streams_over += bool(over)
    gaps.sort()
    if not gaps:
        return GapStats(len(streams), 0, 0.0, 0.0, 0, 0)
    p99 = gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))]
    return GapStats(
        len(streams),
        sum(len(s) for s in streams.values()),
        gaps[-1],
        p99,
        sum(g > GAP_LIMIT_MS for g in gaps),
        streams_over,
        tuple(sorted(late)),
    )


# -- part 1: capacity ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CapacityResult:
    calls: int
    sipp_ok: int
    sipp_failed: int
    incomplete: int  # calls without a complete recording
    understood: int
    cpu_pct: float  # serve's own process
    tree_cpu_pct: float  # serve and every process under it (speech workers, TTS renders)
    rss_start_mib: float
    rss_peak_mib: float
    tree_rss_peak_mib: float  # sum of the VmHWM of serve and its live descendants
    processes: int  # serve and its live descendants at the end of the run
    gaps: GapStats
    kernel_drops: int
    speech_kept_median: float  # caller's sentence in the recording, % of the frames sent
    speech_kept_min: float
    reply_ms: tuple[float, float]  # end of the caller's sentence -> the bot's reply starts: median, max
    client_stalls: int
    seconds: float
    load: str
    exit_status: int | None
    note: str


def speech_frames(samples: npt.NDArray[np.int16], skip_s: float = 0.5) -> int:
    """20 ms frames above -40 dBFS RMS within 3 s of the first one after ``skip_s``."""
    usable = samples[: samples.size // 160 * 160].astype(np.float64).reshape(-1, 160)
    active = np.sqrt((usable**2).mean(axis=1)) > 300.0
    active[: int(skip_s * 50)] = False
    onsets = np.flatnonzero(active)
    if onsets.size == 0:
        return 0
    return int(active[onsets[0] : onsets[0] + 150].sum())


def sent_speech_frames(caller_wav: Path) -> int:
    """The same count for what sipp sends (caller.wav is G.711; sox decodes it)."""
    raw = subprocess.run(
        [require_tool("sox", "sox"), str(caller_wav), "-t", "raw", "-e", "signed-integer", "-b", "16", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return speech_frames(np.frombuffer(raw, dtype="<i2"))


def recorded_speech_frames(recording: dict[str, Any]) -> int:
    """The caller's (left) track of a stereo recording."""
    with wave.open(str(recording["path"])) as wav:
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    return speech_frames(data[:, 0].copy())


def reply_latency_ms(recording: dict[str, Any]) -> float | None:
    """From the end of the caller's first turn to the start of the bot's next one (endpointing,
    recognition, the flow and the prompt's start), from the recording's transcript."""
    turns = recording.get("turns") or []
    caller = [t for t in turns if t.get("speaker") == "caller" and t.get("end_s") is not None]
    if not caller:
        return None
    end = float(caller[0]["end_s"])
    starts = [float(t["start_s"]) for t in turns if t.get("speaker") == "bot" and float(t["start_s"]) >= end]
    return (min(starts) - end) * 1000 if starts else None


def capacity_run(
    n: int, tmp: Path, caller_wav: Path, tts_cache: Path | None, *, rate: float, call_limit: int
) -> CapacityResult:
    data_dir = tmp / f"capacity-{n}" / "data"
    if tts_cache is not None and tts_cache.exists():
        shutil.copytree(tts_cache, data_dir / "tts-cache")
    env = {"IVR_SIP__ENGINE_CALL_LIMIT": str(call_limit), **RAISED_ADMISSION}
    serve = start_serve(data_dir, max_calls=call_limit, env=env, rtp_range=max(400, 4 * n))
    workdir = tmp / f"capacity-{n}" / "sipp"
    workdir.mkdir(parents=True)
    shutil.copy(caller_wav, workdir / "caller.wav")
    note = ""
    try:
        rss_start = serve.status_kib("VmRSS") / 1024
        ticks0, tree0 = serve.cpu_ticks()
        t0 = time.monotonic()
        load = loadavg()
        with RtpCapture(*serve.rtp_ports) as capture:
            run = run_sipp(
                CALLER_SCENARIO,
                serve,
                workdir,
                calls=n,
                concurrent=n,
                rate=rate,
                timeout_s=n / rate + 120,
            )
            ticks1, tree1 = serve.cpu_ticks()
            t1 = time.monotonic()
            load = f"{load} -> {loadavg()}"
            rss_peak = serve.status_kib("VmHWM") / 1024
            tree_rss_peak = serve.status_kib("VmHWM", tree=True) / 1024
            processes = 1 + len(_descendants(serve.proc.pid))
            serve.wait_until(lambda: serve.settled(n), 60)
        recordings = list_recordings(data_dir)
        if run.returncode not in (0, 1):
            note = f"sipp exit {run.returncode}"
        if serve.proc.poll() is not None:
            note = (note + "; " if note else "") + f"serve died ({serve.proc.returncode})"
    finally:
        exit_status = serve.stop()
    complete = [r for r in recordings if r.get("status") == "complete"]
    understood = sum(1 for r in complete if r.get("outcome") == "understood")
    sent = sent_speech_frames(caller_wav)
    kept = sorted(100.0 * recorded_speech_frames(r) / sent for r in complete) or [0.0]
    replies = sorted(ms for ms in (reply_latency_ms(r) for r in complete) if ms is not None) or [float("nan")]
    wall = t1 - t0
    return CapacityResult(
        calls=n,
        sipp_ok=max(run.counter("SuccessfulCall(C)"), 0),
        sipp_failed=run.counter("FailedCall(C)") if run.stats else n,
        incomplete=n - len(complete),
        understood=understood,
        cpu_pct=100.0 * (ticks1 - ticks0) / CLK_TCK / wall,
        tree_cpu_pct=100.0 * (tree1 - tree0) / CLK_TCK / wall,
        rss_start_mib=rss_start,
        rss_peak_mib=rss_peak,
        tree_rss_peak_mib=tree_rss_peak,
        processes=processes,
        gaps=gap_stats(capture.streams),
        kernel_drops=capture.kernel_drops,
        speech_kept_median=kept[len(kept) // 2],
        speech_kept_min=kept[0],
        reply_ms=(replies[len(replies) // 2], replies[-1]),
        client_stalls=run.stalls,
        seconds=wall,
        load=load,
        exit_status=exit_status,
        note=note or (run.output.strip().splitlines()[-1][:120] if run.returncode else ""),
    )


def warm_up(tmp: Path, caller_wav: Path) -> tuple[Path, str]:
    """One call, so the TTS cache holds the demo's prompts (copied into every capacity run)."""
    data_dir = tmp / "warmup" / "data"
    serve = start_serve(data_dir, max_calls=4, env={})
    workdir = tmp / "warmup" / "sipp"
    workdir.mkdir(parents=True)
    shutil.copy(caller_wav, workdir / "caller.wav")
    try:
        run = run_sipp(CALLER_SCENARIO, serve, workdir, calls=1, concurrent=1, rate=1, timeout_s=90)
        serve.wait_until(lambda: serve.events()["call.ended"] >= 1, 30)
    finally:
        serve.stop()
    outcomes = [r.get("outcome") for r in list_recordings(data_dir)]
    return data_dir / "tts-cache", f"sipp exit {run.returncode}, outcomes {outcomes}"


def capacity_table(results: list[CapacityResult]) -> str:
    rows = [
        "| concurrent calls | failed (sipp) | no complete recording | intent right | "
        "caller speech recorded, median / min | reply after speech, median / max | "
        "CPU serve / all processes | peak RSS serve (idle) / all | RTP streams | max gap | p99 gap | "
        "gaps > 60 ms (streams) | sipp stalls | load avg |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        g = r.gaps
        rows.append(
            f"| {r.calls} | {r.sipp_failed} | {r.incomplete} | {r.understood}/{r.calls} | "
            f"{r.speech_kept_median:.0f} % / {r.speech_kept_min:.0f} % | "
            f"{r.reply_ms[0] / 1000:.1f} s / {r.reply_ms[1] / 1000:.1f} s | "
            f"{r.cpu_pct:.0f} % / {r.tree_cpu_pct:.0f} % | "
            f"{r.rss_peak_mib:.0f} MiB ({r.rss_start_mib:.0f}) / {r.tree_rss_peak_mib:.0f} MiB | "
            f"{g.streams} | "
            f"{g.max_ms:.1f} ms | {g.p99_ms:.1f} ms | {g.over_limit} ({g.streams_over_limit}) | "
            f"{r.client_stalls} | {r.load} |"
        )
    return "\n".join(rows)


# -- part 2: churn ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChurnResult:
    calls: int
    rate: float
    concurrent: int
    sipp_ok: int
    sipp_failed: int
    answered: int
    released: int
    leaked: int
    refused: int
    complete_recordings: int
    calls_per_s: float
    answer_ms: float  # sipp's mean INVITE -> 200
    call_ms: float  # sipp's mean call length
    client_stalls: int
    survived: bool
    exit_status: int | None
    rss_peak_mib: float
    cpu_pct: float
    tree_cpu_pct: float
    load: str


def churn_run(tmp: Path, calls: int, rate: float, concurrent: int, pause_ms: int) -> ChurnResult:
    data_dir = tmp / "churn" / "data"
    env = {"IVR_SIP__ENGINE_CALL_LIMIT": "64", **RAISED_ADMISSION}
    serve = start_serve(data_dir, max_calls=64, env=env, rtp_range=400)
    try:
        load = loadavg()
        ticks0, tree0 = serve.cpu_ticks()
        run = run_sipp(
            BENCH_SIP / "churn_call.xml",
            serve,
            tmp / "churn" / "sipp",
            calls=calls,
            concurrent=concurrent,
            rate=rate,
            timeout_s=calls / rate + 120,
            extra=("-d", str(pause_ms)),
        )
        ticks1, tree1 = serve.cpu_ticks()
        load = f"{load} -> {loadavg()}"
        serve.wait_until(lambda: serve.settled(max(run.counter("SuccessfulCall(C)"), 0)), 60)
        events = serve.events()
        survived = serve.alive()
        rss_peak = serve.status_kib("VmHWM") / 1024 if serve.proc.poll() is None else 0.0
    finally:
        exit_status = serve.stop()
    recordings = list_recordings(data_dir)
    ok = max(run.counter("SuccessfulCall(C)"), 0)
    return ChurnResult(
        calls=calls,
        rate=rate,
        concurrent=concurrent,
        sipp_ok=ok,
        sipp_failed=run.counter("FailedCall(C)"),
        answered=events["call.offered"],
        released=events["call.released"],
        leaked=events["call.offered"] - events["call.released"],
        refused=events["call.refused"],
        complete_recordings=sum(1 for r in recordings if r.get("status") == "complete"),
        calls_per_s=ok / run.elapsed_s,
        answer_ms=run.mean_ms("ResponseTime1(C)"),
        call_ms=run.mean_ms("CallLength(C)"),
        client_stalls=run.stalls,
        survived=survived,
        exit_status=exit_status,
        rss_peak_mib=rss_peak,
        cpu_pct=100.0 * (ticks1 - ticks0) / CLK_TCK / run.elapsed_s,
        tree_cpu_pct=100.0 * (tree1 - tree0) / CLK_TCK / run.elapsed_s,
        load=load,
    )


def churn_table(r: ChurnResult) -> str:
    return "\n".join(
        [
            "| short calls | asked rate | at once | completed (sipp) | failed (sipp) | answered | "
            "released | leaked lines | refused | complete recordings | calls/s achieved | "
            "INVITE -> 200 mean | call length mean | CPU serve / all processes | sipp stalls | "
            "survived (OPTIONS answered) | exit on SIGTERM | load avg |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
            "| ---: | ---: | --- | --- | --- |",
            f"| {r.calls} | {r.rate:g}/s | {r.concurrent} | {r.sipp_ok} | {r.sipp_failed} | {r.answered} | "
            f"{r.released} | {r.leaked} | {r.refused} | {r.complete_recordings} | {r.calls_per_s:.1f} | "
            f"{r.answer_ms:.0f} ms | {r.call_ms:.0f} ms | {r.cpu_pct:.0f} % / {r.tree_cpu_pct:.0f} % | "
            f"{r.client_stalls} | "
            f"{'yes' if r.survived else 'NO'} | {r.exit_status} | {r.load} |",
        ]
    )


# -- part 3: flood ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FloodResult:
    label: str
    admission: str
    invites: int
    rate: float
    finals: Counter[int]
    no_final: int
    no_retry_after: int
    answered: int
    released: int
    survived: bool
    exit_status: int | None
    send_s: float
    load: str


_BLOCK = re.compile(r"^-{20,}.*$", re.MULTILINE)


def parse_sipp_messages(path: Path) -> tuple[set[str], dict[str, tuple[int, bool]]]:
    """INVITE Call-IDs sipp sent, and per Call-ID the first final response to its INVITE
    (status, whether it carried Retry-After)."""
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


def flood_run(tmp: Path, invites: int, rate: float, label: str, env: dict[str, str]) -> FloodResult:
    folder = tmp / ("flood-" + re.sub(r"\W+", "-", label))
    data_dir = folder / "data"
    serve = start_serve(data_dir, max_calls=None, env=env, rtp_range=400)
    workdir = folder / "sipp"
    try:
        load = loadavg()
        run = run_sipp(
            BENCH_SIP / "flood_call.xml",
            serve,
            workdir,
            calls=invites,
            concurrent=invites,
            rate=rate,
            timeout_s=invites / rate + 90,
            extra=("-recv_timeout", "32000", "-trace_msg", "-message_file", "messages.log"),
        )
        load = f"{load} -> {loadavg()}"
        sent, finals = parse_sipp_messages(workdir / "messages.log")
        answered = sum(1 for status, _ in finals.values() if status == 200)
        serve.wait_until(lambda: serve.settled(answered), 60)
        events = serve.events()
        survived = serve.alive()
    finally:
        exit_status = serve.stop()
    return FloodResult(
        label=label,
        admission=serve.admission,
        invites=len(sent),
        rate=rate,
        finals=Counter(status for status, _ in finals.values()),
        no_final=len(sent - set(finals)),
        no_retry_after=sum(1 for status, retry in finals.values() if status == 503 and not retry),
        answered=answered,
        released=events["call.released"],
        survived=survived,
        exit_status=exit_status,
        send_s=run.elapsed_s,
        load=load,
    )


def flood_table(results: list[FloodResult]) -> str:
    codes = sorted({code for r in results for code in r.finals})
    head = " | ".join(str(c) for c in codes)
    rows = [
        f"| admission settings | INVITEs sent | at | {head} | no final response | 503 without Retry-After | "
        "answered calls released | survived (OPTIONS answered) | exit on SIGTERM | load avg |",
        "| --- | ---: | ---: | "
        + " | ".join("---:" for _ in codes)
        + " | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for r in results:
        values = " | ".join(str(r.finals[c]) for c in codes)
        rows.append(
            f"| {r.label}: {r.admission} | {r.invites} | {r.rate:g}/s | {values} | {r.no_final} | "
            f"{r.no_retry_after} | {r.released}/{r.answered} | {'yes' if r.survived else 'NO'} | "
            f"{r.exit_status} | {r.load} |"
        )
    return "\n".join(rows)


# The defaults, then the per-source limit lowered as config/ivr.yaml advises where strangers can
# reach the port: the second row shows the token bucket shedding a single source's flood.
FLOOD_VARIANTS: list[tuple[str, dict[str, str]]] = [
    ("default", {}),
    (
        "per-source limit lowered",
        {"IVR_SIP__INVITES_PER_SOURCE_PER_S": "20", "IVR_SIP__INVITE_BURST_PER_SOURCE": "40"},
    ),
]


# -- docs ------------------------------------------------------------------------------------------

SECTION = "<!-- section: capacity -->"


def update_docs(block: str, tag: str) -> None:
    """Put ``block`` between the capacity section's generated markers for ``tag`` (the command's
    options: one pair per way of running the bench), adding them at the end of the section, and
    the section at the end of the file, when missing. The prose around the markers is left alone."""
    tag = re.sub(r"-{2,}", "", tag)  # "--" may not appear inside an HTML comment
    begin, end = f"<!-- capacity:generated:begin {tag} -->", f"<!-- capacity:generated:end {tag} -->"
    text = DOCS.read_text()
    generated = f"{begin}\n{block.strip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _old, tail = rest.split(end, 1)
        text = head + generated + tail
    elif SECTION in text:
        head, rest = text.split(SECTION, 1)
        after = rest.find("<!-- section:")
        body, tail = (rest, "") if after < 0 else (rest[:after], rest[after:])
        text = head + SECTION + body.rstrip("\n") + "\n\n" + generated + "\n" + ("\n" + tail if tail else "")
    else:
        text = (
            text.rstrip("\n")
            + f"\n\n{SECTION}\n"
            + "## Call capacity, churn and INVITE flood over real SIP (capacity)\n\n"
            + generated
            + "\n"
        )
    DOCS.write_text(text)


def code_state() -> str:
    """The commit measured, and which files the engine runs from differ from it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.rstrip("\n")

    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    changed = git(
        "status", "--porcelain", "--", "ivr", "media", "config", "flows", "recordings", "run_ivr.py",
        "third_party/pjproject",
    ).splitlines()
    if not changed:
        return f"commit {head}"
    folders = sorted({line[3:].split("/")[0] + ("/" if "/" in line[3:] else "") for line in changed})
    return f"commit {head} plus uncommitted changes to {len(changed)} files in {', '.join(folders)}"


# -- main ------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run of every part")
    parser.add_argument("--parts", default="capacity,churn,flood", help="comma-separated parts to run")
    parser.add_argument("--calls", default="8,16,32,50", help="concurrent calls per capacity run")
    parser.add_argument("--call-rate", type=float, default=10.0, help="capacity callers arriving per s")
    parser.add_argument("--call-limit", type=int, default=64, help="serve --max-calls and engine_call_limit")
    parser.add_argument("--churn-calls", type=int, default=1500)
    parser.add_argument("--churn-rate", type=float, default=150.0)
    parser.add_argument("--churn-concurrent", type=int, default=16)
    parser.add_argument("--churn-pause-ms", type=int, default=100)
    parser.add_argument("--flood-invites", type=int, default=1000)
    parser.add_argument("--flood-rate", type=float, default=100.0)
    parser.add_argument(
        "--serve-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for every serve process, e.g. IVR_MEDIA__SPEECH_WORKERS=0 (repeatable)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, sipp files)")
    parser.add_argument("--update-docs", action="store_true", help="write the tables into docs/benchmarks.md")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.churn_calls, args.churn_rate, args.flood_invites = "4", 150, 50.0, 200
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    unknown = parts - {"capacity", "churn", "flood"}
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    for item in args.serve_env:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("IVR_"):
            parser.error(f"--serve-env {item!r}: expected IVR_...=VALUE")
        SERVE_ENV[key] = value
    require_tool("sipp", "sip-tester")
    if "capacity" in parts and os.geteuid() != 0:
        parser.error("the capacity part captures RTP with an AF_PACKET socket: run it as root")

    shown = [a for a in sys.argv[1:] if a not in ("--keep", "--update-docs")]  # no effect on figures
    command = " ".join([".venv/bin/python bench/bench_capacity.py", *shown])
    started = datetime.now(UTC)
    out: list[str] = [
        f"Command: `{command.strip()}` ({started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores; "
        f"load average at start {loadavg()}); code: {code_state()}."
    ]
    tmp = Path(tempfile.mkdtemp(prefix="bench-capacity-"))
    try:
        if "capacity" in parts:
            caller_wav = synthesize_caller_audio(
                SENTENCE, tmp / "caller.wav", lead_s=AFTER_QUESTION_S, tail_s=30.0
            )
            log("warm-up call (fills the TTS cache)")
            tts_cache, warm = warm_up(tmp, caller_wav)
            log(f"warm-up: {warm}")
            results: list[CapacityResult] = []
            for n in [int(x) for x in args.calls.split(",")]:
                log(f"capacity: {n} concurrent calls (load average {loadavg()})")
                result = capacity_run(
                    n, tmp, caller_wav, tts_cache, rate=args.call_rate, call_limit=args.call_limit
                )
                log(
                    f"  {result.sipp_ok} ok, {result.sipp_failed} failed, {result.understood} understood, "
                    f"caller speech kept {result.speech_kept_median:.0f} % "
                    f"(min {result.speech_kept_min:.0f} %), reply after speech {result.reply_ms[0]:.0f} ms "
                    f"(max {result.reply_ms[1]:.0f} ms), "
                    f"CPU {result.cpu_pct:.0f} % (tree of {result.processes}: {result.tree_cpu_pct:.0f} %), "
                    f"max gap {result.gaps.max_ms:.1f} ms, {result.gaps.packets} RTP packets, "
                    f"{result.gaps.streams} streams, {result.kernel_drops} capture drops, "
                    f"{result.seconds:.0f} s, exit {result.exit_status} {result.note}"
                )
                if result.gaps.late:
                    where = ", ".join(f"{at:.1f}s:{ms:.0f}" for at, ms in result.gaps.late[:40])
                    log(f"  gaps > {GAP_LIMIT_MS:g} ms (s into the call: ms): {where}")
                results.append(result)
            table = capacity_table(results)
            print("\n" + table + "\n", flush=True)
            out += [
                "",
                f"Capacity: demo flow, callers arriving at {args.call_rate:g}/s, each saying "
                f'"{SENTENCE}" {AFTER_QUESTION_S:g} s after answer; CPU over the sipp run '
                "(100 % = one core; all processes = serve and its speech workers), RTP gaps measured on "
                "the loopback interface per call.",
                "",
                table,
            ]
        if "churn" in parts:
            log(f"churn: {args.churn_calls} calls at {args.churn_rate:g}/s, {args.churn_concurrent} at once")
            churn = churn_run(
                tmp, args.churn_calls, args.churn_rate, args.churn_concurrent, args.churn_pause_ms
            )
            table = churn_table(churn)
            print("\n" + table + "\n", flush=True)
            out += ["", f"Churn (answer, {args.churn_pause_ms} ms pause, BYE):", "", table]
        if "flood" in parts:
            floods: list[FloodResult] = []
            for label, env in FLOOD_VARIANTS:
                log(f"flood: {args.flood_invites} INVITEs at {args.flood_rate:g}/s, {label} admission")
                floods.append(flood_run(tmp, args.flood_invites, args.flood_rate, label, env))
                log(f"  {dict(floods[-1].finals)}, {floods[-1].no_final} without a final response")
            table = flood_table(floods)
            print("\n" + table + "\n", flush=True)
            out += ["", "Flood (final responses by status code):", "", table]
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    out.append(f"\nLoad average at the end: {loadavg()}.")
    if args.update_docs:
        update_docs("\n".join(out), " ".join(shown) or "default")
        log(f"updated {DOCS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
