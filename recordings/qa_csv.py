"""The CSV export of ``recordings qa --csv``: one row per judged call, safe to open in a spreadsheet.

A cell that a spreadsheet would run as a formula (CSV injection) is written with a leading
``'``; the file is created 0600, because it quotes what callers said.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from recordings.private_fs import open_private
from recordings.qa_batch import CallQa
from recordings.sidecar import iso

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")
"""A CSV cell starting with one of these is a formula to a spreadsheet: it is written with ``'``."""
CSV_HEADER = (
    "call_id",
    "started_at",
    "flow",
    "flow_version",
    "outcome",
    "rules",
    "rules_version",
    "score",
    "status",
    "failed_rules",
    "critical_failures",
    "failures",
    "not_evaluable",
    "sidecar",
    "qa_file",
)


def csv_cell(value: object) -> str:
    """Text for a CSV cell that a spreadsheet shows as text: a leading ``= + - @`` (or tab, CR,
    LF, also after spaces) would make it a formula (CSV injection), so ``'`` goes first."""
    text = "" if value is None else str(value)
    if text.lstrip(" ").startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def csv_rows(calls: Iterable[CallQa]) -> list[list[str]]:
    """One row per judged call (see :data:`CSV_HEADER`), every cell escaped by :func:`csv_cell`."""
    rows: list[list[str]] = [list(CSV_HEADER)]
    for call in calls:
        result = call.result
        if result is None:
            continue
        failures = result.failures
        rows.append(
            [
                csv_cell(cell)
                for cell in (
                    result.call_id,
                    iso(call.sidecar.started_at),
                    result.flow_name,
                    result.flow_version,
                    result.outcome,
                    result.rules_name,
                    result.rules_version,
                    "" if result.score is None else f"{result.score:g}",
                    result.status,
                    " ".join(r.rule_id for r in failures),
                    " ".join(r.rule_id for r in failures if r.critical),
                    " | ".join(f"{r.rule_id} @ {r.at or '-'}: {r.detail}" for r in failures),
                    " ".join(r.rule_id for r in result.not_evaluable),
                    str(call.sidecar_path),
                    "" if call.qa_path is None else str(call.qa_path),
                )
            ]
        )
    return rows


def write_csv(calls: Iterable[CallQa], out: IO[str]) -> int:
    """Write the CSV export to ``out``; returns the number of calls written."""
    rows = csv_rows(calls)
    csv.writer(out, lineterminator="\n").writerows(rows)
    return len(rows) - 1


def write_csv_file(calls: Iterable[CallQa], path: Path) -> int:
    """The CSV export as a new 0600 file (it quotes transcripts: personal data)."""
    with open(
        open_private(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "w", encoding="utf-8", newline=""
    ) as out:
        return write_csv(calls, out)
