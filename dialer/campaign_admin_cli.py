"""``campaign list|delete|recycle`` and ``campaign dnc ...``: housekeeping commands.

``delete`` and ``recycle`` are audited (:mod:`dialer.campaign_admin`); ``delete`` asks first
(type the campaign's name) unless given ``--yes``, and refuses without a terminal to ask on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dialer import dnc
from dialer.campaign_admin import (
    CampaignSummary,
    delete_campaign,
    list_campaigns,
    parse_results,
    recycle_contacts,
)
from dialer.cli_support import database, leaf
from dialer.db import CampaignNotFoundError, DialerDataError
from dialer.models import CampaignState, utcnow


def add_admin_commands(sub: Any) -> None:
    """Register under ``campaign`` (``sub`` is its sub-command table)."""
    listing = leaf(sub, "list", "every campaign with its kind, state and counts", cmd_list)
    listing.add_argument("--json", action="store_true", help="JSON instead of a table")

    remove = leaf(
        sub,
        "delete",
        "remove a campaign with its contacts and attempts (not while running; audited)",
        cmd_delete,
    )
    remove.add_argument("name", metavar="NAME")
    remove.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    recycle = leaf(
        sub,
        "recycle",
        "call again the contacts whose last result is one of these (audited)",
        cmd_recycle,
        description="Queue again, due now and with their attempt count reset, the contacts whose "
        "last call ended with one of the results given, unless they are in a call, on the "
        "do-not-call list, or ended with a success or do-not-call outcome. Contacts past their "
        "deadline are left alone. A finished campaign becomes paused: resume it to dial them.",
    )
    recycle.add_argument("name", metavar="NAME")
    recycle.add_argument(
        "--result",
        required=True,
        metavar="RESULT[,RESULT...]",
        help="e.g. busy,no_answer,answered_machine,network_failure,worker_lost",
    )

    dnc_parser = sub.add_parser("dnc", help="manage the do-not-call list")
    dnc_sub = dnc_parser.add_subparsers(dest="dnc_command", required=True, metavar="ACTION")
    add = leaf(dnc_sub, "add", "never call this number; marks existing contacts", cmd_dnc_add)
    add.add_argument("number", metavar="NUMBER")
    add.add_argument("--reason", default="", metavar="TEXT")
    add.add_argument("--region", default="", metavar="CC")
    remove_number = leaf(dnc_sub, "remove", "allow this number again", cmd_dnc_remove)
    remove_number.add_argument("number", metavar="NUMBER")
    remove_number.add_argument("--region", default="", metavar="CC")
    dnc_import = leaf(dnc_sub, "import", "add every number of a CSV (phone[,reason])", cmd_dnc_import)
    dnc_import.add_argument("file", metavar="FILE.csv", type=Path)
    dnc_import.add_argument("--region", default="", metavar="CC")
    leaf(dnc_sub, "list", "print the list", cmd_dnc_list)


_LIST_COLUMNS = ("name", "kind", "state", "contacts", "pending", "in_call", "done", "dnc", "attempts")


def format_list(summaries: list[CampaignSummary]) -> str:
    if not summaries:
        return "no campaigns"
    rows = [list(_LIST_COLUMNS)] + [[str(getattr(s, column)) for column in _LIST_COLUMNS] for s in summaries]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_LIST_COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def cmd_list(args: argparse.Namespace) -> int:
    with database(args) as (_, engine):
        summaries = list_campaigns(engine)
    if args.json:
        data = [
            {**{c: getattr(s, c) for c in _LIST_COLUMNS}, "created_at": s.created_at.isoformat()}
            for s in summaries
        ]
        print(json.dumps(data))
    else:
        print(format_list(summaries))
    return 0


def _confirm(summary: CampaignSummary) -> bool:
    if not sys.stdin.isatty():
        raise DialerDataError(
            f"campaign delete {summary.name}: add --yes to delete without a prompt (no terminal to ask on)"
        )
    print(
        f"campaign {summary.name} ({summary.kind}, {summary.state}) has {summary.contacts} contacts"
        f" and {summary.attempts} attempts; deleting removes them and their history for good."
    )
    try:
        answer = input(f"type the campaign name ({summary.name}) to delete it: ")
    except EOFError:
        return False
    return answer.strip() == summary.name


def cmd_delete(args: argparse.Namespace) -> int:
    with database(args) as (_, engine):
        found = [s for s in list_campaigns(engine) if s.name == args.name]
        if not found:
            raise CampaignNotFoundError(args.name)
        summary = found[0]
        if summary.state == CampaignState.RUNNING:  # checked again, locked, by delete_campaign
            raise DialerDataError(
                f"campaign '{args.name}' is running: pause it first (campaign pause {args.name}),"
                " then delete it once its calls have ended"
            )
        if not args.yes and not _confirm(summary):
            print(f"campaign {args.name}: not deleted")
            return 1
        report = delete_campaign(engine, args.name)
    print(
        f"campaign {report.campaign} deleted: {report.contacts} contacts, {report.attempts} attempts,"
        f" {report.events} contact events"
    )
    return 0


def cmd_recycle(args: argparse.Namespace) -> int:
    results = parse_results(args.result)
    with database(args) as (_, engine):
        report = recycle_contacts(engine, args.name, results, utcnow())
    line = f"campaign {report.campaign}: {report.recycled} contacts queued again (due now, attempts reset)"
    if report.past_deadline:
        line += f"; {report.past_deadline} past their deadline left alone"
    print(line)
    if report.reopened:
        print(f"campaign {report.campaign} was finished and is now paused: campaign resume {report.campaign}")
    return 0


def cmd_dnc_add(args: argparse.Namespace) -> int:
    with database(args) as (_, engine):
        phone, added, marked = dnc.add(engine, args.number, args.reason, utcnow(), args.region.upper())
    print(f"{phone}: {'added' if added else 'already on the list'}; {marked} contacts marked")
    return 0


def cmd_dnc_remove(args: argparse.Namespace) -> int:
    with database(args) as (_, engine):
        phone, unmarked = dnc.remove(engine, args.number, utcnow(), args.region.upper())
    print(f"{phone}: removed; {unmarked} contacts may be called again")
    return 0


def cmd_dnc_import(args: argparse.Namespace) -> int:
    with database(args) as (_, engine):
        report = dnc.import_file(engine, args.file, utcnow(), args.region.upper())
    for reject in report.rejects:
        print(reject.format(args.file))
    print(
        f"{report.rows} rows: {report.added} added, {report.already} already listed, "
        f"{len(report.rejects)} rejected; {report.contacts_marked} contacts marked"
    )
    return 1 if report.rejects else 0


def cmd_dnc_list(args: argparse.Namespace) -> int:
    with database(args) as (_, engine):
        for entry in dnc.listing(engine):
            print(f"{entry.phone}\t{entry.added_at.isoformat()}\t{entry.reason}")
    return 0
