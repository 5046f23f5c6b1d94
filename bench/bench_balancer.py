"""Calls per second through the Kamailio balancer to two engine nodes, and two nodes against one.

Run: .venv/bin/python bench/bench_balancer.py   (about 3-5 minutes; ``--quick`` for a short ramp)

Two ``run_ivr.py serve --workers 1`` nodes on loopback (the demo flow, speech decoded in-process,
admission limits raised as in bench_capacity) behind one Kamailio rendered by
``ivr.balancer_config`` (call_load, OPTIONS probes every second). sipp calls the balancer's
address with tests/sip/balancer_short_call.xml (answer, one second of silence, BYE through the
Record-Route), ramping the call rate step by step (each step ``--step-s`` seconds of arrivals)
until a step has a failed call or ends more than 2 s behind its schedule (calls queued up
waiting for an answer or a line): the last clean step's rate is what the front sustains. The same ramp
then runs against a second Kamailio in front of node A alone: the ratio of the two highest
clean rates is what a second node adds on this machine. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.capacity_serve import RAISED_ADMISSION, Serve, Workspace, loadavg
from bench.capacity_sipp import run_sipp
from config.settings import BalancerSettings, Settings
from ivr.balancer_config import plan_from_settings
from ivr.balancer_process import KamailioProcess
from ivr.sipp_peer import free_port

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "tests" / "sip" / "balancer_short_call.xml"
NODE_ENV = {**RAISED_ADMISSION, "IVR_MEDIA__SPEECH_WORKERS": "0"}
CALL_MS = 1000
MAX_LAG_S = 2.0


@dataclasses.dataclass(frozen=True)
class Step:
    nodes: int
    rate: float
    calls: int
    failed: int
    lag_s: float
    split: str
    failovers: int
    load: str

    @property
    def clean(self) -> bool:
        """Every call succeeded and the step ended on schedule (no calls queued up behind)."""
        return self.failed == 0 and self.lag_s < MAX_LAG_S


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


FAILOVERS: list[str] = []


def balancer(nodes: list[Serve], lines: int) -> KamailioProcess:
    settings = Settings(balancer=BalancerSettings(probe_interval_s=1, failover_timeout_s=3.0))
    settings = dataclasses.replace(settings, sip=dataclasses.replace(settings.sip, engine_call_limit=lines))
    plan = plan_from_settings(
        settings, tuple(f"127.0.0.1:{n.port}" for n in nodes), f"127.0.0.1:{free_port()}"
    )
    kamailio = KamailioProcess(
        plan, on_line=lambda line: FAILOVERS.append(line) if "next node" in line else None
    )
    kamailio.start()
    time.sleep(1.5)  # listening, and one probe round done
    return kamailio


def ramp(nodes: list[Serve], rates: list[float], step_s: float, workdir: Path) -> list[Step]:
    lines = 16
    kamailio = balancer(nodes, lines)
    front = dataclasses.replace(nodes[0], port=kamailio.plan.listen.port)  # run_sipp reads .port only
    steps: list[Step] = []
    try:
        for rate in rates:
            calls = max(4, round(rate * step_s))
            before = [n.events()["call.offered"] for n in nodes]
            failovers_before = len(FAILOVERS)
            load = loadavg()
            run = run_sipp(
                SCENARIO,
                front,
                workdir / f"{len(nodes)}-nodes-{rate:g}",
                calls=calls,
                concurrent=lines * len(nodes),
                rate=rate,
                timeout_s=step_s + 60,
                extra=("-d", str(CALL_MS)),
            )
            # The last call starts (calls - 1) / rate after the first and lasts CALL_MS; a step
            # that ends later than that plus MAX_LAG_S had calls waiting for answers or lines.
            lag = run.elapsed_s - (calls - 1) / rate - CALL_MS / 1000
            split = "/".join(str(n.events()["call.offered"] - b) for n, b in zip(nodes, before, strict=True))
            failovers = len(FAILOVERS) - failovers_before
            step = Step(len(nodes), rate, calls, run.failed(calls), lag, split, failovers, load)
            steps.append(step)
            log(f"{len(nodes)} node(s) {rate:g}/s: {step}")
            if step.failed:
                log("sipp's last errors:\n" + run.output[-1500:])
            if not step.clean:
                break
            time.sleep(2.0)  # let the nodes settle (recordings closed, lines free)
    finally:
        kamailio.stop()
    return steps


def best(steps: list[Step]) -> float:
    return max((s.rate for s in steps if s.clean), default=0.0)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="three short steps")
    parser.add_argument("--step-s", type=float, default=10.0, help="seconds of arrivals per step")
    args = parser.parse_args()
    rates = [2.0, 4.0, 8.0] if args.quick else [2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 20.0, 24.0, 32.0]
    step_s = 5.0 if args.quick else args.step_s
    with tempfile.TemporaryDirectory(prefix="bench-balancer-") as tmp:
        space = Workspace(Path(tmp))
        with (
            space.serve("a", max_calls=16, env=NODE_ENV) as a,
            space.serve("b", max_calls=16, env=NODE_ENV) as b,
        ):
            log(f"nodes up (load {loadavg()})")
            two = ramp([a, b], rates, step_s, Path(tmp) / "sipp")
            one = ramp([a], rates, step_s, Path(tmp) / "sipp")
    print("| nodes | calls/s | calls | failed | late by (s) | calls per node | failovers | load before |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for s in two + one:
        cells = [s.nodes, f"{s.rate:g}", s.calls, s.failed, f"{s.lag_s:.1f}", s.split, s.failovers, s.load]
        print("| " + " | ".join(map(str, cells)) + " |")
    b2, b1 = best(two), best(one)
    ratio = f"{b2 / b1:.2f}" if b1 else "n/a"
    print(f"\nhighest clean rate: two nodes {b2:.1f} calls/s, one node {b1:.1f} calls/s, ratio {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
