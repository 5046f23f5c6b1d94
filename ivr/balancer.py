"""``run_ivr.py balancer``: Kamailio in the foreground in front of engine nodes.

The trunk sends every call to the balancer's address; Kamailio's dispatcher picks a healthy
engine node (OPTIONS probing, fewest live calls), tries the next one when a node is busy, down
or slow to answer, and record-routes so a call's ACK, BYE and re-INVITE reach its node. Media
goes straight between caller and node. See docs/deployment.md.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
from pathlib import Path
from types import FrameType
from typing import Any

from config import logs
from config.cli_options import add_common_options, settings_from_args
from ivr.balancer_config import plan_from_settings, render
from ivr.balancer_process import KamailioProcess


def add_commands(sub: Any) -> None:
    balancer = sub.add_parser(
        "balancer", help="run Kamailio in front of engine nodes (health-probed, load-aware, failover)"
    )
    add_common_options(balancer)
    balancer.add_argument(
        "--node",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="an engine node's SIP address (repeat; added to balancer.nodes)",
    )
    balancer.add_argument(
        "--listen", metavar="HOST:PORT", help="where the trunk reaches the balancer (default: balancer.*)"
    )
    balancer.add_argument(
        "--print-config",
        action="store_true",
        help="print the rendered kamailio.cfg and dispatcher list, exit",
    )
    balancer.set_defaults(func=run_balancer)


def run_balancer(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    logs.configure(settings.log_level)
    plan = plan_from_settings(settings, tuple(args.node), args.listen)
    if args.print_config:
        rendered = render(plan, Path("/run/ivr-balancer"))
        print(rendered.cfg)
        print(rendered.dispatcher_list, end="")
        return 0
    kamailio = KamailioProcess(plan)

    def forward(signum: int, _frame: FrameType | None) -> None:
        kamailio.signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        kamailio.start()
        while True:
            try:
                code = kamailio.wait(1.0)
                break
            except subprocess.TimeoutExpired:
                continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        kamailio.stop()
    return code
