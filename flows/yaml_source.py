"""YAML that remembers where every key and value came from, for ``FILE:LINE:COL`` messages.

Mappings load as :class:`MarkedDict` and sequences as :class:`MarkedList`: plain ``dict`` and
``list`` subclasses that also carry the (line, column) of each key and value (1-based).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from flows.errors import Problem

Pos = tuple[int, int]

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
_MarkedLoader.add_constructor("tag:yaml.org,2002:map", _MarkedLoader.construct_marked_mapping)
_MarkedLoader.add_constructor("tag:yaml.org,2002:seq", _MarkedLoader.construct_marked_sequence)


def load_marked(text: str, file: str) -> tuple[Any, list[Problem]]:
    """Parse ``text``; returns the data (``None`` on a syntax error) and the problems found."""
    loader = _MarkedLoader(text)
    loader.duplicates = []
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or exc.context or "syntax error"
        return None, [Problem(file, line, col, f"YAML syntax error: {what}")]
    except yaml.YAMLError as exc:
        return None, [Problem(file, 1, 1, f"YAML syntax error: {exc}")]
    finally:
        loader.dispose()
    problems = [
        Problem(file, line, col, f"duplicate key '{name}'") for name, (line, col) in loader.duplicates
    ]
    return data, problems


def read_marked(path: Path, display: str | None = None) -> tuple[Any, list[Problem]]:
    """Read and parse a file; an unreadable file is a problem, not an exception."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return None, [Problem(name, 1, 1, f"cannot read flow file: {exc.strerror or exc}")]
    except UnicodeDecodeError as exc:
        return None, [Problem(name, 1, 1, f"flow file is not UTF-8: {exc.reason}")]
    return load_marked(text, name)
