"""The capacity bench's three parts, each one sipp step against a fresh serve: concurrent callers
who speak (capacity), many short calls (churn), an INVITE flood (flood)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.capacity_recordings import CallerOutcomes, caller_outcomes, complete, list_recordings
from bench.capacity_rtp import GAP_LIMIT_MS, GapStats, RtpCapture, gap_stats
from bench.capacity_serve import RAISED_ADMISSION, ROOT, Workspace
from bench.capacity_sipp import Step, load_step, parse_sipp_messages

BENCH_SIP = ROOT / "bench" / "sip"
CALLER_SCENARIO = ROOT / "tests" / "sip" / "caller_speaks.xml"
SENTENCE = "I want to check my balance"
AFTER_QUESTION_S = 7.0  # the demo flow's greeting and question last about 6.6 s

# The defaults, then the per-source limit lowered as config/ivr.yaml advises where strangers can
# reach the port: the second row shows the token bucket shedding a single source's flood.
FLOOD_VARIANTS: list[tuple[str, dict[str, str]]] = [
    ("default", {}),
    (
        "per-source limit lowered",
        {"IVR_SIP__INVITES_PER_SOURCE_PER_S": "20", "IVR_SIP__INVITE_BURST_PER_SOURCE": "40"},
    ),
]


# -- capacity --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CapacityResult:
    calls: int
    step: Step
    outcomes: CallerOutcomes
    rss_start_mib: float
    rss_peak_mib: float
    tree_rss_peak_mib: float  # sum of the VmHWM of serve and its live descendants
    processes: int  # serve and its live descendants at the end of the run
    gaps: GapStats
    kernel_drops: int
    exit_status: int | None
    note: str
    media_port: str = "unknown"  # serve's sip.media_port: RingMediaPort (C++) or BridgePort (Python)

    def summary(self) -> str:
        """The bench's log lines for this run."""
        o, g, step = self.outcomes, self.gaps, self.step
        lines = [
            f"  {step.sipp.ok} ok, {step.sipp.failed(self.calls)} failed, {o.understood} understood, "
            f"caller speech kept {o.speech_kept_median:.0f} % (min {o.speech_kept_min:.0f} %), "
            f"reply after speech {o.reply_ms[0]:.0f} ms (max {o.reply_ms[1]:.0f} ms), "
            f"CPU {step.cpu_pct:.0f} % (tree of {self.processes}: {step.tree_cpu_pct:.0f} %), "
            f"max gap {g.max_ms:.1f} ms, {g.packets} RTP packets, {g.streams} streams, "
            f"{self.kernel_drops} capture drops, {step.wall_s:.0f} s, exit {self.exit_status}, "
            f"media port {self.media_port} {self.note}"
        ]
        if g.late:
            where = ", ".join(f"{at:.1f}s:{ms:.0f}" for at, ms in g.late[:40])
            lines.append(f"  gaps > {GAP_LIMIT_MS:g} ms (s into the call: ms): {where}")
        return "\n".join(lines)


def warm_up(ws: Workspace, caller_wav: Path) -> tuple[Path, str]:
    """One call, so the TTS cache holds the demo's prompts (copied into every capacity run)."""
    with ws.serve("warmup", max_calls=4, env={}) as serve:
        step = load_step(
            serve, CALLER_SCENARIO, calls=1, concurrent=1, rate=1, timeout_s=90, files=(caller_wav,)
        )
        serve.wait_until(lambda: serve.events()["call.ended"] >= 1, 30)
    outcomes = [r.get("outcome") for r in list_recordings(serve.data_dir)]
    return serve.data_dir / "tts-cache", f"sipp exit {step.sipp.returncode}, outcomes {outcomes}"


def capacity_run(
    ws: Workspace, n: int, caller_wav: Path, tts_cache: Path | None, *, rate: float, call_limit: int
) -> CapacityResult:
    env = {"IVR_SIP__ENGINE_CALL_LIMIT": str(call_limit), **RAISED_ADMISSION}
    with ws.serve(
        f"capacity-{n}", max_calls=call_limit, env=env, rtp_range=max(400, 4 * n), tts_cache=tts_cache
    ) as serve:
        rss_start = serve.status_mib("VmRSS")
        with RtpCapture(*serve.rtp_ports) as capture:
            step = load_step(
                serve,
                CALLER_SCENARIO,
                calls=n,
                concurrent=n,
                rate=rate,
                timeout_s=n / rate + 120,
                files=(caller_wav,),
            )
            rss_peak = serve.status_mib("VmHWM")
            tree_rss_peak = serve.status_mib("VmHWM", tree=True)
            processes = serve.processes()
            serve.wait_until(lambda: serve.settled(n), 60)
        recordings = list_recordings(serve.data_dir)
        run = step.sipp
        notes = [f"sipp exit {run.returncode}"] if run.returncode not in (0, 1) else []
        if not serve.running():
            notes.append(f"serve died ({serve.proc.returncode})")
    last_output = (run.output.strip().splitlines() or [""])[-1][:120]
    return CapacityResult(
        calls=n,
        step=step,
        outcomes=caller_outcomes(recordings, caller_wav),
        rss_start_mib=rss_start,
        rss_peak_mib=rss_peak,
        tree_rss_peak_mib=tree_rss_peak,
        processes=processes,
        gaps=gap_stats(capture.streams),
        kernel_drops=capture.kernel_drops,
        exit_status=serve.exit_status,
        note="; ".join(notes) or (last_output if run.returncode else ""),
        media_port=media_port(serve.lines),
    )


_MEDIA_PORT = re.compile(r"\bsip\.media_port\b.*?\bport=(\w+)")


def media_port(lines: list[str]) -> str:
    """The conference port serve's calls used, from its ``sip.media_port`` log line."""
    for line in list(lines):
        match = _MEDIA_PORT.search(line)
        if match:
            return match.group(1)
    return "unknown"


# -- churn -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChurnResult:
    calls: int
    rate: float
    concurrent: int
    step: Step
    answered: int
    released: int
    refused: int
    complete_recordings: int
    survived: bool
    exit_status: int | None

    @property
    def leaked(self) -> int:
        return self.answered - self.released

    @property
    def calls_per_s(self) -> float:
        return self.step.sipp.ok / self.step.sipp.elapsed_s


def churn_run(ws: Workspace, calls: int, rate: float, concurrent: int, pause_ms: int) -> ChurnResult:
    env = {"IVR_SIP__ENGINE_CALL_LIMIT": "64", **RAISED_ADMISSION}
    with ws.serve("churn", max_calls=64, env=env) as serve:
        step = load_step(
            serve,
            BENCH_SIP / "churn_call.xml",
            calls=calls,
            concurrent=concurrent,
            rate=rate,
            timeout_s=calls / rate + 120,
            extra=("-d", str(pause_ms)),
        )
        serve.wait_until(lambda: serve.settled(step.sipp.ok), 60)
        events = serve.events()
        survived = serve.alive()
    return ChurnResult(
        calls=calls,
        rate=rate,
        concurrent=concurrent,
        step=step,
        answered=events["call.offered"],
        released=events["call.released"],
        refused=events["call.refused"],
        complete_recordings=len(complete(list_recordings(serve.data_dir))),
        survived=survived,
        exit_status=serve.exit_status,
    )


# -- flood -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FloodResult:
    label: str
    admission: str
    invites: int
    rate: float
    step: Step
    finals: Counter[int]
    no_final: int
    no_retry_after: int
    answered: int
    released: int
    survived: bool
    exit_status: int | None


def flood_run(ws: Workspace, invites: int, rate: float, label: str, env: dict[str, str]) -> FloodResult:
    with ws.serve("flood-" + re.sub(r"\W+", "-", label), max_calls=None, env=env) as serve:
        step = load_step(
            serve,
            BENCH_SIP / "flood_call.xml",
            calls=invites,
            concurrent=invites,
            rate=rate,
            timeout_s=invites / rate + 90,
            extra=("-recv_timeout", "32000", "-trace_msg", "-message_file", "messages.log"),
        )
        sent, finals = parse_sipp_messages(serve.sipp_dir / "messages.log")
        answered = sum(1 for status, _ in finals.values() if status == 200)
        serve.wait_until(lambda: serve.settled(answered), 60)
        events = serve.events()
        survived = serve.alive()
    return FloodResult(
        label=label,
        admission=serve.admission,
        invites=len(sent),
        rate=rate,
        step=step,
        finals=Counter(status for status, _ in finals.values()),
        no_final=len(sent - set(finals)),
        no_retry_after=sum(1 for status, retry in finals.values() if status == 503 and not retry),
        answered=answered,
        released=events["call.released"],
        survived=survived,
        exit_status=serve.exit_status,
    )
