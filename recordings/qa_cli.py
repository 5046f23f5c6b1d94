"""``run_ivr.py recordings qa``: full-volume QA of recorded calls against per-flow rules files.

``recordings.cli`` registers it with :func:`add_qa_commands` on its ``recordings`` sub-commands.
Exit code: 0 when no judged call failed, 1 when one did (or a sidecar could not be read),
2 when the rules are invalid or an option is wrong (problems as ``FILE:LINE:COL: message``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from config.cli_options import add_common_options, settings_from_args
from config.settings import Settings
from media.asr.base import AsrEngine
from media.asr.factory import create_asr_engine
from media.asr.remote import RemoteAsrEngine
from media.speech_pool import SpeechPool, connect, default_workers
from recordings.call_index import refresh_index
from recordings.cli_common import parse_when
from recordings.errors import RecordingError
from recordings.qa_batch import DEFAULT_RULES_DIR, BatchReport, CallQa, run_batch
from recordings.qa_csv import write_csv, write_csv_file
from recordings.qa_file import qa_document
from recordings.qa_rules import QaRulesError, RuleCatalog, RuleSet
from recordings.qa_rules_loader import load_catalog, load_rules
from recordings.retranscribe import Retranscriber


def add_qa_commands(subparsers: Any) -> None:
    """Add ``qa`` to the ``recordings`` sub-commands (``subparsers`` from ``add_subparsers``)."""
    qa = subparsers.add_parser(
        "qa",
        help="judge recorded calls against QA rules (score, failing rule and its timestamps); "
        "writes <call>.qa.json next to each sidecar",
        description="Judge recorded calls against the QA rules of their flow (docs/qa.md).",
    )
    add_common_options(qa)
    qa.add_argument("call_id", nargs="*", metavar="CALL_ID", help="only these calls (default: every call)")
    qa.add_argument(
        "--since",
        metavar="WHEN",
        help="calls started at or after WHEN: 2024-05-01, 2024-05-01T09:00Z, 24h, 7d",
    )
    qa.add_argument("--until", metavar="WHEN", help="calls started before WHEN (same forms as --since)")
    qa.add_argument(
        "--rules",
        action="append",
        type=Path,
        metavar="FILE",
        help="a QA rules file, or a folder of them, repeatable (default: the flows' own rules in "
        f"{_shown(DEFAULT_RULES_DIR)}/); a call is judged by the file that names its campaign or flow",
    )
    qa.add_argument("--csv", metavar="OUT", help="also export one row per judged call to OUT (- for stdout)")
    qa.add_argument("--json", action="store_true", help="print the results as a JSON array instead of lines")
    qa.add_argument("--no-write", action="store_true", help="judge only: do not write <call>.qa.json files")
    qa.add_argument(
        "--retranscribe",
        action="store_true",
        help="decode the caller's track again from the WAV and add the speech the live transcript "
        "lacks (e.g. talk over a prompt that may not be barged into); a track with no transcript "
        "is always re-transcribed. Runs on the speech pool at lower priority than live calls",
    )
    qa.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    qa.add_argument("--check-rules", action="store_true", help="only validate the rules files and exit")
    qa.set_defaults(func=cmd_qa)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _rules(paths: list[Path] | None) -> RuleSet | RuleCatalog:
    if paths and len(paths) == 1 and not paths[0].is_dir():
        return load_rules(paths[0])
    return load_catalog(paths or [DEFAULT_RULES_DIR])


def cmd_qa(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    if args.json and args.csv == "-":
        print("error: recordings qa: --json and --csv - both write to stdout: pick one", file=sys.stderr)
        return 2
    try:
        since = parse_when(args.since, "--since", now=now) if args.since else None
        until = parse_when(args.until, "--until", now=now) if args.until else None
    except RecordingError as exc:
        print(f"error: recordings qa: {exc}", file=sys.stderr)
        return 2
    try:
        rules = _rules(args.rules)
    except QaRulesError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stdout if args.check_rules else sys.stderr)
        return 1 if args.check_rules else 2
    if args.check_rules:
        return 0
    settings = settings_from_args(args)
    speech = _BatchSpeech(settings)
    try:
        report = run_batch(
            settings.recordings_path,
            rules,
            since=since,
            until=until,
            call_ids=args.call_id,
            write=not args.no_write,
            show_progress=not args.no_progress and not args.json and sys.stderr.isatty(),
            now=now,
            transcriber=Retranscriber(speech.engine, settings.media),
            retranscribe=args.retranscribe,
        )
    finally:
        speech.close()
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    _index_verdicts(settings, report)
    if args.json:
        print(json.dumps([_json(call, now) for call in report.calls], ensure_ascii=False, indent=2))
    else:
        _print_lines(report, sys.stderr if args.csv == "-" else sys.stdout)
    if args.csv:
        try:
            _export(report, args.csv)
        except (OSError, RecordingError) as exc:
            print(f"error: recordings qa: cannot write {args.csv}: {exc}", file=sys.stderr)
            return 2
    missing = [
        name
        for name in args.call_id
        if name not in {c.sidecar.call_id for c in (*report.calls, *report.skipped)}
    ]
    for name in missing:
        print(f"error: no recording of call {name!r} under {settings.recordings_path}", file=sys.stderr)
    return 1 if report.count("fail") or report.errors or missing else 0


class _BatchSpeech:
    """The speech pool's low-priority lane, made on first use: the running pool's
    (``media.speech_service_dir``), else a pool started for this batch, else (``speech_workers``
    0) a decoder in this process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool: SpeechPool | None = None
        self.remote: RemoteAsrEngine | None = None

    def engine(self) -> AsrEngine:
        media = self.settings.media
        if media.speech_service_dir:
            self.remote = connect(media.speech_service_dir, offline=True)
            return self.remote
        if media.speech_workers == 0:
            return create_asr_engine(media)
        workers = default_workers() if media.speech_workers < 0 else media.speech_workers
        pool = SpeechPool(media, workers, "warning")
        try:
            pool.start()
        except BaseException:
            pool.stop()
            raise
        self.pool, self.remote = pool, pool.offline_engine()
        return self.remote

    def close(self) -> None:
        if self.remote is not None:
            self.remote.close()
        if self.pool is not None:
            self.pool.stop()


def _index_verdicts(settings: Settings, report: BatchReport) -> None:
    """The written verdicts into the call index (``recordings search --qa``); a database that is
    down leaves the calls spooled, and the next ``recordings`` command indexes them."""
    if report.written:
        problem = refresh_index(
            settings.recordings_path, report.written, settings.database_url, settings.database
        )
        if problem is not None:
            print(
                f"warning: the call index does not show these QA results yet ({problem}); the next"
                " recordings command adds them",
                file=sys.stderr,
            )


def _json(call: CallQa, now: datetime) -> dict[str, Any]:
    assert call.result is not None
    document = qa_document(call.result, call.sidecar_path, call.sidecar_sha256, now)
    document["qa_file"] = None if call.qa_path is None else str(call.qa_path)
    return document


def _print_lines(report: BatchReport, out: TextIO) -> None:
    for call in report.calls:
        result = call.result
        assert result is not None
        score = "-" if result.score is None else f"{result.score:g}"
        print(
            f"{result.status.upper()} {result.call_id} score {score} ({result.rules_name}, "
            f"outcome {result.outcome or '-'})",
            file=out,
        )
        for rule in result.failures:
            critical = " [critical]" if rule.critical else ""
            print(f"  FAILED {rule.rule_id}{critical} @ {rule.at or '-'}: {rule.detail}", file=out)
        for rule in result.not_evaluable:
            print(f"  NOT EVALUABLE {rule.rule_id}: {rule.detail}", file=out)
        for track, added in call.retranscribed.items():
            print(f"  RE-TRANSCRIBED {track} track: {added} turn(s) added from the recording", file=out)
    reasons = Counter(call.skipped for call in report.skipped)
    skipped = "; ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
    summary = (
        f"{len(report.calls)} calls judged: {report.count('pass')} passed, {report.count('fail')} failed, "
        f"{report.count('incomplete')} incomplete"
    )
    print(summary + (f"; skipped: {skipped}" if skipped else ""), file=out)


def _export(report: BatchReport, target: str) -> None:
    if target == "-":
        write_csv(report.calls, sys.stdout)
        return
    count = write_csv_file(report.calls, Path(target))
    print(f"CSV {target}: {count} calls", file=sys.stderr)
