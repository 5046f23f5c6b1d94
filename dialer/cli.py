"""``campaign ...`` and ``dial``: the campaign manager's commands.

Every command opens the database from settings (``--config``, ``--data-dir``) and upgrades
its schema first, so a new release never needs a separate migration step. Callee numbers
are printed only where the manager asked for them (``dnc list``, ``export``), never logged.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError

from config import logs
from config.cli_options import add_common_options, settings_from_args
from config.errors import MissingDependencyError
from config.settings import Settings
from dialer import dnc
from dialer.db import DialerDataError, database_error, open_database
from dialer.export import export_to_file
from dialer.importer import CampaignSpec, import_csv, parse_column_map
from dialer.models import CampaignKind, CampaignState, MachinePolicy, utcnow
from dialer.pacing import Pacer
from dialer.status import campaign_status, format_status
from dialer.store import DialerStore
from dialer.worker import CallPlacer, DialerWorker, SystemClock, WorkerConfig
from ivr.event_publisher import create_publisher


def add_commands(subparsers: Any) -> None:
    campaign = subparsers.add_parser("campaign", help="import call lists, run campaigns, export outcomes")
    sub = campaign.add_subparsers(dest="campaign_command", required=True, metavar="ACTION")

    imp = _leaf(sub, "import", "load a CSV call list into a campaign (created if new)", cmd_import)
    imp.add_argument("name", metavar="NAME")
    imp.add_argument("file", metavar="FILE.csv", type=Path)
    imp.add_argument("--kind", required=True, choices=[k.value for k in CampaignKind])
    imp.add_argument("--flow", required=True, metavar="FLOW", help="flow YAML the calls run")
    imp.add_argument("--region", default="", metavar="CC", help="country for national numbers (CN, US, ...)")
    imp.add_argument("--map", action="append", default=[], metavar="NEW=OLD", help="rename a CSV column")
    imp.add_argument("--window-hours", type=float, default=24.0, help="callback window after cooling-off end")
    imp.add_argument("--starts", metavar="ISO", help="retention: first moment to call (with UTC offset)")
    imp.add_argument("--ends", metavar="ISO", help="retention: last moment to call (with UTC offset)")
    imp.add_argument(
        "--hours", default="09:00-21:00", metavar="HH:MM-HH:MM", help="callee-local calling hours"
    )
    imp.add_argument("--holiday", action="append", default=[], metavar="DATE", help="no calls on this date")
    imp.add_argument("--max-attempts", type=int, default=5, metavar="N")
    imp.add_argument(
        "--retry",
        action="append",
        default=[],
        metavar="RESULT=DELAY",
        help="retry delay per result, e.g. busy=5m, no_answer=30m, rejected=final",
    )
    imp.add_argument(
        "--retry-outcome",
        action="append",
        default=[],
        metavar="OUTCOME=DELAY",
        help="call again when a call ends with this flow outcome, e.g. no_decision=30m "
        "(compliance callbacks default to no_decision=30m; OUTCOME=final turns that off)",
    )
    imp.add_argument(
        "--machine", choices=[m.value for m in MachinePolicy], default=MachinePolicy.HANGUP_RETRY
    )

    for action, help_text in (
        ("start", "let workers dial the campaign"),
        ("pause", "stop new calls at once (calls in progress finish)"),
        ("resume", "dial again after a pause"),
    ):
        leaf = _leaf(sub, action, help_text, cmd_state)
        leaf.add_argument("name", metavar="NAME")

    status = _leaf(sub, "status", "counts by state and outcome, rates, deadlines at risk", cmd_status)
    status.add_argument("name", metavar="NAME", nargs="?", help="(default: every campaign)")
    status.add_argument("--horizon-hours", type=float, default=2.0, help="deadline within this is at risk")

    export = _leaf(sub, "export", "write a CSV of every contact with attempts and outcome", cmd_export)
    export.add_argument("name", metavar="NAME")
    export.add_argument(
        "--output", "-o", type=Path, metavar="FILE", help="default: DATA_DIR/exports/NAME.csv"
    )

    dnc_parser = sub.add_parser("dnc", help="manage the do-not-call list")
    dnc_sub = dnc_parser.add_subparsers(dest="dnc_command", required=True, metavar="ACTION")
    add = _leaf(dnc_sub, "add", "never call this number; marks existing contacts", cmd_dnc_add)
    add.add_argument("number", metavar="NUMBER")
    add.add_argument("--reason", default="", metavar="TEXT")
    add.add_argument("--region", default="", metavar="CC")
    remove = _leaf(dnc_sub, "remove", "allow this number again", cmd_dnc_remove)
    remove.add_argument("number", metavar="NUMBER")
    remove.add_argument("--region", default="", metavar="CC")
    dnc_import = _leaf(dnc_sub, "import", "add every number of a CSV (phone[,reason])", cmd_dnc_import)
    dnc_import.add_argument("file", metavar="FILE.csv", type=Path)
    dnc_import.add_argument("--region", default="", metavar="CC")
    _leaf(dnc_sub, "list", "print the list", cmd_dnc_list)

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


def _leaf(sub: Any, name: str, help_text: str, func: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
    add_common_options(parser)
    parser.set_defaults(func=func)
    return parser


@contextmanager
def _database(args: argparse.Namespace, **overrides: Any) -> Iterator[tuple[Settings, Any]]:
    """Settings and the upgraded database for one command; the engine is disposed after.

    A database failure (a lock or statement timeout, a lost server) becomes one line naming
    the command, e.g. ``campaign status: gave up after waiting 30 s for a lock ...``.
    """
    settings = settings_from_args(args, **overrides)
    logs.configure(settings.log_level)
    engine = open_database(settings.database_url, settings.database, _command_name(args))
    try:
        yield settings, engine
    except DBAPIError as exc:
        raise database_error(exc, _command_name(args), settings.database) from exc
    finally:
        engine.dispose()


def _command_name(args: argparse.Namespace) -> str:
    parts = [getattr(args, name, None) for name in ("command", "campaign_command", "dnc_command")]
    return " ".join(str(part) for part in parts if part)


def _instant(text: str | None, option: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise DialerDataError(
            f"{option} {text!r}: expected ISO 8601 like 2025-06-01T09:00:00+08:00"
        ) from None
    if value.tzinfo is None:
        raise DialerDataError(f"{option} {text!r}: add a UTC offset, e.g. 2025-06-01T09:00:00+08:00")
    return value


def _retry_config(args: argparse.Namespace) -> dict[str, Any]:
    """``RetryPolicy.from_config`` data; leaving a message on a machine ends the contact."""
    config: dict[str, Any] = {
        "max_attempts": args.max_attempts,
        "message_left_final": args.machine == MachinePolicy.LEAVE_MESSAGE,
    }
    for item in args.retry:
        result, delay = _pair(item, "--retry", "RESULT=DELAY, e.g. busy=5m")
        config[result] = delay
    # The order takes effect only once a callback confirms it: a callee who hung up before
    # deciding is called again (within the window and the attempt cap) unless told otherwise.
    outcomes = {"no_decision": "30m"} if args.kind == CampaignKind.COMPLIANCE_CALLBACK else {}
    for item in args.retry_outcome:
        outcome, delay = _pair(item, "--retry-outcome", "OUTCOME=DELAY, e.g. no_decision=30m")
        outcomes[outcome] = delay
    if outcomes:
        config["outcomes"] = outcomes
    return config


def _pair(item: str, option: str, expected: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise DialerDataError(f"{option} {item!r}: expected {expected}")
    return key.strip(), value.strip()


def cmd_import(args: argparse.Namespace) -> int:
    with _database(args) as (settings, engine):
        spec = CampaignSpec(
            kind=CampaignKind(args.kind),
            flow=args.flow,
            region=args.region.upper(),
            callback_window=timedelta(hours=args.window_hours),
            starts_at=_instant(args.starts, "--starts"),
            ends_at=_instant(args.ends, "--ends"),
            calling_hours={"default": args.hours, "holidays": list(args.holiday)},
            retry=_retry_config(args),
            machine_policy=MachinePolicy(args.machine),
        )
        report = import_csv(
            engine,
            args.name,
            args.file,
            spec,
            now=utcnow(),
            column_map=parse_column_map(args.map),
            rejects_fallback_dir=settings.data_path,
        )
    for reject in report.rejects:
        print(reject.format(args.file))
    print(
        f"campaign {report.campaign}: {report.rows} rows, {report.imported} imported, "
        f"{report.unchanged} already imported, {report.rejected_rows} rejected, "
        f"{report.dnc_marked} on the do-not-call list"
    )
    if report.rejects_file:
        print(f"rejects written to {report.rejects_file}")
    return 1 if report.rejects else 0


_STATES = {"start": CampaignState.RUNNING, "pause": CampaignState.PAUSED, "resume": CampaignState.RUNNING}


def cmd_state(args: argparse.Namespace) -> int:
    with _database(args) as (_, engine):
        store = DialerStore(engine)
        target = _STATES[args.campaign_command]
        previous = store.set_state(args.name, target)
    print(f"campaign {args.name}: {previous.value} -> {target.value}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with _database(args) as (_, engine):
        names = [args.name] if args.name else [c.name for c in DialerStore(engine).campaigns()]
        horizon = timedelta(hours=args.horizon_hours)
        now = utcnow()
        blocks = [format_status(campaign_status(engine, name, now, horizon)) for name in names]
    print("\n\n".join(blocks) if blocks else "no campaigns")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    with _database(args) as (settings, engine):
        target = args.output or settings.data_path / "exports" / f"{args.name}.csv"
        count = export_to_file(engine, args.name, target)
    print(f"{count} contacts written to {target}")
    return 0


def cmd_dnc_add(args: argparse.Namespace) -> int:
    with _database(args) as (_, engine):
        phone, added, marked = dnc.add(engine, args.number, args.reason, utcnow(), args.region.upper())
    print(f"{phone}: {'added' if added else 'already on the list'}; {marked} contacts marked")
    return 0


def cmd_dnc_remove(args: argparse.Namespace) -> int:
    with _database(args) as (_, engine):
        phone, unmarked = dnc.remove(engine, args.number, utcnow(), args.region.upper())
    print(f"{phone}: removed; {unmarked} contacts may be called again")
    return 0


def cmd_dnc_import(args: argparse.Namespace) -> int:
    with _database(args) as (_, engine):
        report = dnc.import_file(engine, args.file, utcnow(), args.region.upper())
    for reject in report.rejects:
        print(reject.format(args.file))
    print(
        f"{report.rows} rows: {report.added} added, {report.already} already listed, "
        f"{len(report.rejects)} rejected; {report.contacts_marked} contacts marked"
    )
    return 1 if report.rejects else 0


def cmd_dnc_list(args: argparse.Namespace) -> int:
    with _database(args) as (_, engine):
        for entry in dnc.listing(engine):
            print(f"{entry.phone}\t{entry.added_at.isoformat()}\t{entry.reason}")
    return 0


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
    with _database(args, dialer__sip_port=args.sip_port, sip__bind_address=args.bind) as (settings, engine):
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
    dialer = settings.dialer
    store = DialerStore(engine, lease_duration=timedelta(seconds=dialer.lease_s))
    # One process's SIP endpoint holds at most sip.engine_call_limit calls (see config/ivr.yaml).
    pacer = Pacer(min(dialer.max_concurrent_calls, settings.sip.engine_call_limit), dialer.calls_per_second)
    clock = SystemClock()
    base = f"{socket.gethostname()}:{os.getpid()}"
    events = create_publisher(settings.mqtt)
    events.start()
    loops = [
        DialerWorker(
            store,
            pacer,
            placer,
            clock,
            WorkerConfig(
                owner=f"{base}:{n}",
                trunk_uri=dialer.trunk_uri,
                ring_timeout_s=dialer.ring_timeout_s,
                campaign=campaign,
            ),
            events=events,
        )
        for n in range(workers)
    ]
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
