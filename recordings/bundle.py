"""The regulator bundle: chosen calls in one zip that can be checked with standard tools only.

Layout::

    VERIFY.txt                       how to check it: sha256sum, sed, base64, openssl pkeyutl
    verify.sh                        the same steps as a script (bash, coreutils, OpenSSL 3)
    public-key.pem                   the Ed25519 key that signed the manifests; KEY_ID in VERIFY.txt
    calls.json                       one summary object per call (masked numbers only)
    SHA256SUMS                       every file under calls/ (convenience: the manifests are the proof)
    calls/CALL/CALL.wav              the recording, byte for byte as sealed
    calls/CALL/CALL.json             its sidecar (who said what, outcome, pauses), as sealed
    calls/CALL/CALL.transcript.txt   the transcript as text
    calls/CALL/manifest.jsonl        the signed manifest line that seals both files

Every call is checked against its manifest (signature by the service key, file hashes) before
anything is written; a call that fails is refused by name. The zip is written 0600 next to its
destination and moved into place only once complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from recordings.chain_store import read_chain
from recordings.errors import RecordingError
from recordings.manifest import ManifestError, parse_line
from recordings.private_fs import open_private
from recordings.sidecar import Sidecar, iso, read_sidecar
from recordings.signing import TrustedKey
from recordings.wav_writer import file_sha256

_READABLE = 0o644 << 16
_EXECUTABLE = 0o755 << 16


@dataclass(frozen=True)
class BundleCall:
    """One call checked and ready to go into the bundle."""

    call_id: str
    sidecar_path: Path
    wav_path: Path
    sidecar: Sidecar
    manifest_line: bytes


@dataclass(frozen=True)
class BundleReport:
    path: Path
    calls: tuple[str, ...]
    key_id: str
    bytes: int


def _manifest_line(folder: Path, call_id: str) -> bytes | None:
    """The call's latest manifest line in its folder's chain (``None`` if it has none)."""
    needle = f'"call_id":"{call_id}"'.encode()
    found = None
    for line in read_chain(folder).lines:
        if needle in line:
            found = line
    return found


def check_call(sidecar_path: Path, key: TrustedKey) -> BundleCall:
    """Read a call and prove it intact against its signed manifest; raises naming what fails."""
    sidecar = read_sidecar(sidecar_path)
    call_id = sidecar.call_id
    if sidecar.status == "recording":
        raise RecordingError(f"call {call_id} is still being recorded")
    line = _manifest_line(sidecar_path.parent, call_id)
    if line is None:
        raise RecordingError(f"call {call_id} is not in the manifest chain of {sidecar_path.parent}")
    try:
        parsed = parse_line(line)
    except ManifestError as exc:
        raise RecordingError(f"call {call_id}: its manifest is not valid: {exc}") from None
    manifest = parsed.manifest
    if manifest.purged:
        raise RecordingError(f"call {call_id} was purged")
    if manifest.key_id != key.key_id or not key.verifies(parsed.body, parsed.signature):
        raise RecordingError(f"call {call_id}: its manifest's signature does not verify with {key.source}")
    wav = sidecar_path.parent / manifest.wav
    for path, expected in ((wav, manifest.wav_sha256), (sidecar_path, manifest.sidecar_sha256)):
        if not path.exists():
            raise RecordingError(f"call {call_id}: {path.name} is missing")
        if file_sha256(path) != expected:
            raise RecordingError(
                f"call {call_id}: {path.name} changed since it was sealed (recordings verify)"
            )
    return BundleCall(call_id, sidecar_path, wav, sidecar, line)


def transcript_text(sidecar: Sidecar) -> str:
    lines = [
        f"call {sidecar.call_id}  {sidecar.direction}  from {sidecar.from_masked}  to {sidecar.to_masked}",
        f"started {iso(sidecar.started_at)}  ended {iso(sidecar.ended_at) if sidecar.ended_at else '-'}"
        f"  flow {sidecar.flow_name or '-'} {sidecar.flow_version}  outcome {sidecar.outcome or '-'}",
        "channels: left = caller, right = bot",
        "",
    ]
    lines += [pause.describe() for pause in sidecar.pauses]
    lines += [turn.describe() for turn in sidecar.turns]
    if not sidecar.turns:
        lines.append("(no transcript)")
    return "\n".join(lines) + "\n"


def _summary(call: BundleCall) -> dict[str, Any]:
    s = call.sidecar
    return {
        "call_id": s.call_id,
        "direction": s.direction,
        "from": s.from_masked,
        "to": s.to_masked,
        "started_at": iso(s.started_at),
        "ended_at": iso(s.ended_at) if s.ended_at else None,
        "duration_s": s.duration_s,
        "flow": s.flow_name,
        "flow_version": s.flow_version,
        "outcome": s.outcome,
        "campaign": s.tags.get("campaign", ""),
        "status": s.status,
        "files": {
            "wav": f"calls/{s.call_id}/{call.wav_path.name}",
            "sidecar": f"calls/{s.call_id}/{call.sidecar_path.name}",
            "transcript": f"calls/{s.call_id}/{s.call_id}.transcript.txt",
            "manifest": f"calls/{s.call_id}/manifest.jsonl",
        },
    }


def export_bundle(
    calls: Sequence[BundleCall],
    key: TrustedKey,
    out: Path,
    *,
    before_commit: Callable[[], None] | None = None,
    exported_by: str = "",
) -> BundleReport:
    """Write the zip at ``out`` (refused if it exists); ``before_commit`` runs just before it
    appears there (the access log, which may still refuse the export)."""
    if not calls:
        raise RecordingError("no calls to export")
    if out.exists():
        raise RecordingError(f"{out}: already exists; choose another --out")
    if not out.parent.is_dir():
        raise RecordingError(f"{out.parent}: no such folder")
    pem = key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    sums: list[str] = []
    try:
        with open(open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "wb") as handle:
            with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
                for call in calls:
                    base = f"calls/{call.call_id}"
                    wav_name = f"{base}/{call.wav_path.name}"
                    _add_file(bundle, wav_name, call.wav_path, sums)
                    _add_file(bundle, f"{base}/{call.sidecar_path.name}", call.sidecar_path, sums)
                    _add(
                        bundle,
                        f"{base}/{call.call_id}.transcript.txt",
                        transcript_text(call.sidecar).encode("utf-8"),
                        sums,
                    )
                    _add(bundle, f"{base}/manifest.jsonl", call.manifest_line + b"\n", sums)
                _add(bundle, "public-key.pem", pem)
                _add(
                    bundle,
                    "calls.json",
                    json.dumps([_summary(c) for c in calls], ensure_ascii=False, indent=2).encode() + b"\n",
                )
                _add(bundle, "SHA256SUMS", "".join(sums).encode("utf-8"))
                _add(
                    bundle,
                    "VERIFY.txt",
                    verify_text(key.key_id, [c.call_id for c in calls], exported_by).encode(),
                )
                _add(bundle, "verify.sh", VERIFY_SCRIPT.encode(), mode=_EXECUTABLE)
            handle.flush()
            os.fsync(handle.fileno())
        if before_commit is not None:
            before_commit()
        if out.exists():
            raise RecordingError(f"{out}: appeared while the bundle was written; choose another --out")
        os.replace(tmp, out)
    except OSError as exc:
        raise RecordingError(f"{out}: cannot write the bundle: {exc.strerror or exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return BundleReport(out, tuple(c.call_id for c in calls), key.key_id, out.stat().st_size)


def _add(
    bundle: zipfile.ZipFile, name: str, data: bytes, sums: list[str] | None = None, mode: int = _READABLE
) -> None:
    info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    info.external_attr = mode
    info.compress_type = zipfile.ZIP_DEFLATED
    bundle.writestr(info, data)
    if sums is not None:
        sums.append(f"{hashlib.sha256(data).hexdigest()}  {name}\n")


def _add_file(bundle: zipfile.ZipFile, name: str, path: Path, sums: list[str]) -> None:
    """Copy ``path`` into the bundle, hashing the bytes actually written."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc.strerror}") from exc
    _add(bundle, name, data, sums)


def verify_text(key_id: str, call_ids: Sequence[str], exported_by: str) -> str:
    shown = ", ".join(call_ids[:20]) + (f" and {len(call_ids) - 20} more" if len(call_ids) > 20 else "")
    fields = {
        "key_id": key_id,
        "count": str(len(call_ids)),
        "calls": shown,
        "exported_by": exported_by or "the operator",
    }
    text = VERIFY_TEXT
    for name, value in fields.items():
        text = text.replace(f"{{{name}}}", value)
    return text


VERIFY_TEXT = """\
Call recordings bundle: {count} call(s): {calls}
Exported by {exported_by}.

Each call in calls/CALL/ is a stereo WAV (left = caller, right = bot), its sidecar CALL.json
(the transcript per speaker, outcome, pauses; numbers masked), the transcript as text, and
manifest.jsonl: the one line the recording system appended to its tamper-evident, signed
hash chain when it sealed the call. The manifest holds the SHA-256 of the WAV and of the
sidecar and is signed with Ed25519. If the signature verifies and both hashes match, the
files are exactly what was recorded.

The signing key
---------------
public-key.pem is the public key. Its id (the SHA-256 of its 32 raw bytes) is

    KEY_ID {key_id}

Compare it with the key id the operator published or gave you beforehand (a key shipped in
the same bundle proves nothing on its own):

    openssl pkey -pubin -in public-key.pem -outform DER | tail -c 32 | sha256sum

Every manifest names the key that signed it ("key_id"), which must be this one.

Check everything at once
------------------------
Needs bash, coreutils (sha256sum, base64), sed, grep and OpenSSL 3:

    sh verify.sh            # or: bash verify.sh

It prints "OK CALL" per call and exits 0 only when every signature and every hash checks.

Check one call by hand
----------------------
    cd calls/CALL
    # 1. the signed bytes are the line without its ,"sig":"..." part; the signature is base64
    sed -E 's/,"sig":"[^"]*"\\}$/}/' manifest.jsonl | tr -d '\\n' > manifest.msg
    sed -E 's/.*,"sig":"([^"]*)"\\}$/\\1/' manifest.jsonl | base64 -d > manifest.sig
    openssl pkeyutl -verify -pubin -inkey ../../public-key.pem -rawin -in manifest.msg -sigfile manifest.sig
    #    -> Signature Verified Successfully
    # 2. the files are the ones the manifest names
    grep -o '"wav_sha256":"[0-9a-f]*"' manifest.jsonl
    grep -o '"sidecar_sha256":"[0-9a-f]*"' manifest.jsonl
    sha256sum CALL.wav CALL.json             # must print the same two hashes

The transcript text (CALL.transcript.txt), calls.json and SHA256SUMS are conveniences
written at export time; they are not signed. The signed manifest and the sidecar are the
record. The manifest's "chain", "seq" and "prev" fields place the call in the day's hash
chain on the recording system, which the operator can show with `recordings verify`.
"""

VERIFY_SCRIPT = r"""#!/usr/bin/env bash
# Checks every call in this bundle: Ed25519 signature of its manifest, SHA-256 of its files.
# Needs bash, coreutils, sed, grep and OpenSSL 3. Exit status 0 only if every call checks.
set -u
cd "$(dirname "$0")" || exit 2
key=public-key.pem
key_id=$(openssl pkey -pubin -in "$key" -outform DER | tail -c 32 | sha256sum | cut -d' ' -f1)
echo "KEY $key_id $key"
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
failed=0
total=0
field() { grep -o "\"$2\":\"[^\"]*\"" "$1" | head -n 1 | sed -E 's/.*:"([^"]*)"/\1/'; }
for manifest in calls/*/manifest.jsonl; do
    dir=$(dirname "$manifest")
    call=$(basename "$dir")
    total=$((total + 1))
    problems=""
    sed -E 's/,"sig":"[^"]*"\}$/}/' "$manifest" | tr -d '\n' > "$tmp/msg"
    sed -E 's/.*,"sig":"([^"]*)"\}$/\1/' "$manifest" | base64 -d > "$tmp/sig" 2>/dev/null
    if ! openssl pkeyutl -verify -pubin -inkey "$key" -rawin -in "$tmp/msg" -sigfile "$tmp/sig" \
            >/dev/null 2>&1; then
        problems="$problems; signature does not verify"
    fi
    if [ "$(field "$manifest" key_id)" != "$key_id" ]; then
        problems="$problems; signed by key $(field "$manifest" key_id), not $key_id"
    fi
    for kind in wav sidecar; do
        name=$(field "$manifest" "$kind")
        want=$(field "$manifest" "${kind}_sha256")
        if [ ! -f "$dir/$name" ]; then
            problems="$problems; $name is missing"
        elif [ "$(sha256sum < "$dir/$name" | cut -d' ' -f1)" != "$want" ]; then
            problems="$problems; $name does not match its SHA-256 in the manifest"
        fi
    done
    if [ -n "$problems" ]; then
        echo "FAILED $call:${problems#;}"
        failed=$((failed + 1))
    else
        echo "OK $call"
    fi
done
echo "$((total - failed)) of $total calls verified"
[ "$failed" -eq 0 ]
"""
