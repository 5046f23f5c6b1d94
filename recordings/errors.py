"""Errors raised by the recordings package, all under :class:`config.errors.IvrError`."""

from __future__ import annotations

from pathlib import Path

from config.errors import IvrError


class RecordingError(IvrError):
    """A recording could not be written, found or checked."""


class SidecarError(RecordingError):
    """A sidecar file is unreadable or breaks its schema; the message names the file and field."""

    def __init__(self, path: Path | str, problem: str, field: str | None = None) -> None:
        where = f"{path}: {field}: " if field else f"{path}: "
        super().__init__(f"{where}{problem}")
        self.path = Path(path)
        self.field = field
        self.problem = problem


class WavFormatError(RecordingError):
    """A file that should be one of our WAV recordings is not (wrong header or format)."""
