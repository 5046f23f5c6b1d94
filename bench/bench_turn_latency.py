"""Turn latency over real SIP, measured from the stereo recordings (issue 16's benchmark).

Run: .venv/bin/python bench/bench_turn_latency.py (about 5 minutes; ``--update-docs`` writes the
tables into the ``turn-latency`` section of docs/benchmarks.md, one block per set of options;
``--serve-env KEY=VALUE`` changes every serve's settings).

Per espeak-ng voice (en-us, en-gb, en-us+f3, en-us+m3) a fresh ``run_ivr.py serve --workers 1``
on the demo flow on 127.0.0.1, in a temp data dir with an empty TTS cache; sipp callers
(tests/sip/caller_speaks.xml, G.711 µ-law RTP) each say one sentence in that voice 7 s after
answer, when the greeting and question are over, a few at once (``--concurrent``, arriving at
``--rate`` per second). Each call's stereo recording (left caller, right bot) gives the turn:
the end of the caller's speech energy to the start of the bot's next speech energy (10 ms RMS
windows above -40 dBFS, pauses under 300 ms bridged). The reply's sidecar marks say where the
time went: VAD speech end, end of turn decided, recognizer final, first frame of the reply. The
demo flow's reply is the templated read-back "I heard: {{ heard }}. ...": its first piece is
pre-rendered, its value piece is rendered during the call the first time a serve hears that
sentence (uncached) and comes from the cache later.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.capacity_report import DOCS, code_state
from bench.capacity_serve import ROOT, Workspace, add_serve_env_argument, loadavg, serve_env_vars
from bench.turn_calls import SENTENCES, VOICES, VoiceRun, voice_run
from bench.turn_report import goals, readback_table, span_table, update_docs, voice_table
from ivr.sipp_peer import require_tool


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--voices", default=",".join(VOICES), help="comma-separated espeak-ng voices")
    parser.add_argument("--calls", type=int, default=4, help="calls per voice and sentence")
    parser.add_argument("--concurrent", type=int, default=4, help="calls at once (sipp -l)")
    parser.add_argument("--rate", type=float, default=1.0, help="callers arriving per second")
    add_serve_env_argument(parser)
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, recordings)")
    parser.add_argument("--update-docs", action="store_true", help="write the tables into docs/benchmarks.md")
    args = parser.parse_args()
    args.voice_list = [v.strip() for v in args.voices.split(",") if v.strip()]
    if not args.voice_list:
        parser.error("--voices: name at least one espeak-ng voice")
    if args.calls < 1 or args.concurrent < 1 or args.rate <= 0:
        parser.error("--calls and --concurrent must be at least 1 and --rate above 0")
    args.serve_env_vars = serve_env_vars(parser, args.serve_env)
    require_tool("sipp", "sip-tester")
    require_tool("espeak-ng", "espeak-ng")
    return args


def report(runs: list[VoiceRun], args: argparse.Namespace, header: str) -> list[str]:
    samples = [s for r in runs for s in r.samples]
    notes = [f"{r.voice}: {'; '.join(r.notes)}" for r in runs if r.notes]
    unpaired = sum(r.unpaired for r in runs)
    unmarked = sum(1 for s in samples if s.marks is None)
    return [
        header,
        "",
        f"Callers: {args.calls} per voice and sentence ({', '.join(f'{s!r}' for s in SENTENCES)}), "
        f"{args.concurrent} at once, arriving at {args.rate:g}/s; figures in ms, p50 / p95 / max "
        "(nearest rank).",
        "",
        voice_table(runs),
        "",
        "Where the time goes (every turn whose reply carries sidecar marks):",
        "",
        span_table(samples),
        "",
        "The demo flow's templated read-back:",
        "",
        readback_table(samples),
        "",
        *goals(samples),
        *([f"- Complete recordings without a measurable turn: {unpaired}."] if unpaired else []),
        *(
            [
                f"- Turns whose sidecar marks do not line up with the audio (the bot audible more "
                f"than a frame before `reply_start_s` or over 0.5 s after it): {unmarked}."
            ]
            if unmarked
            else []
        ),
        *([f"- Notes: {' | '.join(notes)}."] if notes else []),
    ]


def main() -> int:
    args = parse_args()
    shown = [a for a in sys.argv[1:] if a not in ("--keep", "--update-docs")]  # no effect on figures
    command = " ".join([".venv/bin/python bench/bench_turn_latency.py", *shown])
    started = datetime.now(UTC)
    header = (
        f"Command: `{command.strip()}` ({started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores; "
        f"load average at start {loadavg()}); code: {code_state()}."
    )
    ws = Workspace(Path(tempfile.mkdtemp(prefix="bench-turns-")), args.serve_env_vars)
    runs: list[VoiceRun] = []
    try:
        for voice in args.voice_list:
            log(f"voice {voice} (load average {loadavg()})")
            runs.append(
                voice_run(
                    ws,
                    voice,
                    SENTENCES,
                    calls=args.calls,
                    concurrent=args.concurrent,
                    rate=args.rate,
                    log=log,
                )
            )
            r = runs[-1]
            log(f"  {r.complete} complete recordings, {r.understood} understood, {len(r.samples)} turns")
    finally:
        if args.keep:
            log(f"kept {ws.tmp}")
        else:
            shutil.rmtree(ws.tmp, ignore_errors=True)
    out = report(runs, args, header)
    out.append(f"\nLoad average at the end: {loadavg()}.")
    print("\n" + "\n".join(out) + "\n", flush=True)
    if args.update_docs:
        update_docs("\n".join(out), " ".join(shown) or "default")
        log(f"updated {DOCS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
