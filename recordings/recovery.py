"""Finishing recordings that a dead process left behind; the lead runs it when ``serve`` starts.

A sidecar still saying ``recording`` whose WAV no live writer holds belongs to a call that
ended with its process (crash, SIGKILL, power cut). Its header is fixed from the file length,
the WAV is hashed, and the sidecar is sealed as ``interrupted`` so the audit trail shows both
that the call was cut and that what survived is intact from here on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from config.logs import log_event
from recordings.errors import RecordingError, SidecarError
from recordings.sidecar import SIDECAR_SUFFIX, WAV_SUFFIX, Pause, read_sidecar, write_sidecar
from recordings.wav_writer import file_sha256, is_being_written, repair_header

_LOG = logging.getLogger("ivr.recordings")
UNFINISHED_DIR = ".unfinished"
"""Under the recordings root: one marker per live recording, so start-up recovery need not read
every sidecar ever written (millions, after a few campaigns)."""


def mark_unfinished(root: Path, call_id: str, sidecar: Path) -> None:
    """Register a recording as live; refuses a second live recording of the same call."""
    markers = root / UNFINISHED_DIR
    markers.mkdir(parents=True, exist_ok=True)
    try:
        with open(markers / call_id, "x", encoding="utf-8") as handle:
            handle.write(str(sidecar.relative_to(root)))
    except FileExistsError:
        raise RecordingError(f"call {call_id} is already being recorded under {root}") from None


def clear_unfinished(root: Path, call_id: str) -> None:
    (root / UNFINISHED_DIR / call_id).unlink(missing_ok=True)


def _marked(root: Path) -> dict[Path, Path]:
    """Sidecar path -> marker path, for every recording registered as live."""
    markers = root / UNFINISHED_DIR
    if not markers.is_dir():
        return {}
    return {root / marker.read_text(encoding="utf-8").strip(): marker for marker in sorted(markers.iterdir())}


@dataclass(frozen=True)
class RecoveryReport:
    recovered: tuple[Path, ...]
    """Sidecars sealed as ``interrupted``."""
    live: tuple[Path, ...]
    """Recordings some running process still writes; left alone."""
    problems: tuple[str, ...]
    """What could not be recovered, one message per file."""


def sidecar_files(root: Path) -> list[Path]:
    """Every sidecar under ``root`` (any depth), skipping temp files of an interrupted rewrite."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob(f"*{SIDECAR_SUFFIX}") if not p.name.startswith("."))


def recover_unfinished(root: Path, full_scan: bool = False) -> RecoveryReport:
    """Seal every unfinished recording under ``root``; never raises for a single bad file.

    By default only recordings registered in ``root/.unfinished`` are examined (cheap at any
    archive size); ``full_scan`` reads every sidecar and also reports WAVs without one.
    """
    recovered: list[Path] = []
    live: list[Path] = []
    problems: list[str] = []
    described: set[Path] = set()
    marked = _marked(root)
    candidates = sorted(set(marked) | set(sidecar_files(root))) if full_scan else list(marked)
    for path in candidates:
        marker = marked.get(path)
        if marker is not None and not path.exists():
            problems.append(f"{path}: registered as recording but the sidecar is missing")
            marker.unlink(missing_ok=True)
            continue
        try:
            sidecar = read_sidecar(path)
        except SidecarError as exc:
            problems.append(str(exc))
            continue
        wav = path.parent / sidecar.wav_name
        described.add(wav)
        if sidecar.status != "recording":
            if marker is not None:
                marker.unlink(missing_ok=True)  # sealed, but the process died before unregistering
            continue
        if is_being_written(wav):
            live.append(path)
            continue
        try:
            if not wav.exists():
                raise RecordingError(f"{wav}: audio file is missing; sidecar {path.name} left as is")
            info = repair_header(wav)
            digest = file_sha256(wav)
        except (RecordingError, OSError) as exc:
            problems.append(str(exc))
            continue
        pauses = tuple(
            p if p.end_s is not None else Pause(p.start_s, max(p.start_s, info.duration_s), p.reason)
            for p in sidecar.pauses
        )
        sealed = sidecar.with_changes(
            status="interrupted", ended_at=sidecar.started_at + timedelta(seconds=info.duration_s),
            connected_duration_s=info.duration_s, duration_s=info.duration_s, sha256=digest, pauses=pauses,
        )
        write_sidecar(path, sealed, durable=True)
        _remove_stale_temp(path)
        if marker is not None:
            marker.unlink(missing_ok=True)
        recovered.append(path)
        log_event("recording_recovered", logger=_LOG, call_id=sidecar.call_id, path=str(wav),
                  duration_s=round(info.duration_s, 3))
    for wav in sorted(root.rglob(f"*{WAV_SUFFIX}")) if full_scan and root.is_dir() else []:
        if wav not in described and not is_being_written(wav):
            problems.append(f"{wav}: no sidecar describes this recording")
    for problem in problems:
        log_event("recording_recovery_failed", level=logging.WARNING, logger=_LOG, problem=problem)
    return RecoveryReport(tuple(recovered), tuple(live), tuple(problems))


def _remove_stale_temp(sidecar: Path) -> None:
    tmp = sidecar.with_name(f".{sidecar.name}.tmp")
    tmp.unlink(missing_ok=True)
