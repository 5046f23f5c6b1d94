"""The ``serve`` and ``demo`` commands."""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import TYPE_CHECKING, Any

from config import logs
from config.cli_options import add_common_options, settings_from_args
from config.errors import ConfigError
from config.settings import Settings

if TYPE_CHECKING:
    from ivr.worker_pool import DialPassthrough


def add_commands(sub: Any) -> None:
    serve = sub.add_parser("serve", help="answer SIP calls and run the configured flow")
    add_common_options(serve)
    serve.add_argument("--sip-port", type=int, metavar="N", help="SIP port (UDP and TCP)")
    serve.add_argument("--bind", metavar="ADDR", help="address to bind SIP and RTP to")
    serve.add_argument("--flow", metavar="FILE", help="flow YAML every inbound call runs")
    serve.add_argument("--max-calls", type=int, metavar="N", help="concurrent calls before 486 Busy Here")
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="run N worker processes on the next N ports; Kamailio on this port dispatches callers to "
        "them (balancer.front; without Kamailio, a 302 redirect) "
        f"(default: one per CPU core, here {default_workers()}; 1 = a single process)",
    )
    serve.add_argument(
        "--drain-timeout",
        type=float,
        metavar="S",
        help="after SIGUSR1 (drain), hang up calls still live after S seconds (0 = never; "
        "default: sip.drain_timeout_s)",
    )
    serve.add_argument(
        "--dial",
        action="store_true",
        help="also run the outbound dialer in this process, on the same SIP endpoint",
    )
    serve.add_argument("--campaign", metavar="NAME", help="with --dial: only this campaign")
    serve.add_argument(
        "--dial-workers", type=int, default=1, metavar="N", help="with --dial: dialer loops sharing the trunk"
    )
    serve.set_defaults(func=run_serve)

    demo = sub.add_parser("demo", help="place a real SIP call to a local IVR and print the transcript")
    add_common_options(demo)
    demo.add_argument("--say", default="I want to check my balance", help="what the synthetic caller says")
    demo.add_argument("--flow", metavar="FILE", help="flow to run (default: the hotline)")
    demo.set_defaults(func=run_demo)


def default_workers() -> int:
    """``serve`` runs one worker process per CPU core unless told otherwise."""
    return max(1, os.cpu_count() or 1)


def run_serve(args: argparse.Namespace) -> int:
    from console.cli import console_beside_serve

    with console_beside_serve(args):  # the web console, when console.enabled
        return _run_serve(args)


def _run_serve(args: argparse.Namespace) -> int:
    from ivr.call_services import CallServices
    from ivr.drain import hold_drain_requests
    from ivr.server import IvrServer

    hold_drain_requests()  # a SIGUSR1 while starting up must drain, not kill, this process
    settings = settings_from_args(
        args,
        sip__port=args.sip_port,
        sip__bind_address=args.bind,
        flow__path=args.flow,
        sip__max_concurrent_calls=args.max_calls,
        sip__drain_timeout_s=args.drain_timeout,
    )
    logs.configure(settings.log_level)
    if (args.campaign or args.dial_workers != 1) and not args.dial:
        raise ConfigError("--campaign and --dial-workers only apply with --dial")
    workers = default_workers() if args.workers is None else args.workers
    if workers < 1:
        raise ConfigError(f"--workers {workers}: must be at least 1")
    if workers > 1:
        from ivr.front import run_front
        from ivr.worker_pool import DialPassthrough

        dial = DialPassthrough(args.campaign, args.dial_workers) if args.dial else None
        if dial is not None:
            _check_dial(settings, dial)
        return asyncio.run(run_front(settings, workers, config_file=args.config, dial=dial))
    companion = None
    if args.dial:
        from dialer.cli import serve_companion

        companion = serve_companion(settings, args.campaign, args.dial_workers)

    async def main() -> int:
        services = await asyncio.to_thread(CallServices.load, settings)
        services.start()
        try:
            return await IvrServer(settings, services, companion).run()
        finally:
            await services.aclose()

    return asyncio.run(main())


def _check_dial(settings: Settings, dial: DialPassthrough) -> None:
    """What every worker's dialer would fail on, checked once before any worker starts (the
    database is upgraded here, once, too)."""
    from dialer.db import DialerDataError, open_database
    from dialer.store import DialerStore

    if dial.loops < 1:
        raise DialerDataError(f"--dial-workers {dial.loops}: must be at least 1")
    engine = open_database(settings.database_url, settings.database)
    try:
        if dial.campaign:
            DialerStore(engine).campaign(dial.campaign)
    finally:
        engine.dispose()


def run_demo(args: argparse.Namespace) -> int:
    from ivr.demo import run_demo as demo

    settings = settings_from_args(args, flow__path=args.flow or "flows/library/demo.yaml")
    logs.configure("warning" if settings.log_level == "info" else settings.log_level)
    return asyncio.run(demo(settings, args.say))
