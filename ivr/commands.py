"""The ``serve`` and ``demo`` commands."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from config.cli_options import add_common_options, settings_from_args
from config.settings import ConfigError
from ivr import logs


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
        default=1,
        metavar="N",
        help="run N worker processes on the next N ports; this port redirects (302) callers to them",
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


def run_serve(args: argparse.Namespace) -> int:
    from ivr.call_services import CallServices
    from ivr.server import IvrServer

    settings = settings_from_args(
        args,
        sip__port=args.sip_port,
        sip__bind_address=args.bind,
        flow__path=args.flow,
        sip__max_concurrent_calls=args.max_calls,
    )
    logs.configure(settings.log_level)
    if (args.campaign or args.dial_workers != 1) and not args.dial:
        raise ConfigError("--campaign and --dial-workers only apply with --dial")
    if args.workers > 1:
        from ivr.worker_pool import DialPassthrough, run_front

        dial = DialPassthrough(args.campaign, args.dial_workers) if args.dial else None
        return asyncio.run(run_front(settings, args.workers, config_file=args.config, dial=dial))
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


def run_demo(args: argparse.Namespace) -> int:
    from ivr.demo import run_demo as demo

    settings = settings_from_args(args, flow__path=args.flow or "flows/library/demo.yaml")
    logs.configure("warning" if settings.log_level == "info" else settings.log_level)
    return asyncio.run(demo(settings, args.say))
