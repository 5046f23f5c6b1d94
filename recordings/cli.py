"""``run_ivr.py recordings ...``: what an auditor runs to find, read, check, keep and hand over calls.

This module is the parser; each command lives with its kind:

- :mod:`recordings.cli_search`: ``list``, ``show`` (the calls on disk, one call's transcript),
  ``search`` (the call index: by number, date, outcome, flow, campaign, QA verdict, words said);
- :mod:`recordings.cli_proof`: ``verify`` (prove recordings untouched: file hashes, signed
  manifests, hash chains) and ``export`` (a zip a regulator can check with sha256sum and openssl);
- :mod:`recordings.cli_custody`: ``hold``/``release``/``purge`` (legal hold and retention),
  ``audit`` (who accessed which calls), ``reindex`` (rebuild the call index from the files);
- :mod:`recordings.qa_cli`: ``qa`` (judge calls against their flow's QA rules).

Every command that shows, exports, searches or deletes calls appends a row to the access log
(``--as NAME`` names the person; default: the OS user) before it does so, and refuses if it
cannot. ``verify`` reads no content and needs no database.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

from config.cli_options import add_common_options
from recordings.call_search import QA_FILTERS, SPEAKERS
from recordings.cli_custody import cmd_audit, cmd_hold, cmd_purge, cmd_reindex, cmd_release
from recordings.cli_proof import cmd_export, cmd_verify
from recordings.cli_search import cmd_list, cmd_search, cmd_show

SEARCH_LIMIT = 50
EXPORT_LIMIT = 10_000


def add_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "recordings", help="find, read, verify, export, hold and purge call recordings; the access log"
    )
    sub = parser.add_subparsers(dest="recordings_command", required=True, metavar="ACTION")

    listing = sub.add_parser("list", help="one line (or JSON object) per recorded call on disk")
    _common(listing)
    listing.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    listing.set_defaults(func=cmd_list)

    verify = sub.add_parser(
        "verify", help="prove recordings untouched: file hashes, signed manifests, the hash chain of each day"
    )
    add_common_options(verify)
    verify.add_argument("call_id", nargs="?", metavar="CALL_ID", help="one call (default: every call)")
    verify.add_argument(
        "--all", action="store_true", help="every call and every chain link (what no CALL_ID means)"
    )
    verify.add_argument(
        "--public-key",
        action="append",
        metavar="PEM",
        type=Path,
        help="trusted public key, repeatable (default: the *.pub.pem next to "
        "recordings.signing_key_file); an auditor should pass their own copy",
    )
    verify.set_defaults(func=cmd_verify)

    show = sub.add_parser("show", help="a call's details and per-speaker transcript")
    _common(show)
    show.add_argument("call_id", metavar="CALL_ID")
    show.add_argument("--json", action="store_true", help="print the call as a JSON object")
    show.set_defaults(func=cmd_show)

    found = sub.add_parser(
        "search",
        help="find calls in the call index by number, date, outcome, flow, campaign or words said",
        description="Every filter given must match; newest calls first. Dates are UTC.",
    )
    _common(found)
    _search_filters(found)
    found.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    found.add_argument(
        "--limit", type=int, default=SEARCH_LIMIT, help=f"at most this many calls ({SEARCH_LIMIT})"
    )
    found.set_defaults(func=cmd_search)

    rebuild = sub.add_parser(
        "reindex", help="rebuild the call index from the sidecars on disk (idempotent; adds calls it missed)"
    )
    _common(rebuild)
    rebuild.set_defaults(func=cmd_reindex)

    audit = sub.add_parser(
        "audit", help="the access log: who showed, searched, exported, held or purged calls"
    )
    _common(audit)
    audit.add_argument("--since", metavar="WHEN", help="from WHEN: 2024-05-01, 2024-05-01T09:00Z, 24h, 7d")
    audit.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    audit.add_argument("--limit", type=int, default=0, help="only the newest N entries (default: all)")
    audit.set_defaults(func=cmd_audit)

    hold = sub.add_parser("hold", help="put a call under legal hold: purge keeps it until it is released")
    _common(hold)
    hold.add_argument("call_id", metavar="CALL_ID")
    hold.add_argument("--reason", required=True, help="why (case number, request): kept with the hold")
    hold.set_defaults(func=cmd_hold)

    release = sub.add_parser("release", help="lift a call's legal hold (its retention applies again)")
    _common(release)
    release.add_argument("call_id", metavar="CALL_ID")
    release.add_argument("--reason", default="", help="why the hold ends (optional)")
    release.set_defaults(func=cmd_release)

    purge = sub.add_parser(
        "purge",
        help="delete calls past their retention (recordings.retention_days), except held ones;"
        " each deletion is a signed tombstone in the hash chain",
    )
    _common(purge)
    purge.add_argument("--dry-run", action="store_true", help="list what is due, delete nothing")
    purge.set_defaults(func=cmd_purge)

    export = sub.add_parser(
        "export",
        help="a zip for a regulator: WAVs, transcripts, signed manifests, the public key, VERIFY.txt",
    )
    _common(export)
    export.add_argument("--call", action="append", metavar="CALL_ID", help="a call to export, repeatable")
    export.add_argument("--search", action="store_true", help="export the calls the search filters find")
    _search_filters(export)
    export.add_argument(
        "--limit", type=int, default=EXPORT_LIMIT, help=f"refuse if more calls match ({EXPORT_LIMIT})"
    )
    export.add_argument("--out", required=True, type=Path, metavar="FILE.zip", help="the bundle to write")
    export.set_defaults(func=cmd_export)

    _add_qa_commands(sub)


def _add_qa_commands(sub: Any) -> None:
    """``recordings qa`` (:mod:`recordings.qa_cli`); a broken QA module must not take the auditor's
    commands down with it, so it is loaded here and reported, not fatal, if it cannot be."""
    try:
        module = importlib.import_module("recordings.qa_cli")
    except ImportError as exc:
        print(f"warning: recordings qa is unavailable: {exc}", file=sys.stderr)
        return
    module.add_qa_commands(sub)


def _common(parser: argparse.ArgumentParser) -> None:
    add_common_options(parser)
    parser.add_argument(
        "--as",
        dest="as_name",
        metavar="NAME",
        help="who is asking, for the access log (default: the OS user)",
    )


def _search_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--number", metavar="NUMBER", help="either party's number, any format (+15550100123)")
    parser.add_argument(
        "--from",
        dest="date_from",
        metavar="WHEN",
        help="started at or after (2024-05-01[T09:00], yesterday, 7d)",
    )
    parser.add_argument(
        "--to", dest="date_to", metavar="WHEN", help="started on or before (a date: that whole day)"
    )
    parser.add_argument("--outcome", help="the flow's outcome, exactly")
    parser.add_argument("--flow", help="the flow's name, exactly")
    parser.add_argument("--campaign", help="the campaign's name, exactly")
    parser.add_argument("--says", metavar="WORDS", help="words said in the call, in this order (stemmed)")
    parser.add_argument("--speaker", choices=SPEAKERS, help="only words said by this speaker (with --says)")
    parser.add_argument(
        "--qa", choices=QA_FILTERS, help="the QA verdict of `recordings qa` (none: not judged yet)"
    )
    parser.add_argument("--qa-rule", metavar="RULE_ID", help="a QA rule that failed on the call (its id)")
