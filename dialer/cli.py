"""``campaign ...`` and ``dial``: the campaign manager's commands (``add_commands`` registers
them for ``run_ivr.py``), and the dialer itself (:func:`run_dialer`, :func:`serve_companion`).

The ``campaign`` sub-commands live in :mod:`dialer.campaign_cli` and
:mod:`dialer.campaign_admin_cli`; this module keeps the composition root's part: starting the
dialer workers with a call placer, alone (``dial``) or inside ``serve --dial``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from config.cli_options import add_common_options
from config.errors import MissingDependencyError
from config.settings import Settings
from dialer.campaign_cli import add_campaign_commands
from dialer.cli_support import database
from dialer.db import DialerDataError, open_database
from dialer.dial_loops import make_loops
from dialer.intake import AddedContact
from dialer.intake_http import load_tokens, start_intake
from dialer.models import CampaignState
from dialer.store import DialerStore
from dialer.worker import CallPlacer
from ivr.event_publisher import create_publisher


def add_commands(subparsers: Any) -> None:
    add_campaign_commands(subparsers)

    dial = subparsers.add_parser("dial", help="run dialer workers for running campaigns")
    add_common_options(dial)
    dial.add_argument("--campaign", metavar="NAME", help="only this campaign (default: every running one)")
    dial.add_argument("--workers", type=int, default=1, metavar="N", help="worker loops sharing the trunk")
    dial.add_argument("--sip-port", type=int, metavar="N", help="SIP port to call from (dialer.sip_port)")
    dial.add_argument("--bind", metavar="ADDR", help="address for SIP and RTP (sip.bind_address)")
    dial.add_argument(
        "--until-done",
        action="store_true",
        help="exit once no selected campaign is running (every contact has an outcome)",
    )
    dial.set_defaults(func=cmd_dial)


async def _stop_when_done(
    store: DialerStore, campaign: str | None, stop: asyncio.Event, poll_s: float = 1.0
) -> None:
    """Set ``stop`` once the selected campaign (or every campaign) is no longer running."""
    while not stop.is_set():
        await asyncio.sleep(poll_s)
        campaigns = await asyncio.to_thread(store.campaigns)
        selected = [c for c in campaigns if campaign is None or c.name == campaign]
        if not any(c.state == CampaignState.RUNNING for c in selected):
            stop.set()


def _placer(settings: Settings) -> CallPlacer:
    try:
        from ivr.outbound import SipCallPlacer
    except ImportError as exc:
        raise MissingDependencyError(
            "outbound calling (ivr.outbound.SipCallPlacer)",
            f"it could not be imported ({exc}); the dial command needs it to place calls",
        ) from exc
    placer: CallPlacer = SipCallPlacer(settings)
    return placer


def serve_companion(
    settings: Settings, campaign: str | None, workers: int
) -> Callable[[Any, asyncio.Event], Awaitable[int]]:
    """The dialer as ``serve --dial`` runs it: on the server's SIP hub, until serve stops.

    The database is opened (and upgraded) and the campaign name checked here, before serve
    starts listening, so a typo fails the command instead of a background task.
    """
    if workers < 1:
        raise DialerDataError(f"--dial-workers {workers}: must be at least 1")
    if settings.intake.http_port:
        load_tokens(settings.intake)  # a missing or unsafe token file fails serve, not a task
    engine = open_database(settings.database_url, settings.database)
    try:
        if campaign:
            DialerStore(engine).campaign(campaign)
    except BaseException:
        engine.dispose()
        raise

    async def run(hub: Any, stop: asyncio.Event) -> int:
        from ivr.outbound import SipCallPlacer

        try:
            placer = SipCallPlacer(settings, hub=hub)
            return await run_dialer(settings, engine, placer, campaign=campaign, workers=workers, stop=stop)
        finally:
            engine.dispose()

    return run


def cmd_dial(args: argparse.Namespace) -> int:
    with database(args, dialer__sip_port=args.sip_port, sip__bind_address=args.bind) as (settings, engine):
        if args.workers < 1:
            raise DialerDataError(f"--workers {args.workers}: must be at least 1")
        if args.campaign:
            DialerStore(engine).campaign(args.campaign)  # fail early on a typo
        placer = _placer(settings)
        asyncio.run(
            run_dialer(
                settings,
                engine,
                placer,
                campaign=args.campaign,
                workers=args.workers,
                until_done=args.until_done,
            )
        )
    return 0


async def run_dialer(
    settings: Settings,
    engine: Any,
    placer: CallPlacer,
    *,
    campaign: str | None = None,
    workers: int = 1,
    stop: asyncio.Event | None = None,
    until_done: bool = False,
) -> int:
    """Run ``workers`` loops on one trunk pacer until ``stop`` is set; returns calls placed.

    Without ``stop``, SIGINT/SIGTERM stop it. ``serve`` may run this next to the inbound side
    with its own ``stop`` event. The placer's ``aclose()`` (if any) is awaited at the end.
    """
    store = DialerStore(engine, lease_duration=timedelta(seconds=settings.dialer.lease_s))
    events = create_publisher(settings.mqtt)
    events.start()
    loops = make_loops(settings, engine, placer, events, campaign=campaign, workers=workers)

    def wake(added: AddedContact) -> None:  # a contact from real-time intake: dial it now
        if added.dialable_now and (campaign is None or added.campaign == campaign):
            for worker in loops:
                worker.wake()

    try:
        intake = await start_intake(settings, engine, on_added=wake)
    except BaseException:
        await events.aclose()
        raise
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM) if stop is None else ()
    stop = stop or asyncio.Event()
    for signum in signals:
        # Stop dialling and let live calls finish (a caller passing ``stop`` owns the signals).
        loop.add_signal_handler(signum, stop.set)
    watcher = (
        asyncio.create_task(_stop_when_done(store, campaign, stop), name="dialer-until-done")
        if until_done
        else None
    )
    try:
        await asyncio.gather(*(w.run(stop) for w in loops))
    finally:
        await intake.aclose()  # first: no new contacts while the loops wind down
        if watcher is not None:
            watcher.cancel()
        for signum in signals:
            loop.remove_signal_handler(signum)
        aclose = getattr(placer, "aclose", None)
        if aclose is not None:
            await aclose()
        await events.aclose()
    placed = sum(w.stats.placed for w in loops)
    print(f"dialer stopped: {placed} calls placed", file=sys.stderr)
    return placed
