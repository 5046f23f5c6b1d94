"""``run_ivr.py recordings list|verify|show``: what an auditor runs to find and check a call."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from config.cli_options import add_common_options, settings_from_args
from recordings.catalog import Catalog, CatalogEntry


def add_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser("recordings", help="list, verify and read call recordings")
    sub = parser.add_subparsers(dest="recordings_command", required=True, metavar="ACTION")

    listing = sub.add_parser("list", help="one line (or JSON object) per recorded call")
    add_common_options(listing)
    listing.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    listing.set_defaults(func=cmd_list)

    verify = sub.add_parser("verify", help="recompute SHA-256 to prove recordings are untouched")
    add_common_options(verify)
    verify.add_argument("call_id", nargs="?", metavar="CALL_ID", help="one call (default: every call)")
    verify.set_defaults(func=cmd_verify)

    show = sub.add_parser("show", help="a call's details and per-speaker transcript")
    add_common_options(show)
    show.add_argument("call_id", metavar="CALL_ID")
    show.add_argument("--json", action="store_true", help="print the call as a JSON object")
    show.set_defaults(func=cmd_show)


def _catalog(args: argparse.Namespace) -> Catalog:
    return Catalog(settings_from_args(args).recordings_path)


def cmd_list(args: argparse.Namespace) -> int:
    """Exit 1 (after listing the rest) if any sidecar could not be read."""
    scan = _catalog(args).scan()
    for error in scan.errors:
        print(f"error: {error}", file=sys.stderr)
    if args.json:
        json.dump([entry.to_json() for entry in scan.entries], sys.stdout, ensure_ascii=False, indent=2)
        print()
    else:
        _print_table(scan.entries)
    return 1 if scan.errors else 0


def _print_table(entries: tuple[CatalogEntry, ...]) -> None:
    header = ("STARTED (UTC)", "CALL ID", "DIR", "DURATION", "TURNS", "STATUS", "FLOW")
    rows = [header]
    for e in entries:
        duration = e.duration_s
        rows.append((
            e.sidecar.started_at.strftime("%Y-%m-%d %H:%M:%S"), e.call_id, e.sidecar.direction,
            "-" if duration is None else f"{duration:.1f}s", str(len(e.sidecar.turns)), e.status,
            e.sidecar.flow_name or "-",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if not entries:
        print("(no recordings)")


def cmd_verify(args: argparse.Namespace) -> int:
    """Exit 1 naming every file that does not match its sealed hash (or cannot be checked)."""
    catalog = _catalog(args)
    failures = 0
    if args.call_id:
        entries: tuple[CatalogEntry, ...] = (catalog.find(args.call_id),)
    else:
        scan = catalog.scan()
        entries = scan.entries
        for error in scan.errors:
            print(f"FAILED {error.path}: {error}")
            failures += 1
    for entry in entries:
        result = catalog.verify(entry)
        if result.skipped:
            print(f"SKIPPED {entry.wav_path}: {result.problem}")
        elif result.ok:
            print(f"OK {entry.wav_path}")
        else:
            print(f"FAILED {entry.wav_path}: {result.problem}")
            failures += 1
    checked = len(entries)
    print(f"{checked - failures if failures <= checked else 0} of {checked} recordings verified"
          + (f", {failures} failed" if failures else ""))
    return 1 if failures else 0


def cmd_show(args: argparse.Namespace) -> int:
    entry = _catalog(args).find(args.call_id)
    if args.json:
        print(json.dumps(entry.to_json(), ensure_ascii=False, indent=2))
        return 0
    data = entry.to_json()
    for key in ("call_id", "status", "direction", "from", "to", "started_at", "ended_at", "duration_s",
                "flow", "flow_version", "path", "sha256"):
        print(f"{key + ':':<14}{data[key] if data[key] is not None else '-'}")
    print("channels:     left=caller right=bot")
    for pause in entry.sidecar.pauses:
        end = "-" if pause.end_s is None else f"{pause.end_s:.2f}"
        print(f"paused:       {pause.start_s:.2f}-{end}s {pause.reason}".rstrip())
    print()
    for turn in entry.sidecar.turns:
        conf = "" if turn.confidence is None else f" ({turn.confidence:.2f})"
        print(f"[{turn.start_s:7.2f} - {turn.end_s:7.2f}] {turn.speaker:>6}: {turn.text}{conf}")
    if not entry.sidecar.turns:
        print("(no transcript)")
    return 0
