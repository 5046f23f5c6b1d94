"""``campaign import|start|pause|resume|status|export``: loading and running call lists.

The housekeeping commands (``list``, ``delete``, ``recycle``, ``dnc``) are in
:mod:`dialer.campaign_admin_cli`. Callee numbers are printed only where the manager asked for
them (``dnc list``, ``export``), never logged.
"""

from __future__ import annotations

import argparse
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from dialer.call_list_columns import help_epilog
from dialer.campaign_admin_cli import add_admin_commands
from dialer.cli_support import database, leaf
from dialer.db import DialerDataError
from dialer.export import export_to_file
from dialer.importer import CampaignSpec, ImportReport, import_csv, parse_column_map
from dialer.models import CampaignKind, CampaignState, MachinePolicy, utcnow
from dialer.status import CampaignStatus, campaign_status
from dialer.status_view import show
from dialer.store import DialerStore

REJECTS_SHOWN = 100
"""Reject lines printed; every one is in the rejects file."""


def add_campaign_commands(subparsers: Any) -> None:
    campaign = subparsers.add_parser("campaign", help="import call lists, run campaigns, export outcomes")
    sub = campaign.add_subparsers(dest="campaign_command", required=True, metavar="ACTION")

    imp = leaf(
        sub,
        "import",
        "load a CSV call list into a campaign (created if new)",
        cmd_import,
        epilog=help_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
        state = leaf(sub, action, help_text, cmd_state)
        state.add_argument("name", metavar="NAME")

    status = leaf(sub, "status", "progress, lines in use, rates, deadlines at risk, next retries", cmd_status)
    status.add_argument("name", metavar="NAME", nargs="?", help="(default: every campaign)")
    status.add_argument("--horizon-hours", type=float, default=2.0, help="deadline within this is at risk")
    status.add_argument("--watch", action="store_true", help="redraw until Ctrl-C")
    status.add_argument("--interval", type=float, default=2.0, metavar="S", help="seconds between redraws")
    status.add_argument("--json", action="store_true", help="JSON (one document per line with --watch)")
    status.add_argument("--hourly", type=int, default=24, metavar="N", help="hours of per-hour rates")
    status.add_argument(
        "--success-outcome",
        action="append",
        default=[],
        metavar="OUTCOME",
        help="a flow outcome that also counts as success (beyond the campaign kind's)",
    )
    status.add_argument("--iterations", type=int, help=argparse.SUPPRESS)  # tests: stop after N

    export = leaf(sub, "export", "write a CSV of every contact with attempts and outcome", cmd_export)
    export.add_argument("name", metavar="NAME")
    export.add_argument(
        "--output", "-o", type=Path, metavar="FILE", help="default: DATA_DIR/exports/NAME.csv"
    )

    add_admin_commands(sub)


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
    with database(args) as (settings, engine):
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
    _print_import(args, report)
    return 1 if report.rejects else 0


def _print_import(args: argparse.Namespace, report: ImportReport) -> None:
    for reject in report.rejects[:REJECTS_SHOWN]:
        print(reject.format(args.file))
    if len(report.rejects) > REJECTS_SHOWN:
        print(f"... and {len(report.rejects) - REJECTS_SHOWN} more (all in the rejects file)")
    print(
        f"campaign {report.campaign}: {report.rows} rows, {report.imported} imported, "
        f"{report.unchanged} already imported, {report.rejected_rows} rejected, "
        f"{report.dnc_marked} on the do-not-call list"
    )
    if report.rejects:
        by_field = Counter(r.field for r in report.rejects)
        print("rejected by field: " + ", ".join(f"{name} {n}" for name, n in by_field.most_common()))
    if report.rejects_file:
        print(f"rejects written to {report.rejects_file}")
    if report.campaign_discarded:
        print(f"campaign {report.campaign} was not created: no row was imported")
    if report.rows and report.rejected_rows == report.rows:
        print("every row was rejected; `run_ivr.py campaign import --help` lists the columns and formats")


_STATES = {"start": CampaignState.RUNNING, "pause": CampaignState.PAUSED, "resume": CampaignState.RUNNING}


def cmd_state(args: argparse.Namespace) -> int:
    with database(args) as (_, engine):
        store = DialerStore(engine)
        target = _STATES[args.campaign_command]
        previous = store.set_state(args.name, target)
    print(f"campaign {args.name}: {previous.value} -> {target.value}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        raise DialerDataError(f"--interval {args.interval}: must be more than 0 seconds")
    if args.hourly < 1:
        raise DialerDataError(f"--hourly {args.hourly}: must be at least 1")
    with database(args) as (_, engine):
        horizon = timedelta(hours=args.horizon_hours)
        if args.name:
            DialerStore(engine).campaign(args.name)  # a typo fails before the screen is taken

        def fetch() -> list[CampaignStatus]:
            names = [args.name] if args.name else [c.name for c in DialerStore(engine).campaigns()]
            now = utcnow()
            return [
                campaign_status(engine, name, now, horizon, args.success_outcome, hours=args.hourly)
                for name in names
            ]

        return show(
            fetch,
            console=Console(),
            as_json=args.json,
            watch=args.watch,
            interval=args.interval,
            iterations=args.iterations,
        )


def cmd_export(args: argparse.Namespace) -> int:
    with database(args) as (settings, engine):
        target = args.output or settings.data_path / "exports" / f"{args.name}.csv"
        count = export_to_file(engine, args.name, target)
    print(f"{count} contacts written to {target}")
    return 0
