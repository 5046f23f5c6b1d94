"""Signed manifests and the hash chain they form: pure functions over bytes, no files.

One manifest per sealed call, one line each in its folder's ``manifests.jsonl``::

    {"call_id":"c1","chain":"2024/05/01",...,"v":1,"sig":"<base64 Ed25519 signature>"}

The line is the canonical JSON of the body (sorted keys, no spaces, ASCII) with ``"sig"``
added as the last key; the signature covers exactly the body bytes, i.e. the line with
``,"sig":"..."`` cut off, so ``sed`` and ``openssl pkeyutl`` can check it. Each body names the
SHA-256 of the previous line (``prev``; 64 zeros for the first), its ``seq`` (1, 2, ...) and the
call it sealed (``prev_call_id``), so a removed line is a hole that names the missing call,
and an edited line breaks its own signature and the next line's link.

Two events share the chain. ``sealed`` vouches for a call's files. ``purged`` is a tombstone:
``recordings purge`` deleted the call's files (retention), and the line names what was deleted
(the sealed hashes and sizes), why (``reason``) and who ran it (``actor``), so the gap it leaves
is explained and signed. Only a tombstone has ``reason`` and ``actor``; a sealed line's bytes are
exactly what they were before tombstones existed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from recordings.signing import TrustedKey

MANIFEST_VERSION = 1
GENESIS = "0" * 64
SEALED = "sealed"
PURGED = "purged"
EVENTS = (SEALED, PURGED)
_HEX64 = re.compile(r"[0-9a-f]{64}")


class ManifestError(ValueError):
    """A line is not a manifest this engine wrote; the message says which rule it breaks."""


@dataclass(frozen=True)
class Manifest:
    """What one seal vouches for: the exact bytes of a call's WAV and sidecar, and its place."""

    chain: str
    seq: int
    prev: str
    prev_call_id: str
    call_id: str
    status: str
    sealed_at: str
    sealer: str
    wav: str
    wav_sha256: str
    wav_bytes: int
    sidecar: str
    sidecar_sha256: str
    sidecar_bytes: int
    key_id: str
    event: str = SEALED
    v: int = MANIFEST_VERSION
    reason: str = ""
    """Tombstones only: why the call was deleted (e.g. ``retention 90 days (default)``)."""
    actor: str = ""
    """Tombstones only: who ran the purge."""

    @property
    def purged(self) -> bool:
        return self.event == PURGED


_INT_FIELDS = {"seq", "wav_bytes", "sidecar_bytes", "v"}
_TOMBSTONE_ONLY = ("reason", "actor")
_ALL_FIELDS = tuple(Manifest.__dataclass_fields__)
_FIELDS = tuple(name for name in _ALL_FIELDS if name not in _TOMBSTONE_ONLY)


def _fields_of(event: object) -> tuple[str, ...]:
    return _ALL_FIELDS if event == PURGED else _FIELDS


def body_of(manifest: Manifest) -> dict[str, Any]:
    """The signed fields: a sealed manifest has no ``reason``/``actor``."""
    body = asdict(manifest)
    if not manifest.purged:
        for name in _TOMBSTONE_ONLY:
            body.pop(name)
    return body


def canonical(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def entry_hash(line: bytes) -> str:
    """SHA-256 of one stored line without its newline: what the next manifest's ``prev`` names."""
    return hashlib.sha256(line).hexdigest()


def encode(manifest: Manifest, sign: Callable[[bytes], bytes]) -> bytes:
    """The signed line (no trailing newline)."""
    body = canonical(body_of(manifest))
    signature = base64.b64encode(sign(body)).decode("ascii")
    return body[:-1] + b',"sig":"' + signature.encode("ascii") + b'"}'


@dataclass(frozen=True)
class ParsedLine:
    manifest: Manifest
    body: bytes
    """The exact bytes the signature covers."""
    signature: bytes


def parse_line(line: bytes) -> ParsedLine:
    """Decode one line strictly; raises :class:`ManifestError` for anything not written by us."""
    try:
        raw = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ManifestError("not a JSON object")
    sig_text = raw.pop("sig", None)
    if not isinstance(sig_text, str):
        raise ManifestError("no signature ('sig')")
    try:
        signature = base64.b64decode(sig_text, validate=True)
    except binascii.Error:
        raise ManifestError("signature is not base64") from None
    event = raw.get("event")
    if "event" in raw and event not in EVENTS:
        raise ManifestError(f"event {event!r} is not one of {', '.join(EVENTS)}")
    fields = _fields_of(event)
    unknown = sorted(set(raw) - set(fields))
    missing = [name for name in fields if name not in raw]
    if unknown or missing:
        raise ManifestError(f"missing {', '.join(missing)}" if missing else f"unknown fields {unknown}")
    for name in fields:
        kind = int if name in _INT_FIELDS else str
        if type(raw[name]) is not kind:
            raise ManifestError(f"{name}: expected {'an integer' if kind is int else 'a string'}")
    manifest = Manifest(**raw)
    if manifest.v != MANIFEST_VERSION:
        raise ManifestError(f"version {manifest.v} is not supported (expected {MANIFEST_VERSION})")
    for name in ("prev", "wav_sha256", "sidecar_sha256", "key_id"):
        if not _HEX64.fullmatch(getattr(manifest, name)):
            raise ManifestError(f"{name}: not a hex SHA-256")
    body = canonical(raw)
    if body[:-1] + b',"sig":"' + sig_text.encode("ascii") + b'"}' != line:
        raise ManifestError("not in canonical form (keys sorted, no spaces, sig last): the line was edited")
    return ParsedLine(manifest, body, signature)


@dataclass(frozen=True)
class ChainProblem:
    """One broken rule; ``calls`` are the calls it concerns, the first being the one to blame."""

    line: int | None
    calls: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class ChainEntry:
    line: int
    manifest: Manifest


@dataclass(frozen=True)
class ChainCheck:
    entries: tuple[ChainEntry, ...]
    """Every parseable manifest, in chain order (links may still be broken: see problems)."""
    problems: tuple[ChainProblem, ...]
    head: str
    """Hash of the last line: write it down to detect later truncation of the chain."""

    def latest(self) -> dict[str, ChainEntry]:
        """Per call, its last manifest (a later seal of the same call supersedes an earlier)."""
        return {entry.manifest.call_id: entry for entry in self.entries}


def _call_hint(line: bytes) -> str:
    match = re.search(rb'"call_id":\s*"([^"]{1,200})"', line)
    return match.group(1).decode("ascii", "replace") if match else ""


def check_chain(
    lines: Sequence[bytes], chain: str, keys: Mapping[str, TrustedKey], torn_tail: bool = False
) -> ChainCheck:
    """Check every line's form and signature and every link; never raises for bad content."""
    problems: list[ChainProblem] = []
    entries: list[ChainEntry] = []
    prev_hash, prev_seq, prev_call = GENESIS, 0, ""
    for number, line in enumerate(lines, start=1):
        this_hash = entry_hash(line)
        try:
            parsed = parse_line(line)
        except ManifestError as exc:
            hint = _call_hint(line)
            who = (hint,) if hint else ()
            problems.append(ChainProblem(number, who, f"not a valid manifest: {exc}"))
            prev_hash, prev_seq, prev_call = this_hash, prev_seq + 1, hint
            continue
        m = parsed.manifest
        entries.append(ChainEntry(number, m))
        if m.chain != chain:
            problems.append(
                ChainProblem(
                    number, (m.call_id,), f"belongs to chain {m.chain!r}, not {chain!r}: it was moved here"
                )
            )
        key = keys.get(m.key_id)
        if key is None:
            problems.append(
                ChainProblem(
                    number,
                    (m.call_id,),
                    f"signed by key {m.key_id[:16]}..., which is not a trusted public key",
                )
            )
        elif not key.verifies(parsed.body, parsed.signature):
            problems.append(
                ChainProblem(
                    number, (m.call_id,), "signature does not verify: the manifest was changed after signing"
                )
            )
        problems.extend(_link_problems(number, m, prev_hash, prev_seq, prev_call))
        prev_hash, prev_seq, prev_call = this_hash, m.seq, m.call_id
    if torn_tail:
        problems.append(
            ChainProblem(
                len(lines) + 1, (), "last line is incomplete: a seal was cut short or the file was truncated"
            )
        )
    return ChainCheck(tuple(entries), tuple(problems), prev_hash)


def _link_problems(
    number: int, m: Manifest, prev_hash: str, prev_seq: int, prev_call: str
) -> list[ChainProblem]:
    """Why line ``number`` does not follow the line before it (empty if it does)."""
    if m.seq == prev_seq + 1 and m.prev == prev_hash:
        return []
    if m.seq <= prev_seq:
        return [
            ChainProblem(
                number, (m.call_id,), f"seq {m.seq} follows seq {prev_seq}: manifests reordered or duplicated"
            )
        ]
    if m.seq > prev_seq + 1:
        missing = m.seq - prev_seq - 1
        span = f"seq {prev_seq + 1}" if missing == 1 else f"seq {prev_seq + 1}..{m.seq - 1}"
        more = "" if missing == 1 else f" (and {missing - 1} call(s) before it)"
        return [
            ChainProblem(
                number,
                (m.prev_call_id, m.call_id),
                f"removed from the chain: {span} missing before line {number}"
                f" (call {m.call_id}), whose manifest names call {m.prev_call_id!r}"
                f" as the one before{more}",
            )
        ]
    if m.prev_call_id == prev_call:
        return [
            ChainProblem(
                number - 1,
                (prev_call, m.call_id),
                f"manifest changed after it was chained: line {number} (call {m.call_id})"
                " holds a different previous-hash",
            )
        ]
    return [
        ChainProblem(
            number,
            (m.prev_call_id, m.call_id),
            f"removed from the chain: line {number} (call {m.call_id}) follows call"
            f" {m.prev_call_id!r}, but line {number - 1} is call {prev_call!r}",
        )
    ]
