"""``recordings verify`` (prove the archive untouched: file hashes, signed manifests, the hash
chain of each day) and ``export`` (a zip for a regulator, checked against the seals first).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from config.cli_options import settings_from_args
from config.settings import Settings
from recordings.access_log import record_access
from recordings.audit import audit_archive
from recordings.bundle import BundleCall, check_call, export_bundle
from recordings.call_search import search
from recordings.catalog import Catalog
from recordings.cli_common import FILTER_OPTIONS, locate, open_context, search_filters
from recordings.errors import RecordingError
from recordings.signing import TrustedKey, load_trusted_key, public_key_path


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
        elif call.ok and call.purged:
            print(f"PURGED {call.wav_path}: {call.purged}")
        elif call.ok:
            print(f"OK {call.wav_path}")
        else:
            print(f"FAILED {call.wav_path}: {'; '.join(call.problems)}")
    for problem in report.other:
        print(f"FAILED {problem}")
    for chain in report.chains:
        print(f"CHAIN {chain.path}: {chain.manifests} manifests, head {chain.head}")
    purged, failures = report.purged, report.failures
    checked = len(report.calls) - purged
    print(
        f"{checked - failures if failures <= checked else 0} of {checked} recordings verified"
        + (f", {failures} failed" if failures else "")
        + (f", {purged} purged (tombstoned)" if purged else "")
    )
    return 1 if failures else 0


def _trusted_keys(given: list[Path] | None, settings: Settings) -> dict[str, TrustedKey]:
    """The keys whose signatures count; without ``--public-key``, the service's own export."""
    paths = list(given or ())
    if not paths:
        own = _own_public_key(settings)
        if own is None:
            exported = public_key_path(settings.recordings_signing_key_path)
            print(
                f"warning: no public key at {exported}: signatures cannot be checked; pass --public-key",
                file=sys.stderr,
            )
            return {}
        paths = [own]
    keys = {}
    for path in paths:
        key = load_trusted_key(path)
        keys[key.key_id] = key
        print(f"KEY {key.key_id} {path}")
    return keys


def _own_public_key(settings: Settings) -> Path | None:
    """The file holding the public half of the key that signs the manifests: its export next to
    ``recordings.signing_key_file``, else the key file itself; ``None`` if nothing was sealed."""
    key_file = settings.recordings_signing_key_path
    exported = public_key_path(key_file)
    return next((path for path in (exported, key_file) if path.exists()), None)


def cmd_export(args: argparse.Namespace) -> int:
    filtered = any(getattr(args, name) is not None for name in FILTER_OPTIONS)
    if args.call and (args.search or filtered):
        raise RecordingError("recordings export: give --call CALL_ID, or --search with filters, not both")
    if not args.call and not args.search:
        raise RecordingError("recordings export: give --call CALL_ID (repeatable) or --search with filters")
    if args.search and not filtered:
        raise RecordingError(
            "recordings export --search: give at least one filter (--number, --from, --says...)"
        )
    if args.out.suffix.lower() != ".zip":
        raise RecordingError(f"--out {args.out}: the bundle is a zip; name it FILE.zip")
    if args.out.exists():
        raise RecordingError(f"--out {args.out}: already exists; choose another name")
    ctx = open_context(args)
    key = _service_key(ctx.settings)
    detail: dict[str, Any] = {"out": str(args.out.resolve())}
    if args.call:
        entries = [locate(ctx, call_id)[0] for call_id in dict.fromkeys(args.call)]
    else:
        filters = search_filters(args, ctx)
        result = search(ctx.engine, filters, max(1, args.limit))
        if result.more:
            raise RecordingError(f"more than {args.limit} calls match: narrow the search or raise --limit")
        if not result.calls:
            raise RecordingError("no call matches: nothing to export")
        oldest_first = sorted(result.calls, key=lambda call: (call.started_at, call.call_id))
        entries = [Catalog(ctx.root).entry(ctx.root / call.sidecar_path) for call in oldest_first]
        detail.update(filters.describe())
    calls: list[BundleCall] = [check_call(entry.sidecar_path, key) for entry in entries]
    ids = [call.call_id for call in calls]
    report = export_bundle(
        calls,
        key,
        args.out,
        exported_by=ctx.who.actor,
        before_commit=lambda: record_access(ctx.engine, ctx.who, "export", ids, detail=detail),
    )
    print(
        f"EXPORTED {len(report.calls)} call(s) to {report.path} ({report.bytes:,} bytes), key {report.key_id}"
    )
    print("check it: unzip it, then sh verify.sh (see VERIFY.txt)")
    return 0


def _service_key(settings: Settings) -> TrustedKey:
    """The public half of the key that signs the manifests (what the bundle ships)."""
    own = _own_public_key(settings)
    if own is None:
        raise RecordingError(
            f"no signing key at {settings.recordings_signing_key_path}: nothing was ever sealed here"
        )
    return load_trusted_key(own)
