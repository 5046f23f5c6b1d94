"""``recordings hold``, ``release``, ``purge`` (legal hold and retention), ``audit`` (the access
log) and ``reindex`` (the call index rebuilt from the files): keeping calls as the rules say,
and the record of who touched them.
"""

from __future__ import annotations

import argparse
import json
import sys

from recordings.access_log import read_access_log, record_access
from recordings.call_index import reindex
from recordings.cli_common import locate, open_context, parse_when, print_table
from recordings.errors import RecordingError
from recordings.retention import (
    PurgeItem,
    RetentionPolicy,
    active_hold,
    check_can_hold,
    execute_purge,
    place_hold,
    plan_purge,
    release_hold,
)
from recordings.signing import load_signer


def cmd_reindex(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    record_access(ctx.engine, ctx.who, "reindex")
    report = reindex(ctx.root, ctx.engine)
    for problem in report.problems:
        print(f"warning: {problem}", file=sys.stderr)
    print(
        f"{report.indexed} call(s) indexed, {report.unchanged} unchanged, {report.removed} removed"
        f" (no longer on disk), {report.live} still recording"
    )
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    since = parse_when(args.since, "--since") if args.since else None
    if args.limit < 0:
        raise RecordingError(f"--limit {args.limit}: must be 0 (all) or more")
    ctx = open_context(args)
    record_access(ctx.engine, ctx.who, "audit", detail={"since": args.since} if args.since else {})
    entries = read_access_log(ctx.engine, since, args.limit or None)
    if args.json:
        json.dump([entry.to_json() for entry in entries], sys.stdout, ensure_ascii=False, indent=2)
        print()
        return 0
    rows = []
    for e in entries:
        where = e.host + (f" {e.tty}" if e.tty else "") + (f" from {e.remote}" if e.remote else "")
        shown = ", ".join(e.call_ids[:3]) + (f" (+{e.call_count - 3})" if e.call_count > 3 else "")
        detail = " ".join(f"{k}={v}" for k, v in e.detail.items())
        who = e.actor if e.actor == e.os_user else f"{e.actor} ({e.os_user})"
        rows.append((e.at.strftime("%Y-%m-%d %H:%M:%S"), who, e.action, shown or "-", where, detail))
    print_table(("AT (UTC)", "WHO", "ACTION", "CALLS", "WHERE", "DETAIL"), rows, "(no access recorded)")
    return 0


def cmd_hold(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    entry, _ = locate(ctx, args.call_id)
    check_can_hold(ctx.engine, entry.call_id, args.reason)
    record_access(ctx.engine, ctx.who, "hold", [entry.call_id], detail={"reason": args.reason})
    hold = place_hold(ctx.engine, entry.call_id, args.reason, ctx.who.actor)
    print(f"HELD {hold.call_id} by {hold.held_by}: {hold.reason}")
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    if active_hold(ctx.engine, args.call_id) is None:
        raise RecordingError(f"call {args.call_id} is not on hold")
    record_access(ctx.engine, ctx.who, "release", [args.call_id], detail={"reason": args.reason})
    hold = release_hold(ctx.engine, args.call_id, ctx.who.actor, args.reason)
    print(
        f"RELEASED {hold.call_id} (held since {hold.held_at:%Y-%m-%d %H:%M} UTC"
        f" by {hold.held_by}: {hold.reason})"
    )
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    """Exit 1 if a due call could not be purged (named); 0 otherwise."""
    ctx = open_context(args)
    policy = RetentionPolicy(ctx.settings.recordings.retention_days)
    plan = plan_purge(ctx.engine, policy)
    ids = [item.call.call_id for item in plan.due]
    record_access(
        ctx.engine,
        ctx.who,
        "purge",
        ids,
        detail={
            "dry_run": args.dry_run,
            "due": len(plan.due),
            "held": [item.call.call_id for item in plan.held],
        },
    )
    for item in plan.held:
        print(f"HELD {_purge_line(item)}: on legal hold, kept")
    if args.dry_run:
        for item in plan.due:
            print(f"DUE {_purge_line(item)}")
        print(f"{len(plan.due)} call(s) due for deletion, {len(plan.held)} held (dry run: nothing deleted)")
        return 0
    if not plan.due:
        print(f"0 call(s) purged, {len(plan.held)} held")
        return 0
    signer = load_signer(ctx.settings.recordings_signing_key_path)
    result = execute_purge(ctx.root, ctx.engine, plan, signer, ctx.who.actor)
    purged = set(result.purged)
    for item in plan.due:
        if item.call.call_id in purged:
            print(f"PURGED {_purge_line(item)}")
    for call_id in result.kept:
        print(f"HELD {call_id}: put on hold during the purge, kept")
    for problem in result.problems:
        print(f"FAILED {problem}")
    failed = len(result.problems)
    print(
        f"{len(purged)} call(s) purged, {len(plan.held) + len(result.kept)} held"
        + (f", {failed} could not be purged" if failed else "")
    )
    return 1 if failed else 0


def _purge_line(item: PurgeItem) -> str:
    call = item.call
    return f"{call.call_id} started {call.started_at:%Y-%m-%d} ({item.reason}, due {item.due_at:%Y-%m-%d})"
