"""Reading a CSV call list and writing its rejects file.

A call list is UTF-8 (a BOM is fine) with a header row. Rows are numbered by the file line
they start on (the header is line 1), so ``calls.csv:42`` points where an editor shows it.
Structural problems (not UTF-8, no header, a row with the wrong number of fields) raise
:class:`ImportFileError` before anything is stored: a ragged row usually means an unquoted
comma that shifted every later column, so importing "the good rows" would store garbage.
A cell holding a control character (NUL, any other C0 but tab, DEL, C1) is rejected by row
and field: it would be spoken by TTS, break exports and terminals, or end a C string early.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dialer.db import DialerDataError

MAX_COLUMN_NAME = 100
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_CONTROL_NAMES = {0: "NUL", 10: "LF (line feed)", 13: "CR (carriage return)", 27: "ESC", 127: "DEL"}


def control_character(value: str) -> str:
    """Why ``value`` cannot be stored (its first control character), or ``""`` when it can."""
    match = _CONTROL.search(value)
    if match is None:
        return ""
    code = ord(match.group())
    name = f"U+{code:04X}" + (f" {_CONTROL_NAMES[code]}" if code in _CONTROL_NAMES else "")
    return f"contains the control character {name} at character {match.start() + 1} (only tab is allowed)"


def _short(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def printable(value: str) -> str:
    """``value`` with control characters shown as ``\\xNN``, for the rejects file."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", value)


class ImportFileError(DialerDataError):
    """The call list cannot be read as a whole (encoding, header, ragged rows); nothing stored."""


@dataclass(frozen=True)
class Reject:
    """One problem with one row; a row may have several."""

    row: int
    field: str
    reason: str

    def format(self, file: str | Path) -> str:
        return f"{file}:{self.row}: {self.field}: {self.reason}"


def read_rows(path: Path, column_map: Mapping[str, str]) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The (renamed) header and ``(line, values)`` per data row; structural errors raise."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="", errors="strict")
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot open call list: {exc.strerror}") from exc
    reader = csv.reader(handle, strict=True)
    try:
        header = next(reader, None)
    except (UnicodeDecodeError, csv.Error) as exc:
        handle.close()
        raise _file_error(path, 1, exc) from exc
    if not header or not any(h.strip() for h in header):
        handle.close()
        raise ImportFileError(f"{path}:1: no header row (expected columns like phone,first_name,...)")
    names = [column_map.get(h.strip(), h.strip()) for h in header]
    if "phone" not in names:
        handle.close()
        shown = ", ".join(_short(h.strip()) for h in header[:6])
        raise ImportFileError(
            f"{path}:1: header has no 'phone' column (found: {shown}); use --map phone=COLUMN"
        )
    for index, name in enumerate(names, 1):
        problem = control_character(name) or (
            f"name is {len(name):,} characters long (at most {MAX_COLUMN_NAME})"
            if len(name) > MAX_COLUMN_NAME
            else ""
        )
        if problem:
            handle.close()
            raise ImportFileError(f"{path}:1: header: column {index} {problem}")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes or "" in names:
        handle.close()
        what = f"column {_short(dupes[0])!r} appears twice" if dupes else "a column has no name"
        raise ImportFileError(f"{path}:1: header: {what}")

    def rows() -> Iterator[tuple[int, list[str]]]:
        with handle:
            line = reader.line_num + 1
            try:
                for values in reader:
                    if len(values) != len(names):
                        if not values or (len(values) == 1 and not values[0].strip()):
                            line = reader.line_num + 1
                            continue  # a blank line
                        raise ImportFileError(
                            f"{path}:{line}: row has {len(values)} fields but the header has {len(names)}"
                            " (an unquoted comma or a broken export?); nothing was imported"
                        )
                    yield line, values
                    line = reader.line_num + 1
            except (UnicodeDecodeError, csv.Error) as exc:
                raise _file_error(path, line, exc) from exc

    return names, rows()


def _file_error(path: Path, line: int, exc: Exception) -> ImportFileError:
    if isinstance(exc, UnicodeDecodeError):
        return ImportFileError(
            f"{path}: not UTF-8 text (byte {exc.start} of a read block); save the file as UTF-8 CSV;"
            " nothing was imported"
        )
    return ImportFileError(f"{path}:{line}: malformed CSV: {exc}; nothing was imported")


def rejects_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}.rejects.csv")


def write_rejects(
    path: Path,
    header: Sequence[str],
    rejects: Sequence[Reject],
    values: Mapping[int, Sequence[str]],
    fallback_dir: Path | None = None,
) -> Path | None:
    """Write ``row,field,reason`` and the row's own columns, one line per reject.

    The file goes next to the input, or under ``fallback_dir`` when that directory is not
    writable; a stale rejects file from an earlier import is removed when nothing is rejected.
    """
    target = rejects_path(path)
    if not rejects:
        target.unlink(missing_ok=True)
        return None
    try:
        return _write_rejects(target, header, rejects, values)
    except OSError as exc:
        if fallback_dir is None:
            raise DialerDataError(f"{target}: cannot write rejects file: {exc.strerror}") from exc
    target = fallback_dir / target.name
    try:
        return _write_rejects(target, header, rejects, values)
    except OSError as exc:
        raise DialerDataError(f"{target}: cannot write rejects file: {exc.strerror}") from exc


def _write_rejects(
    target: Path, header: Sequence[str], rejects: Sequence[Reject], values: Mapping[int, Sequence[str]]
) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["row", "field", "reason", *header])
        writer.writerows([r.row, r.field, r.reason, *map(printable, values.get(r.row, ()))] for r in rejects)
    return target
