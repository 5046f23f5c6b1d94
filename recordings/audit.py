"""Proving an archive untouched: each call's files against its signed manifest, every link.

A call fails, by name, when its WAV or sidecar differs by one byte from what was sealed, when
its manifest was edited or is signed by an untrusted key, when it is not in its folder's chain,
or when it was removed: its files are gone while its manifest remains, or its manifest is gone
too and the next manifest's previous-hash (which names it) points into a hole.

A call deleted by ``recordings purge`` is not a failure: its chain holds a signed tombstone
(``event: purged``, with the reason and who ran it) after its seal, and it is reported as
purged. Files still present after their tombstone mean a purge was cut short.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from recordings.catalog import Catalog, CatalogEntry
from recordings.chain_store import StoredChain, chain_files, chain_name, read_chain
from recordings.errors import RecordingError, SidecarError
from recordings.manifest import ChainEntry, ChainProblem, Manifest, check_chain
from recordings.recovery import UNFINISHED_DIR
from recordings.sidecar import WAV_SUFFIX
from recordings.signing import TrustedKey
from recordings.wav_writer import file_sha256


@dataclass(frozen=True)
class CallAudit:
    call_id: str
    wav_path: Path
    problems: tuple[str, ...] = ()
    skipped: str = ""
    """Why the call was not checked (still recording); empty when it was."""
    purged: str = ""
    """When, why and by whom ``recordings purge`` deleted the call (its tombstone); else empty."""

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class ChainSummary:
    path: Path
    manifests: int
    head: str
    """Hash of the last manifest: an auditor who notes it can later prove nothing was cut off."""


@dataclass(frozen=True)
class AuditReport:
    calls: tuple[CallAudit, ...]
    other: tuple[str, ...]
    """Problems tied to no call (a sidecar or manifest line too damaged to name one)."""
    chains: tuple[ChainSummary, ...]

    @property
    def failures(self) -> int:
        return sum(1 for call in self.calls if not call.ok) + len(self.other)

    @property
    def purged(self) -> int:
        return sum(1 for call in self.calls if call.ok and call.purged)


@dataclass
class _Folder:
    """What one folder's audit gathers, per call, in first-seen order."""

    wav: dict[str, Path] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    purged: dict[str, str] = field(default_factory=dict)

    def add(self, call_id: str, wav: Path, problems: Iterable[str] = ()) -> None:
        self.wav.setdefault(call_id, wav)
        self.problems.setdefault(call_id, []).extend(problems)


def audit_archive(root: Path, keys: Mapping[str, TrustedKey], call_id: str | None = None) -> AuditReport:
    """Check every call under ``root`` (or only ``call_id``) against the chains of its folder.

    Raises :class:`RecordingError` when ``call_id`` has neither a recording nor a manifest.
    """
    catalog = Catalog(root)
    errors: tuple[SidecarError, ...]
    if call_id is None:
        scan = catalog.scan()
        entries, errors = scan.entries, scan.errors
        folders = {e.sidecar_path.parent for e in entries} | {p.parent for p in chain_files(root)}
        folders |= {error.path.parent for error in errors}
    else:
        entries, errors, folders = _find_one(catalog, root, call_id)
    by_folder: dict[Path, list[CatalogEntry]] = {}
    for entry in entries:
        by_folder.setdefault(entry.sidecar_path.parent, []).append(entry)
    other: list[str] = []
    audits: dict[str, CallAudit] = {}
    chains: list[ChainSummary] = []
    for folder in sorted(folders):
        found, summary, folder_other = _audit_folder(
            root, folder, by_folder.get(folder, []), keys, errors, only=call_id
        )
        chains.append(summary)
        if call_id is None:
            other.extend(folder_other)
        for audit in found:
            if call_id is None or audit.call_id == call_id:
                audits[audit.call_id] = audit
    if call_id is not None and call_id not in audits:
        raise errors[0] if errors else RecordingError(f"no recording of call {call_id!r} under {root}")
    ordered = [audits.pop(e.call_id) for e in entries if e.call_id in audits]
    return AuditReport(tuple(ordered + list(audits.values())), tuple(dict.fromkeys(other)), tuple(chains))


def _find_one(
    catalog: Catalog, root: Path, call_id: str
) -> tuple[tuple[CatalogEntry, ...], tuple[SidecarError, ...], set[Path]]:
    try:
        entry = catalog.find(call_id)
        return (entry,), (), {entry.sidecar_path.parent}
    except SidecarError as exc:
        return (), (exc,), {exc.path.parent}
    except RecordingError:
        folders = {path.parent for path in chain_files(root) if _mentions(path.read_bytes(), call_id)}
        if not folders:
            raise
        return (), (), folders


def _mentions(chain: bytes, call_id: str) -> bool:
    """Whether a chain seals ``call_id`` or names it as the call before a manifest."""
    return f'"call_id":"{call_id}"'.encode() in chain or f'"prev_call_id":"{call_id}"'.encode() in chain


def _audit_folder(
    root: Path,
    folder: Path,
    entries: list[CatalogEntry],
    keys: Mapping[str, TrustedKey],
    errors: tuple[SidecarError, ...],
    *,
    only: str | None,
) -> tuple[list[CallAudit], ChainSummary, list[str]]:
    """Audits of the folder's calls (only ``only``'s files are hashed when given)."""
    stored = _settled_chain(root, folder, entries)
    check = check_chain(stored.lines, chain_name(root, folder), keys, stored.torn_tail)
    latest = check.latest()
    acc = _Folder()
    other: list[str] = []
    for entry in entries:
        if entry.status == "recording":
            acc.add(entry.call_id, entry.wav_path)
            acc.skipped[entry.call_id] = "still recording"
            continue
        registered = (root / UNFINISHED_DIR / entry.call_id).exists()
        acc.add(
            entry.call_id,
            entry.wav_path,
            _entry_problems(entry, latest.get(entry.call_id), stored.path, registered),
        )
    for problem in (*check.problems, *_tombstone_problems(check.entries)):
        where = f"{stored.path}:{problem.line}" if problem.line else str(stored.path)
        named = problem.calls[0] if problem.calls else ""
        if named:
            acc.add(named, folder / f"{named}{WAV_SUFFIX}", [f"{where}: {problem.reason}"])
        else:
            other.append(f"{where}: {problem.reason}")
    present = {entry.call_id for entry in entries}
    unreadable = {error.path: error for error in errors if error.path.parent == folder}
    for call, chained in latest.items():
        if call not in present and only in (None, call):
            problems = _orphan_problems(folder, chained, stored.path, unreadable)
            acc.add(call, folder / chained.manifest.wav, problems)
            if chained.manifest.purged:
                acc.purged[call] = _tombstone_note(chained, stored.path)
    other.extend(
        str(error)
        for path, error in unreadable.items()
        if not any(folder / e.manifest.sidecar == path for e in latest.values())
    )
    audits = [
        CallAudit(
            call,
            acc.wav[call],
            tuple(acc.problems[call]),
            acc.skipped.get(call, ""),
            acc.purged.get(call, ""),
        )
        for call in acc.wav
    ]
    return audits, ChainSummary(stored.path, len(stored.lines), check.head), other


def _settled_chain(root: Path, folder: Path, entries: list[CatalogEntry], wait_s: float = 1.0) -> StoredChain:
    """The folder's chain, re-read briefly while a call sealed during the scan is being chained.

    Only calls still registered in ``.unfinished`` are waited for; one that never shows up
    still fails (a process died between sealing and chaining; the next start chains it).
    """
    deadline = time.monotonic() + wait_s
    while True:
        stored = read_chain(folder)
        text = b"\n".join(stored.lines)
        pending = [
            e
            for e in entries
            if e.status != "recording"
            and e.sidecar.sha256 is not None
            and (root / UNFINISHED_DIR / e.call_id).exists()
            and f'"call_id":"{e.call_id}"'.encode() not in text
        ]
        if not pending or time.monotonic() >= deadline:
            return stored
        time.sleep(0.05)


def _entry_problems(
    entry: CatalogEntry, chained: ChainEntry | None, chain_path: Path, registered: bool
) -> list[str]:
    """A recording on disk against the hash in its sidecar and the manifest that sealed it."""
    expected = entry.sidecar.sha256
    if expected is None:
        return ["no SHA-256 sealed yet (interrupted, not recovered)"]
    problems: list[str] = []
    actual: str | None = None
    if not entry.wav_path.exists():
        problems.append("audio file is missing")
    else:
        actual = file_sha256(entry.wav_path)
        if actual != expected:
            problems.append(f"SHA-256 mismatch: sidecar {expected}, file {actual}")
    if chained is None:
        why = (
            (
                "it is still registered in .unfinished (its process died before chaining it;"
                " the next start of serve chains it)"
            )
            if registered
            else ("its manifest was removed, or it was sealed before manifests existed")
        )
        problems.append(f"not in the manifest chain {chain_path}: {why}")
        return problems
    m, where = chained.manifest, f"{chain_path}:{chained.line}"
    if m.purged:
        problems.append(
            f"{_tombstone_note(chained, chain_path)}, but its files are still here:"
            " the purge was cut short; run recordings purge again"
        )
        return problems
    if m.wav != entry.wav_path.name:
        problems.append(f"the manifest at {where} seals WAV {m.wav}, the sidecar names {entry.wav_path.name}")
    elif actual is not None and actual == expected and actual != m.wav_sha256:
        problems.append(
            f"WAV changed since it was sealed: SHA-256 {actual}, manifest at {where} {m.wav_sha256}"
        )
    sidecar_actual = file_sha256(entry.sidecar_path)
    if sidecar_actual != m.sidecar_sha256:
        problems.append(
            f"sidecar {entry.sidecar_path.name} changed since it was sealed:"
            f" SHA-256 {sidecar_actual}, manifest at {where} {m.sidecar_sha256}"
        )
    return problems


def _orphan_problems(
    folder: Path, chained: ChainEntry, chain_path: Path, unreadable: Mapping[Path, SidecarError]
) -> list[str]:
    """A call the chain holds whose sidecar is missing or unreadable."""
    m, where = chained.manifest, f"{chain_path}:{chained.line}"
    wav, sidecar = folder / m.wav, folder / m.sidecar
    if m.purged:
        left = [path.name for path in (wav, sidecar) if path.exists()]
        return (
            [
                f"{' and '.join(left)} still here after its tombstone at {where}: the purge was cut"
                " short; run recordings purge again"
            ]
            if left
            else []
        )
    if not wav.exists() and not sidecar.exists():
        return [f"deleted: sealed at {where}, but its WAV and sidecar are gone"]
    problems: list[str] = []
    if sidecar in unreadable:
        problems.append(f"sidecar unreadable: {unreadable[sidecar].problem}")
    for path, digest in ((wav, m.wav_sha256), (sidecar, m.sidecar_sha256)):
        if not path.exists():
            problems.append(f"{path.name} is missing (sealed at {where})")
        elif (actual := file_sha256(path)) != digest:
            problems.append(
                f"{path.name} changed since it was sealed: SHA-256 {actual}, manifest at {where} {digest}"
            )
    return problems


def _tombstone_note(chained: ChainEntry, chain_path: Path) -> str:
    m = chained.manifest
    return (
        f"purged {m.sealed_at} by {m.actor or '?'} ({m.reason or 'no reason given'}), tombstone at"
        f" {chain_path}:{chained.line}"
    )


def _tombstone_problems(entries: Iterable[ChainEntry]) -> list[ChainProblem]:
    """A tombstone must follow a seal of the same call and name the same files."""
    sealed: dict[str, Manifest] = {}
    problems: list[ChainProblem] = []
    for entry in entries:
        m = entry.manifest
        if not m.purged:
            sealed[m.call_id] = m
            continue
        before = sealed.get(m.call_id)
        if before is None:
            problems.append(
                ChainProblem(entry.line, (m.call_id,), "tombstone of a call this chain never sealed")
            )
        elif (m.wav, m.wav_sha256, m.sidecar, m.sidecar_sha256) != (
            before.wav,
            before.wav_sha256,
            before.sidecar,
            before.sidecar_sha256,
        ):
            problems.append(
                ChainProblem(
                    entry.line, (m.call_id,), "tombstone names other files or hashes than the call's seal"
                )
            )
    return problems
