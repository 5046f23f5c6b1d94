"""Finding recorded calls on disk and proving they are untouched.

The catalog is the sidecar files themselves (no database): a call is listed if its sidecar
parses. A malformed sidecar is reported with its path and field and the scan goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recordings.errors import RecordingError, SidecarError
from recordings.recovery import sidecar_files
from recordings.sidecar import CHANNELS, Sidecar, iso, read_sidecar
from recordings.wav_writer import file_sha256, is_being_written, read_wav_info


@dataclass(frozen=True)
class CatalogEntry:
    sidecar: Sidecar
    sidecar_path: Path
    status: str
    """``complete``, ``interrupted`` (also when not yet recovered) or ``recording`` (live)."""

    @property
    def call_id(self) -> str:
        return self.sidecar.call_id

    @property
    def wav_path(self) -> Path:
        return self.sidecar_path.parent / self.sidecar.wav_name

    @property
    def duration_s(self) -> float | None:
        if self.sidecar.duration_s is not None:
            return self.sidecar.duration_s
        try:
            return read_wav_info(self.wav_path).duration_s
        except RecordingError:
            return None

    def to_json(self) -> dict[str, Any]:
        """The ``recordings list --json`` object; field names are a public contract."""
        s = self.sidecar
        duration = self.duration_s
        return {
            "call_id": s.call_id,
            "path": str(self.wav_path),
            "sidecar": str(self.sidecar_path),
            "status": self.status,
            "direction": s.direction,
            "from": s.from_masked,
            "to": s.to_masked,
            "started_at": iso(s.started_at),
            "ended_at": iso(s.ended_at) if s.ended_at else None,
            "duration_s": None if duration is None else round(duration, 3),
            "connected_duration_s": s.connected_duration_s,
            "flow": s.flow_name,
            "flow_version": s.flow_version,
            "outcome": s.outcome,
            "channels": len(CHANNELS),
            "channel_map": dict(CHANNELS),
            "sample_rate": s.sample_rate,
            "sha256": s.sha256,
            "turns": [t.to_json() for t in s.turns],
            "pauses": [p.to_json() for p in s.pauses],
            "tags": dict(s.tags),
            **({"alerts": [a.to_json() for a in s.alerts]} if s.alerts else {}),
        }


@dataclass(frozen=True)
class CatalogScan:
    entries: tuple[CatalogEntry, ...]
    errors: tuple[SidecarError, ...]


@dataclass(frozen=True)
class Verification:
    entry: CatalogEntry
    ok: bool
    problem: str = ""
    """Empty when ``ok``; else why the recording cannot be trusted (or was skipped, if live)."""
    skipped: bool = False


class Catalog:
    def __init__(self, root: Path) -> None:
        self.root = root

    def scan(self) -> CatalogScan:
        """Every parseable recording, oldest first; unparseable sidecars go to ``errors``."""
        entries: list[CatalogEntry] = []
        errors: list[SidecarError] = []
        for path in sidecar_files(self.root):
            try:
                sidecar = read_sidecar(path)
            except SidecarError as exc:
                errors.append(exc)
                continue
            entries.append(CatalogEntry(sidecar, path, _status(sidecar, path)))
        entries.sort(key=lambda e: (e.sidecar.started_at, e.call_id))
        return CatalogScan(tuple(entries), tuple(errors))

    def entry(self, sidecar_path: Path) -> CatalogEntry:
        """The recording whose sidecar is ``sidecar_path``; raises :class:`SidecarError` if unreadable."""
        sidecar = read_sidecar(sidecar_path)
        return CatalogEntry(sidecar, sidecar_path, _status(sidecar, sidecar_path))

    def find(self, call_id: str) -> CatalogEntry:
        """The recording of ``call_id``; raises :class:`RecordingError` if there is none."""
        for path in sidecar_files(self.root):
            if path.stem == call_id:
                sidecar = read_sidecar(path)
                return CatalogEntry(sidecar, path, _status(sidecar, path))
        raise RecordingError(f"no recording of call {call_id!r} under {self.root}")

    def verify(self, entry: CatalogEntry) -> Verification:
        """Recompute the WAV's SHA-256 and compare it with the one sealed in the sidecar."""
        if entry.status == "recording":
            return Verification(entry, ok=True, problem="still recording", skipped=True)
        expected = entry.sidecar.sha256
        if expected is None:
            return Verification(entry, ok=False, problem="no SHA-256 sealed yet (interrupted, not recovered)")
        if not entry.wav_path.exists():
            return Verification(entry, ok=False, problem="audio file is missing")
        actual = file_sha256(entry.wav_path)
        if actual != expected:
            problem = f"SHA-256 mismatch: sidecar {expected}, file {actual}"
            return Verification(entry, ok=False, problem=problem)
        return Verification(entry, ok=True)


def _status(sidecar: Sidecar, path: Path) -> str:
    if sidecar.status != "recording":
        return sidecar.status
    return "recording" if is_being_written(path.parent / sidecar.wav_name) else "interrupted"
