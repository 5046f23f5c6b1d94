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
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.capacity_parts import (
    AFTER_QUESTION_S,
    FLOOD_VARIANTS,
    SENTENCE,
    capacity_run,
    churn_run,
    flood_run,
    warm_up,
)
from bench.capacity_report import DOCS, capacity_table, churn_table, code_state, flood_table, update_docs
from bench.capacity_serve import ROOT, Workspace, add_serve_env_argument, loadavg, serve_env_vars
from ivr.sipp_peer import require_tool, synthesize_caller_audio


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def parse_args() -> argparse.Namespace:
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
    add_serve_env_argument(parser)
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, sipp files)")
    parser.add_argument("--update-docs", action="store_true", help="write the tables into docs/benchmarks.md")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.churn_calls, args.churn_rate, args.flood_invites = "4", 150, 50.0, 200
    args.parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    unknown = args.parts - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    args.serve_env_vars = serve_env_vars(parser, args.serve_env)
    require_tool("sipp", "sip-tester")
    if "capacity" in args.parts and os.geteuid() != 0:
        parser.error("the capacity part captures RTP with an AF_PACKET socket: run it as root")
    return args


def capacity_part(ws: Workspace, args: argparse.Namespace) -> list[str]:
    caller_wav = synthesize_caller_audio(
        SENTENCE, ws.tmp / "caller.wav", lead_s=AFTER_QUESTION_S, tail_s=30.0
    )
    log("warm-up call (fills the TTS cache)")
    tts_cache, warm = warm_up(ws, caller_wav)
    log(f"warm-up: {warm}")
    results = []
    for n in [int(x) for x in args.calls.split(",")]:
        log(f"capacity: {n} concurrent calls (load average {loadavg()})")
        results.append(
            capacity_run(ws, n, caller_wav, tts_cache, rate=args.call_rate, call_limit=args.call_limit)
        )
        log(results[-1].summary())
    return section(
        f"Capacity: demo flow, callers arriving at {args.call_rate:g}/s, each saying "
        f'"{SENTENCE}" {AFTER_QUESTION_S:g} s after answer; CPU over the sipp run '
        "(100 % = one core; all processes = serve and its speech workers), RTP gaps measured on "
        "the loopback interface per call.",
        capacity_table(results),
    )


def churn_part(ws: Workspace, args: argparse.Namespace) -> list[str]:
    log(f"churn: {args.churn_calls} calls at {args.churn_rate:g}/s, {args.churn_concurrent} at once")
    churn = churn_run(ws, args.churn_calls, args.churn_rate, args.churn_concurrent, args.churn_pause_ms)
    return section(f"Churn (answer, {args.churn_pause_ms} ms pause, BYE):", churn_table(churn))


def flood_part(ws: Workspace, args: argparse.Namespace) -> list[str]:
    floods = []
    for label, env in FLOOD_VARIANTS:
        log(f"flood: {args.flood_invites} INVITEs at {args.flood_rate:g}/s, {label} admission")
        floods.append(flood_run(ws, args.flood_invites, args.flood_rate, label, env))
        log(f"  {dict(floods[-1].finals)}, {floods[-1].no_final} without a final response")
    return section("Flood (final responses by status code):", flood_table(floods))


PARTS: dict[str, Callable[[Workspace, argparse.Namespace], list[str]]] = {
    "capacity": capacity_part,
    "churn": churn_part,
    "flood": flood_part,
}


def section(caption: str, table: str) -> list[str]:
    """Print a part's table; its lines for the docs block."""
    print("\n" + table + "\n", flush=True)
    return ["", caption, "", table]


def main() -> int:
    args = parse_args()
    shown = [a for a in sys.argv[1:] if a not in ("--keep", "--update-docs")]  # no effect on figures
    command = " ".join([".venv/bin/python bench/bench_capacity.py", *shown])
    started = datetime.now(UTC)
    out: list[str] = [
        f"Command: `{command.strip()}` ({started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores; "
        f"load average at start {loadavg()}); code: {code_state()}."
    ]
    ws = Workspace(Path(tempfile.mkdtemp(prefix="bench-capacity-")), args.serve_env_vars)
    try:
        for name, part in PARTS.items():
            if name in args.parts:
                out += part(ws, args)
    finally:
        if args.keep:
            log(f"kept {ws.tmp}")
        else:
            shutil.rmtree(ws.tmp, ignore_errors=True)
    out.append(f"\nLoad average at the end: {loadavg()}.")
    if args.update_docs:
        update_docs("\n".join(out), " ".join(shown) or "default")
        log(f"updated {DOCS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
