"""YAML that remembers where every key and value came from, for ``FILE:LINE:COL`` messages.

Mappings load as :class:`MarkedDict` and sequences as :class:`MarkedList`: plain ``dict`` and
``list`` subclasses that also carry the (line, column) of each key and value (1-based).

A flow file is written by people, so it is read defensively: the file size, every number
and every text are bounded (a pasted blob or a 100,000-digit version is a located problem,
not a traceback or gigabytes of memory), and an empty, null-only or non-mapping document
is a problem too.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import yaml

from flows.errors import Problem

Pos = tuple[int, int]

MAX_FILE_BYTES = 1_000_000
"""The largest flow (or test) file read; the shipped flows are under 10 kB."""
MAX_TEXT_CHARS = 10_000
"""The longest text (prompt, phrase, key) in a file: about ten minutes of speech."""
MAX_NUMBER_CHARS = 40
"""The longest number literal; longer ones are typos or pasted data (and Python refuses
to convert integers of more than 4,300 digits)."""

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class MarkedDict(dict[str, Any]):
    """A mapping plus ``pos`` (its own position), ``key_pos`` and ``value_pos`` per key."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pos: Pos = (1, 1)
        self.key_pos: dict[str, Pos] = {}
        self.value_pos: dict[str, Pos] = {}

    def where_key(self, key: str) -> Pos:
        return self.key_pos.get(key, self.pos)

    def where_value(self, key: str) -> Pos:
        return self.value_pos.get(key, self.where_key(key))


class MarkedList(list[Any]):
    """A sequence plus ``pos`` and ``item_pos`` per index."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pos: Pos = (1, 1)
        self.item_pos: list[Pos] = []

    def where(self, index: int) -> Pos:
        return self.item_pos[index] if 0 <= index < len(self.item_pos) else self.pos


def _mark(node: yaml.Node) -> Pos:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


class _MarkedLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe loading, keeping positions; duplicate keys are collected instead of silently lost."""

    duplicates: list[tuple[str, Pos]]
    oversized: list[tuple[str, Pos]]

    def construct_marked_mapping(self, node: yaml.MappingNode) -> MarkedDict:
        result = MarkedDict()
        result.pos = _mark(node)
        self.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            name = str(key) if not isinstance(key, str) else key
            if name in result:
                self.duplicates.append((name, _mark(key_node)))
            result[name] = self.construct_object(value_node, deep=True)
            result.key_pos[name] = _mark(key_node)
            result.value_pos[name] = _mark(value_node)
        return result

    def construct_marked_sequence(self, node: yaml.SequenceNode) -> MarkedList:
        result = MarkedList(self.construct_object(child, deep=True) for child in node.value)
        result.pos = _mark(node)
        result.item_pos = [_mark(child) for child in node.value]
        return result

    def construct_bounded_int(self, node: yaml.ScalarNode) -> Any:
        if self._too_long(node, MAX_NUMBER_CHARS, "number"):
            return 0
        return self.construct_yaml_int(node)

    def construct_bounded_float(self, node: yaml.ScalarNode) -> Any:
        if self._too_long(node, MAX_NUMBER_CHARS, "number"):
            return 0.0
        return self.construct_yaml_float(node)

    def construct_bounded_str(self, node: yaml.ScalarNode) -> Any:
        if self._too_long(node, MAX_TEXT_CHARS, "text"):
            return str(node.value)[:MAX_TEXT_CHARS]
        return self.construct_yaml_str(node)

    def _too_long(self, node: yaml.ScalarNode, limit: int, what: str) -> bool:
        size = len(str(node.value))
        if size <= limit:
            return False
        self.oversized.append((f"{what} of {size:,} characters is too long (at most {limit:,})", _mark(node)))
        return True

    def construct_lenient_timestamp(self, node: yaml.ScalarNode) -> Any:
        """``2026-13-01`` stays text, so the field's own check reports it with its position."""
        try:
            return self.construct_yaml_timestamp(node)
        except ValueError:
            return str(node.value)


def _yaml12_booleans() -> dict[Any, list[tuple[str, re.Pattern[str]]]]:
    """Only true/false are booleans (YAML 1.2): ``yes:``/``no:`` step keys and a caller
    phrase ``no`` must stay text, not turn into ``True``/``False``."""
    bool_tag = "tag:yaml.org,2002:bool"
    table: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}
    for first, entries in yaml.SafeLoader.yaml_implicit_resolvers.items():
        kept = [(tag, regexp) for tag, regexp in entries if tag != bool_tag]
        if first in "tTfF":
            kept.insert(0, (bool_tag, _BOOL))
        if kept:
            table[first] = kept
    return table


_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_MarkedLoader.yaml_implicit_resolvers = _yaml12_booleans()
_MarkedLoader.add_constructor("tag:yaml.org,2002:timestamp", _MarkedLoader.construct_lenient_timestamp)
_MarkedLoader.add_constructor("tag:yaml.org,2002:int", _MarkedLoader.construct_bounded_int)
_MarkedLoader.add_constructor("tag:yaml.org,2002:float", _MarkedLoader.construct_bounded_float)
_MarkedLoader.add_constructor("tag:yaml.org,2002:str", _MarkedLoader.construct_bounded_str)
_MarkedLoader.add_constructor("tag:yaml.org,2002:map", _MarkedLoader.construct_marked_mapping)
_MarkedLoader.add_constructor("tag:yaml.org,2002:seq", _MarkedLoader.construct_marked_sequence)


def load_marked(
    text: str, file: str, what: str = "flow file", expected: str = "a mapping with flow: and steps:"
) -> tuple[MarkedDict | None, list[Problem]]:
    """Parse ``text`` as one mapping; returns it (``None`` if unusable) and the problems found.

    ``what`` and ``expected`` word the problem for an empty, null-only or non-mapping document.
    """
    loader = _MarkedLoader(text)
    loader.duplicates = []
    loader.oversized = []
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what_went_wrong = exc.problem or exc.context or "syntax error"
        return None, [Problem(file, line, col, f"YAML syntax error: {what_went_wrong}")]
    except yaml.YAMLError as exc:
        return None, [Problem(file, 1, 1, f"YAML syntax error: {exc}")]
    except (ValueError, OverflowError, RecursionError) as exc:  # a constructor gave up
        return None, [Problem(file, 1, 1, f"YAML value cannot be read: {type(exc).__name__}: {exc}"[:300])]
    finally:
        loader.dispose()
    problems = [
        Problem(file, line, col, f"duplicate key '{name[:80]}'") for name, (line, col) in loader.duplicates
    ]
    problems += [Problem(file, line, col, message) for message, (line, col) in loader.oversized]
    if node is None:
        return None, [*problems, Problem(file, 1, 1, f"{what} is empty: expected {expected}")]
    if not isinstance(data, MarkedDict):
        line, col = _mark(node)
        got = "only null" if data is None else _kind(data)
        return None, [*problems, Problem(file, line, col, f"{what} holds {got}: expected {expected}")]
    return data, problems


def _kind(data: Any) -> str:
    if isinstance(data, list):
        return "a list"
    if isinstance(data, bool):
        return "a boolean"
    if isinstance(data, int | float):
        return "a number"
    return "text" if isinstance(data, str) else f"a {type(data).__name__}"


def read_marked(
    path: Path,
    display: str | None = None,
    what: str = "flow file",
    expected: str = "a mapping with flow: and steps:",
) -> tuple[MarkedDict | None, list[Problem]]:
    """Read and parse a file; an unreadable, oversized or special file is a problem, not an exception."""
    name = display or str(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            return None, [Problem(name, 1, 1, f"cannot read {what}: not a regular file")]
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return None, [Problem(name, 1, 1, f"cannot read {what}: {exc.strerror or exc}")]
    if len(raw) > MAX_FILE_BYTES:
        size = max(info.st_size, len(raw))
        return None, [
            Problem(name, 1, 1, f"{what} is too large: {size:,} bytes (at most {MAX_FILE_BYTES:,})")
        ]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [Problem(name, line, col, f"{what} is not UTF-8: {exc.reason}")]
    return load_marked(text, name, what, expected)
