"""Appending signed manifests to a folder's ``manifests.jsonl``, safely across processes.

One chain per recordings folder (the day folder ``YYYY/MM/DD``), shared by every process
that seals calls there: ``serve`` runs several workers, and recovery runs in each at start.
An append holds an exclusive ``flock`` on the chain file itself while it reads the last line,
writes the new one and fsyncs, so links never fork (local filesystems; NFS needs working
``flock``). A line left half-written by a crash is cut off by the next append, under the lock.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from config.logs import log_event
from recordings.errors import RecordingError
from recordings.manifest import GENESIS, PURGED, Manifest, ManifestError, encode, entry_hash, parse_line
from recordings.private_fs import fsync_dir, open_private
from recordings.signing import Signer

CHAIN_FILE = "manifests.jsonl"
_LOG = logging.getLogger("ivr.recordings")
_TAIL_BLOCK = 4096


def chain_name(root: Path, folder: Path) -> str:
    """The chain's name inside each manifest: the folder relative to the recordings root."""
    try:
        relative = folder.relative_to(root)
    except ValueError:
        return folder.name
    return relative.as_posix() if relative.parts else "."


@dataclass(frozen=True)
class SealedFiles:
    """The bytes a manifest vouches for (hashes computed by whoever just wrote them)."""

    call_id: str
    status: str
    wav: Path
    wav_sha256: str
    sidecar: Path
    sidecar_sha256: str


def append_manifest(
    root: Path,
    files: SealedFiles,
    signer: Signer,
    *,
    unless_present: bool = False,
    now: datetime | None = None,
) -> Manifest | None:
    """Chain and sign ``files`` in their folder; returns the manifest (``None`` if skipped).

    ``unless_present`` skips a call the chain already holds (recovery, which may race another
    worker's recovery of the same call); it reads the whole chain, so only recovery uses it.
    """
    try:
        wav_bytes = files.wav.stat().st_size
        sidecar_bytes = files.sidecar.stat().st_size
    except OSError as exc:
        raise RecordingError(
            f"{files.sidecar.parent / CHAIN_FILE}: cannot seal call {files.call_id}: {exc.strerror}"
        ) from exc

    def build(seq: int, prev: str, prev_call: str, sealed_at: str, sealer: str) -> Manifest:
        return Manifest(
            chain=chain_name(root, files.sidecar.parent),
            seq=seq,
            prev=prev,
            prev_call_id=prev_call,
            call_id=files.call_id,
            status=files.status,
            sealed_at=sealed_at,
            sealer=sealer,
            wav=files.wav.name,
            wav_sha256=files.wav_sha256,
            wav_bytes=wav_bytes,
            sidecar=files.sidecar.name,
            sidecar_sha256=files.sidecar_sha256,
            sidecar_bytes=sidecar_bytes,
            key_id=signer.key_id,
        )

    return _append(
        files.sidecar.parent,
        files.call_id,
        build,
        signer,
        "recording_sealed",
        unless_present=unless_present,
        now=now,
    )


def append_tombstone(
    folder: Path, sealed: Manifest, signer: Signer, *, reason: str, actor: str, now: datetime | None = None
) -> Manifest:
    """Chain a signed ``purged`` entry for a call whose files are about to be deleted.

    It repeats what the call's ``sealed`` manifest vouched for (file names, hashes, sizes), so
    the tombstone says exactly what was destroyed, and adds why and who.
    """

    def build(seq: int, prev: str, prev_call: str, sealed_at: str, sealer: str) -> Manifest:
        return Manifest(
            chain=sealed.chain,
            seq=seq,
            prev=prev,
            prev_call_id=prev_call,
            call_id=sealed.call_id,
            status=sealed.status,
            sealed_at=sealed_at,
            sealer=sealer,
            wav=sealed.wav,
            wav_sha256=sealed.wav_sha256,
            wav_bytes=sealed.wav_bytes,
            sidecar=sealed.sidecar,
            sidecar_sha256=sealed.sidecar_sha256,
            sidecar_bytes=sealed.sidecar_bytes,
            key_id=signer.key_id,
            event=PURGED,
            reason=reason,
            actor=actor,
        )

    manifest = _append(folder, sealed.call_id, build, signer, "recording_purged", now=now)
    assert manifest is not None  # only skipped with unless_present
    return manifest


_Build = Callable[[int, str, str, str, str], Manifest]


def _append(
    folder: Path,
    call_id: str,
    build: _Build,
    signer: Signer,
    event: str,
    *,
    unless_present: bool = False,
    now: datetime | None = None,
) -> Manifest | None:
    """Under the chain's lock: the next position, ``build`` the manifest there, sign, append, fsync."""
    path = folder / CHAIN_FILE
    try:
        fd = open_private(path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
    except OSError as exc:
        raise RecordingError(f"{path}: cannot seal call {call_id}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        was_empty = _cut_torn_tail(fd, path)
        if unless_present and _holds_call(fd, call_id):
            return None
        last = _last_line(fd)
        seq, prev_call = _position(fd, last)
        sealed_at = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="milliseconds")
        manifest = build(
            seq,
            entry_hash(last) if last else GENESIS,
            prev_call,
            sealed_at.replace("+00:00", "Z"),
            f"{socket.gethostname()}/{os.getpid()}",
        )
        line = encode(manifest, signer.sign)
        _write_all(fd, line + b"\n")
        os.fsync(fd)
        if was_empty:
            fsync_dir(folder)
    except OSError as exc:
        raise RecordingError(f"{path}: cannot append the manifest of call {call_id}: {exc}") from exc
    finally:
        os.close(fd)  # releases the lock
    # The head hash in the log is a witness outside the archive: it exposes a truncated chain.
    log_event(event, logger=_LOG, call_id=call_id, chain=str(path), seq=manifest.seq, head=entry_hash(line))
    return manifest


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _cut_torn_tail(fd: int, path: Path) -> bool:
    """Drop a last line without its newline (a crash mid-append); True if the file is empty."""
    size = os.fstat(fd).st_size
    if size == 0:
        return True
    if os.pread(fd, 1, size - 1) == b"\n":
        return False
    keep = _last_newline_before(fd, size) + 1
    os.ftruncate(fd, keep)
    log_event("recording_chain_repaired", logging.WARNING, _LOG, chain=str(path), cut_bytes=size - keep)
    return keep == 0


def _last_newline_before(fd: int, end: int) -> int:
    """Offset of the last ``\\n`` before ``end``, or -1."""
    pos = end
    while pos > 0:
        start = max(0, pos - _TAIL_BLOCK)
        block = os.pread(fd, pos - start, start)
        index = block.rfind(b"\n")
        if index >= 0:
            return start + index
        pos = start
    return -1


def _last_line(fd: int) -> bytes:
    """The last complete line without its newline (file ends with one), or b"" if empty."""
    size = os.fstat(fd).st_size
    if size == 0:
        return b""
    start = _last_newline_before(fd, size - 1) + 1
    return os.pread(fd, size - 1 - start, start)


def _position(fd: int, last: bytes) -> tuple[int, str]:
    """(seq of the next manifest, call id of the last one)."""
    if not last:
        return 1, ""
    try:
        raw = json.loads(last)
        return int(raw["seq"]) + 1, str(raw["call_id"])
    except (ValueError, KeyError, TypeError):
        # The last line is damaged (verify will say so); keep sealing calls: count lines.
        log_event("recording_chain_damaged", logging.ERROR, _LOG, problem="last manifest unreadable")
        return _read_all(fd).count(b"\n") + 1, ""


def _read_all(fd: int) -> bytes:
    return os.pread(fd, os.fstat(fd).st_size, 0)


def _holds_call(fd: int, call_id: str) -> bool:
    return f'"call_id":"{call_id}"'.encode() in _read_all(fd)


@dataclass(frozen=True)
class StoredChain:
    path: Path
    lines: tuple[bytes, ...]
    torn_tail: bool
    """The file does not end with a newline: the last (partial) line is left out of ``lines``."""


def read_chain(folder: Path) -> StoredChain:
    """A folder's manifest lines (missing file: no lines), never a line being appended."""
    path = folder / CHAIN_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return StoredChain(path, (), False)
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read the manifest chain: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # waits for an append in progress to finish
        data = _read_all(fd)
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read the manifest chain: {exc.strerror}") from exc
    finally:
        os.close(fd)
    torn = bool(data) and not data.endswith(b"\n")
    lines = data.split(b"\n")[:-1]
    return StoredChain(path, tuple(lines), torn)


def chain_files(root: Path) -> list[Path]:
    """Every chain under ``root``, any depth."""
    return sorted(root.rglob(CHAIN_FILE)) if root.is_dir() else []


def call_manifests(folder: Path, call_id: str) -> list[tuple[int, Manifest]]:
    """(line number, manifest) of every readable entry of ``call_id`` in ``folder``'s chain, in order.

    Signatures and links are not checked here (``verify`` does); unreadable lines are skipped.
    """
    needle = f'"call_id":"{call_id}"'.encode()
    found: list[tuple[int, Manifest]] = []
    for number, line in enumerate(read_chain(folder).lines, start=1):
        if needle in line:
            try:
                found.append((number, parse_line(line).manifest))
            except ManifestError:
                continue
    return found
