"""Reading settings sources defensively: the YAML file and the ``IVR_*`` environment.

A config file is bounded (size, regular file, UTF-8) and any value YAML cannot build (a
5,000-digit number, deep nesting) is a :class:`ConfigError` naming the file, not a
traceback. Environment values stay text until the setting's type is known (:class:`EnvText`).
"""

from __future__ import annotations

import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from config.errors import ConfigError

MAX_CONFIG_BYTES = 1_000_000


class EnvText(str):
    """A value as the environment gave it: text settings keep it, others read it as YAML."""

    __slots__ = ()




def get_nested(raw: Any, keys: tuple[str, ...]) -> Any:
    """``raw[k1][k2]...``, or ``None`` where a level is missing or not a mapping."""
    for key in keys:
        raw = raw.get(key) if isinstance(raw, Mapping) else None
    return raw


def env_yaml(value: Any, where: str) -> Any:
    """An environment value read as YAML (a number, a list, a mapping), else unchanged."""
    if not isinstance(value, EnvText):
        return value
    if not value:
        return ""
    try:
        return yaml.safe_load(str(value))
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        detail = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{where}: cannot read {short_repr(value)} as a value: {detail}") from None


def read_yaml(path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise ConfigError(f"{path}: cannot read config file: not a regular file")
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: config file is larger than {MAX_CONFIG_BYTES:,} bytes")
    try:
        text = raw.decode("utf-8")
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(f"{path}:{line}:{col}: config file is not UTF-8: {exc.reason}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {exc.problem}") from exc
    except (yaml.YAMLError, ValueError, RecursionError) as exc:  # e.g. a 5,000-digit number
        raise ConfigError(f"{path}: a value cannot be read: {str(exc)[:120]}") from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: config must be a mapping of keys to values")
    lines: dict[tuple[str, ...], int] = {}
    _collect_lines(node, (), lines)
    return data, lines


def _collect_lines(node: yaml.Node | None, prefix: tuple[str, ...], out: dict[tuple[str, ...], int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*prefix, str(key_node.value))
            out[key] = key_node.start_mark.line + 1
            _collect_lines(value_node, key, out)


def set_nested(raw: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    for key in keys[:-1]:
        nxt = raw.setdefault(key, {})
        if not isinstance(nxt, dict):
            nxt = raw[key] = {}
        raw = nxt
    raw[keys[-1]] = value


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr`` cut short: an error quotes a value, it does not reprint a pasted blob."""
    if isinstance(value, int) and value.bit_length() > 128:
        return f"a {value.bit_length()}-bit number"
    text = repr(str(value) if isinstance(value, EnvText) else value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
