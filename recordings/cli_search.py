"""``recordings list``, ``show`` and ``search``: finding calls and reading them.

Each writes its row to the access log (:func:`recordings.access_log.record_access`) before it
prints anything. The QA column is the verdict the call index holds (``recordings qa``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from recordings.access_log import record_access
from recordings.call_search import IndexedCall, qa_verdicts, search
from recordings.catalog import Catalog
from recordings.cli_common import duration_text, locate, open_context, print_table, qa_text, search_filters
from recordings.errors import RecordingError
from recordings.numbers import remote_party

CALL_COLUMNS = ("STARTED (UTC)", "CALL ID", "DIR", "NUMBER", "FLOW", "OUTCOME", "DURATION")
_SHOWN = (
    "call_id",
    "status",
    "direction",
    "from",
    "to",
    "started_at",
    "ended_at",
    "duration_s",
    "flow",
    "flow_version",
    "outcome",
    "path",
    "sha256",
)


def cmd_list(args: argparse.Namespace) -> int:
    """Exit 1 (after listing the rest) if any sidecar could not be read."""
    ctx = open_context(args)
    scan = Catalog(ctx.root).scan()
    ids = [e.call_id for e in scan.entries]
    record_access(ctx.engine, ctx.who, "list", ids, detail={"json": args.json})
    verdicts = qa_verdicts(ctx.engine, ids)
    for error in scan.errors:
        print(f"error: {error}", file=sys.stderr)
    if args.json:
        listed = []
        for entry in scan.entries:
            qa = verdicts.get(entry.call_id)
            listed.append({**entry.to_json(), "qa": None if qa is None else qa.to_json()})
        json.dump(listed, sys.stdout, ensure_ascii=False, indent=2)
        print()
        return 1 if scan.errors else 0
    rows = []
    for e in scan.entries:
        s = e.sidecar
        rows.append(
            (
                s.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                e.call_id,
                s.direction,
                remote_party(s.direction, s.from_masked, s.to_masked) or "-",
                s.flow_name or "-",
                s.outcome or "-",
                duration_text(e.duration_s),
                str(len(s.turns)),
                e.status,
                qa_text(verdicts.get(e.call_id)),
            )
        )
    print_table((*CALL_COLUMNS, "TURNS", "STATUS", "QA"), rows, "(no recordings)")
    return 1 if scan.errors else 0


def cmd_show(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    entry, indexed = locate(ctx, args.call_id)
    record_access(ctx.engine, ctx.who, "show", [entry.call_id], detail={"json": args.json})
    qa = None if indexed is None else indexed.qa
    data: dict[str, Any] = {**entry.to_json(), "qa": None if qa is None else qa.to_json()}
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    for key in _SHOWN:
        print(f"{key + ':':<14}{data[key] if data[key] not in (None, '') else '-'}")
    failed = f" (failed: {', '.join(qa.failed_rules)})" if qa and qa.failed_rules else ""
    print(f"{'qa:':<14}{qa_text(qa) or 'not judged'}{failed}")
    print("channels:     left=caller right=bot")
    print()
    for line in (*(p.describe() for p in entry.sidecar.pauses), *(t.describe() for t in entry.sidecar.turns)):
        print(line)
    if not entry.sidecar.turns:
        print("(no transcript)")
    for alert in entry.sidecar.alerts:
        print(alert.describe())
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    filters = search_filters(args, ctx)
    if args.limit < 1:
        raise RecordingError(f"--limit {args.limit}: must be at least 1")
    result = search(ctx.engine, filters, args.limit)
    ids = [call.call_id for call in result.calls]
    record_access(ctx.engine, ctx.who, "search", ids, detail={**filters.describe(), "limit": args.limit})
    if args.json:
        json.dump([call.to_json(ctx.root) for call in result.calls], sys.stdout, ensure_ascii=False, indent=2)
        print()
    else:
        _print_calls(result.calls)
    if result.more:
        print(
            f"(more calls match: showing the newest {args.limit}; raise --limit or narrow the search)",
            file=sys.stderr,
        )
    return 0


def _print_calls(calls: Sequence[IndexedCall]) -> None:
    rows = [
        (
            c.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            c.call_id,
            c.direction,
            c.remote_masked or "-",
            c.flow or "-",
            c.outcome or "-",
            duration_text(c.duration_s),
            "held" if c.held else "",
            qa_text(c.qa),
        )
        for c in calls
    ]
    print_table((*CALL_COLUMNS, "HOLD", "QA"), rows, "(no matching calls)")
