"""Finishing recordings that a dead process left behind; the lead runs it when ``serve`` starts.

A sidecar still saying ``recording`` whose WAV no live writer holds belongs to a call that
ended with its process (crash, SIGKILL, power cut). Its header is fixed from the file length,
the WAV is hashed, the sidecar is sealed as ``interrupted`` and a signed manifest is chained,
so the audit trail shows both that the call was cut and that what survived is intact from here
on. A call sealed by a process that died before chaining it is chained here too.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from config.logs import log_event
from recordings.chain_store import SealedFiles, append_manifest
from recordings.errors import RecordingError, SidecarError
from recordings.index_spool import mark_unindexed
from recordings.private_fs import make_private_dirs, open_private
from recordings.sidecar import SIDECAR_SUFFIX, WAV_SUFFIX, Pause, Sidecar, read_sidecar, write_sidecar
from recordings.signing import Signer, default_key_file, load_signer
from recordings.wav_writer import file_sha256, is_being_written, repair_header

_LOG = logging.getLogger("ivr.recordings")
UNFINISHED_DIR = ".unfinished"
"""Under the recordings root: one marker per live recording, so start-up recovery need not read
every sidecar ever written (millions, after a few campaigns)."""


def mark_unfinished(root: Path, call_id: str, sidecar: Path) -> None:
    """Register a recording as live; refuses a second live recording of the same call."""
    markers = root / UNFINISHED_DIR
    make_private_dirs(markers)
    try:
        fd = open_private(markers / call_id, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        with open(fd, "w", encoding="utf-8") as handle:
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
    chained: tuple[Path, ...] = ()
    """Sidecars sealed by a process that died before it chained their manifest, chained now."""


def sidecar_files(root: Path) -> list[Path]:
    """Every sidecar under ``root`` (any depth), skipping temp files of an interrupted rewrite and
    the engine's own dot folders (``.unfinished``, ``.unindexed``: markers named by call id)."""
    if not root.is_dir():
        return []
    return sorted(
        p
        for p in root.rglob(f"*{SIDECAR_SUFFIX}")
        if not any(part.startswith(".") for part in p.relative_to(root).parts) and not is_qa_result(p)
    )


QA_SUFFIX = ".qa.json"


def is_qa_result(path: Path) -> bool:
    """``CALL.qa.json`` written by ``recordings qa`` next to a sidecar, not a sidecar. A call whose
    id ends in ``.qa`` has a sidecar named like one, so only a file that says so (``qa_schema``,
    or no sidecar ``schema``) is a QA result."""
    if not path.name.endswith(QA_SUFFIX):
        return False
    try:
        raw = json.loads(path.read_bytes()[:1_000_000])
    except (OSError, ValueError):
        return True
    return not isinstance(raw, dict) or "qa_schema" in raw or "schema" not in raw


def recover_unfinished(
    root: Path, full_scan: bool = False, signing_key_file: Path | None = None
) -> RecoveryReport:
    """Seal every unfinished recording under ``root``; never raises for a single bad file.

    By default only recordings registered in ``root/.unfinished`` are examined (cheap at any
    archive size); ``full_scan`` reads every sidecar and also reports WAVs without one.
    Manifests are signed with ``signing_key_file`` (default: :func:`default_key_file`).
    """
    recovered: list[Path] = []
    chained: list[Path] = []
    live: list[Path] = []
    problems: list[str] = []
    key = _LazySigner(signing_key_file or default_key_file(root))
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
            if marker is not None:  # sealed, but the process died before chaining or unregistering
                try:
                    if _chain(root, path, sidecar, key, (file_sha256(wav), file_sha256(path))):
                        chained.append(path)
                except RecordingError as exc:
                    problems.append(str(exc))
                    continue
                marker.unlink(missing_ok=True)
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
            status="interrupted",
            ended_at=sidecar.started_at + timedelta(seconds=info.duration_s),
            connected_duration_s=info.duration_s,
            duration_s=info.duration_s,
            sha256=digest,
            pauses=pauses,
        )
        sidecar_digest = write_sidecar(path, sealed, durable=True)
        _remove_stale_temp(path)
        try:
            _chain(root, path, sealed, key, (digest, sidecar_digest))
        except RecordingError as exc:
            problems.append(str(exc))  # marker kept: the next start chains it
            continue
        if marker is not None:
            marker.unlink(missing_ok=True)
        recovered.append(path)
        log_event(
            "recording_recovered",
            logger=_LOG,
            call_id=sidecar.call_id,
            path=str(wav),
            duration_s=round(info.duration_s, 3),
        )
    for wav in sorted(root.rglob(f"*{WAV_SUFFIX}")) if full_scan and root.is_dir() else []:
        if any(part.startswith(".") for part in wav.relative_to(root).parts):
            continue  # the engine's own markers (.unfinished, .unindexed), named by call id
        if wav not in described and not is_being_written(wav):
            problems.append(f"{wav}: no sidecar describes this recording")
    for problem in problems:
        log_event("recording_recovery_failed", level=logging.WARNING, logger=_LOG, problem=problem)
    return RecoveryReport(tuple(recovered), tuple(live), tuple(problems), tuple(chained))


class _LazySigner:
    """Loads (or creates) the key only when a call needs sealing: most starts seal nothing."""

    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._signer: Signer | None = None

    def get(self) -> Signer:
        if self._signer is None:
            self._signer = load_signer(self.key_file)
        return self._signer


def _chain(root: Path, path: Path, sidecar: Sidecar, key: _LazySigner, digests: tuple[str, str]) -> bool:
    """Append the call's manifest unless its chain already holds it (another worker was faster)."""
    wav_sha, sidecar_sha = digests
    files = SealedFiles(
        sidecar.call_id, sidecar.status, path.parent / sidecar.wav_name, wav_sha, path, sidecar_sha
    )
    chained = append_manifest(root, files, key.get(), unless_present=True) is not None
    mark_unindexed(root, sidecar.call_id, path)  # the next recordings command or seal indexes it
    return chained


def _remove_stale_temp(sidecar: Path) -> None:
    tmp = sidecar.with_name(f".{sidecar.name}.tmp")
    tmp.unlink(missing_ok=True)
