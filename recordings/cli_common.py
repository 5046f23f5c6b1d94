"""What the ``recordings`` commands share: the index opened for a command (and who is asking, for
the access log), times as an auditor types them, the search options turned into
:class:`~recordings.call_search.SearchFilters`, finding one call, and printing a table.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from config.cli_options import settings_from_args
from config.settings import Settings
from recordings.access_log import Accessor, current_accessor
from recordings.call_index import index_pending
from recordings.call_search import IndexedCall, SearchFilters, find_call
from recordings.catalog import Catalog, CatalogEntry
from recordings.database import open_index_database
from recordings.errors import RecordingError
from recordings.numbers import load_number_key, number_key_path
from recordings.qa_file import QaSummary

FILTER_OPTIONS = (
    "number",
    "date_from",
    "date_to",
    "outcome",
    "flow",
    "campaign",
    "says",
    "speaker",
    "qa",
    "qa_rule",
)
"""The ``dest`` of every search filter option (``recordings search`` and ``export --search``)."""
_RELATIVE = re.compile(r"^(\d{1,6})\s*([mhdw])$")
_UNIT_S = {"m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


@dataclass(frozen=True)
class CommandContext:
    settings: Settings
    root: Path
    engine: Engine
    who: Accessor


def open_context(args: argparse.Namespace) -> CommandContext:
    """Settings, the database (migrated), who is asking; spooled calls are indexed first."""
    settings = settings_from_args(args)
    who = current_accessor(getattr(args, "as_name", None))
    engine = open_index_database(settings.database_url, settings.database)
    root = settings.recordings_path
    report = index_pending(root, engine)
    for problem in report.problems:
        print(f"warning: {problem}", file=sys.stderr)
    return CommandContext(settings, root, engine, who)


def parse_when(text: str, flag: str, *, end_of_day: bool = False, now: datetime | None = None) -> datetime:
    """``2024-05-01`` (UTC midnight; with ``end_of_day`` the next midnight), ``today``,
    ``yesterday`` (UTC days, likewise), an ISO time (UTC unless it has an offset), or
    ``24h``/``7d``/``2w``/``30m`` ago. Anything else is refused naming ``flag``."""
    raw = text.strip()
    value = raw.lower()
    moment = now or datetime.now(UTC)
    relative = _RELATIVE.match(value)
    if relative:
        return moment - timedelta(seconds=int(relative.group(1)) * _UNIT_S[relative.group(2)])
    day: datetime | None = None
    try:
        if value in ("today", "yesterday"):
            day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            day -= timedelta(days=1 if value == "yesterday" else 0)
        elif len(value) == 10:
            day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise RecordingError(
            f"{flag} {text!r}: not a date or time; use YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS][+HH:MM]"
            " (UTC without an offset), today, yesterday or 24h, 7d"
        ) from None
    if day is not None:
        return day + timedelta(days=1) if end_of_day else day
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment + timedelta(microseconds=1) if end_of_day else moment


def search_filters(args: argparse.Namespace, ctx: CommandContext) -> SearchFilters:
    """The search filters given on the command line, checked; a clear error for a bad one."""
    digests: tuple[str, ...] = ()
    if args.number is not None:
        key = load_number_key(number_key_path(ctx.settings))
        digests = key.search_digests(args.number, ctx.settings.directory.region)
    start = parse_when(args.date_from, "--from") if args.date_from else None
    before = parse_when(args.date_to, "--to", end_of_day=True) if args.date_to else None
    if start is not None and before is not None and before <= start:
        raise RecordingError(f"--from {args.date_from} is after --to {args.date_to}: no call can match")
    for flag in ("outcome", "flow", "campaign"):
        value = getattr(args, flag)
        if value is not None and not value.strip():
            raise RecordingError(f"--{flag}: give a name (it is matched exactly)")
    filters = SearchFilters(
        number_digests=digests,
        started_from=start,
        started_before=before,
        outcome=args.outcome,
        flow=args.flow,
        campaign=args.campaign,
        says=args.says,
        speaker=args.speaker,
        qa=args.qa,
        qa_rule=args.qa_rule,
    )
    filters.check()
    return filters


def locate(ctx: CommandContext, call_id: str) -> tuple[CatalogEntry, IndexedCall | None]:
    """A call's recording (through the index, fast; else by scanning the sidecars) and its index
    row, if it has one."""
    indexed = find_call(ctx.engine, call_id)
    if indexed is not None:
        path = ctx.root / indexed.sidecar_path
        if path.exists():
            return Catalog(ctx.root).entry(path), indexed
    return Catalog(ctx.root).find(call_id), indexed


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> None:
    table = [tuple(header), *[tuple(row) for row in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if not rows:
        print(empty)


def duration_text(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}s"


def qa_text(summary: QaSummary | None) -> str:
    """The QA cell of a table: ``fail 52.6``, empty while the call is not judged."""
    return "" if summary is None else summary.describe()
