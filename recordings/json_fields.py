"""Strict, typed reading of a JSON object for the recordings' files (sidecars).

Every mismatch raises :class:`~recordings.errors.SidecarError` naming the file and the dotted
field path (``turns[3].start_s``), so a damaged record is refused with where it is damaged,
never half-understood.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recordings.errors import SidecarError


class JsonFields:
    """Typed access to a JSON object that reports the dotted field path on any mismatch."""

    def __init__(self, path: Path, raw: Any, prefix: str = "") -> None:
        self.path = path
        self.prefix = prefix
        if not isinstance(raw, dict):
            raise SidecarError(path, f"expected an object, got {type(raw).__name__}", prefix or None)
        self.raw: dict[str, Any] = raw

    def name(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def fail(self, key: str, problem: str) -> SidecarError:
        return SidecarError(self.path, problem, self.name(key))

    def get(self, key: str, kind: type | tuple[type, ...], optional: bool = False) -> Any:
        if key not in self.raw:
            if optional:
                return None
            raise self.fail(key, "missing")
        value = self.raw[key]
        if value is None and optional:
            return None
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.fail(key, f"expected {kind_name(kind)}, got {value!r}")
        if not isinstance(value, kind):
            raise self.fail(key, f"expected {kind_name(kind)}, got {value!r}")
        return value

    def number(self, key: str) -> float:
        return float(self.get(key, (int, float)))

    def optional_number(self, key: str) -> float | None:
        value = self.get(key, (int, float), optional=True)
        return None if value is None else float(value)

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value: str = self.get(key, str)
        if value not in allowed:
            raise self.fail(key, f"{value!r} is not one of {', '.join(allowed)}")
        return value

    def moment(self, key: str) -> datetime:
        value: str = self.get(key, str)
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise self.fail(key, f"{value!r} is not an ISO 8601 timestamp") from None
        if parsed.tzinfo is None:
            raise self.fail(key, f"{value!r} has no time zone")
        return parsed.astimezone(UTC)

    def optional_moment(self, key: str) -> datetime | None:
        return None if self.get(key, str, optional=True) is None else self.moment(key)


def kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "a number", float: "a number", dict: "an object", list: "a list"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))
