"""One call's verification status for its page, reading only its own folder's chain.

``recordings verify CALL_ID`` (:func:`recordings.audit.audit_archive`) first finds the call by
scanning every sidecar under the archive, which is seconds with 100,000 calls; the page already
knows the call's sidecar from the index, so it checks the same things directly: the WAV against
the hash sealed in the sidecar, the signed manifest chain of the call's folder (form, signatures
and links, as :func:`recordings.manifest.check_chain` checks them), and both files against the
call's latest manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from recordings.catalog import CatalogEntry
from recordings.chain_store import chain_name, read_chain
from recordings.errors import RecordingError
from recordings.manifest import check_chain
from recordings.signing import TrustedKey
from recordings.wav_writer import file_sha256

STATUSES = ("verified", "failed", "recording", "purged", "unverifiable")


@dataclass(frozen=True)
class Verification:
    status: str
    """One of :data:`STATUSES`."""
    problems: tuple[str, ...] = ()


def verify_entry(root: Path, entry: CatalogEntry, key: TrustedKey | None) -> Verification:
    """The call in the archive at ``root`` checked against the key that seals the manifests."""
    if entry.status == "recording":
        return Verification("recording", ("still being recorded: it is sealed when the call ends",))
    if key is None:
        return Verification("unverifiable", ("no signing key: nothing was ever sealed here",))
    expected = entry.sidecar.sha256
    if expected is None:
        return Verification("failed", ("no SHA-256 sealed yet (interrupted, not recovered)",))
    folder = entry.sidecar_path.parent
    try:
        stored = read_chain(folder)
    except RecordingError as exc:
        return Verification("failed", (str(exc),))
    check = check_chain(stored.lines, chain_name(root, folder), {key.key_id: key}, stored.torn_tail)
    problems = [
        f"{stored.path}:{p.line}: {p.reason}" if p.line else f"{stored.path}: {p.reason}"
        for p in check.problems
        if p.calls and p.calls[0] == entry.call_id
    ]
    chained = check.latest().get(entry.call_id)
    if chained is None:
        return Verification("failed", (*problems, f"not in the manifest chain {stored.path}"))
    manifest, where = chained.manifest, f"{stored.path}:{chained.line}"
    if manifest.purged:
        return Verification("failed", (*problems, f"purged at {where}, but its files are still here"))
    for path, sealed, what in (
        (entry.wav_path, manifest.wav_sha256, "WAV"),
        (entry.sidecar_path, manifest.sidecar_sha256, "sidecar"),
    ):
        if not path.exists():
            problems.append(f"{what} {path.name} is missing")
        elif file_sha256(path) != sealed:
            problems.append(f"{what} {path.name} changed since it was sealed (manifest at {where})")
    if manifest.wav != entry.wav_path.name:
        problems.append(
            f"the manifest at {where} seals WAV {manifest.wav}, the sidecar names {entry.wav_path.name}"
        )
    return Verification("failed", tuple(problems)) if problems else Verification("verified")
