"""``run_ivr.py recordings list|verify|show``: what an auditor runs to find and check a call."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from config.cli_options import add_common_options, settings_from_args
from config.settings import Settings
from recordings.audit import audit_archive
from recordings.catalog import Catalog, CatalogEntry
from recordings.signing import TrustedKey, load_trusted_key, public_key_path


def add_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser("recordings", help="list, verify and read call recordings")
    sub = parser.add_subparsers(dest="recordings_command", required=True, metavar="ACTION")

    listing = sub.add_parser("list", help="one line (or JSON object) per recorded call")
    add_common_options(listing)
    listing.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    listing.set_defaults(func=cmd_list)

    verify = sub.add_parser(
        "verify", help="prove recordings untouched: file hashes, signed manifests, the hash chain of each day"
    )
    add_common_options(verify)
    verify.add_argument("call_id", nargs="?", metavar="CALL_ID", help="one call (default: every call)")
    verify.add_argument("--all", action="store_true",
                        help="every call and every chain link (what no CALL_ID means)")
    verify.add_argument("--public-key", action="append", metavar="PEM", type=Path,
                        help="trusted public key, repeatable (default: the *.pub.pem next to "
                             "recordings.signing_key_file); an auditor should pass their own copy")
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
    """Exit 1 naming every call whose files, manifest, signature or chain link is broken."""
    if args.all and args.call_id:
        print("error: recordings verify: give CALL_ID or --all, not both", file=sys.stderr)
        return 2
    settings = settings_from_args(args)
    keys = _trusted_keys(args.public_key, settings)
    report = audit_archive(settings.recordings_path, keys, args.call_id)
    for call in report.calls:
        if call.skipped:
            print(f"SKIPPED {call.wav_path}: {call.skipped}")
        elif call.ok:
            print(f"OK {call.wav_path}")
        else:
            print(f"FAILED {call.wav_path}: {'; '.join(call.problems)}")
    for problem in report.other:
        print(f"FAILED {problem}")
    for chain in report.chains:
        print(f"CHAIN {chain.path}: {chain.manifests} manifests, head {chain.head}")
    checked, failures = len(report.calls), report.failures
    print(f"{checked - failures if failures <= checked else 0} of {checked} recordings verified"
          + (f", {failures} failed" if failures else ""))
    return 1 if failures else 0


def _trusted_keys(given: list[Path] | None, settings: Settings) -> dict[str, TrustedKey]:
    """The keys whose signatures count; without ``--public-key``, the service's own export."""
    paths = list(given or ())
    if not paths:
        key_file = settings.recordings_signing_key_path
        exported = public_key_path(key_file)
        paths = [exported if exported.exists() or not key_file.exists() else key_file]
        if not paths[0].exists():
            print(f"warning: no public key at {exported}: signatures cannot be checked; pass --public-key",
                  file=sys.stderr)
            return {}
    keys = {}
    for path in paths:
        key = load_trusted_key(path)
        keys[key.key_id] = key
        print(f"KEY {key.key_id} {path}")
    return keys


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
