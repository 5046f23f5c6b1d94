"""The Ed25519 key that signs recording manifests, and the public keys an auditor trusts.

The private key lives in one PEM file (setting ``recordings.signing_key_file``), created on
first use with mode 0600 in a 0700 folder and refused if group or others can read it, like
ssh does. Its public half is exported next to it (``NAME.pub.pem``, 0644) for auditors, who
should keep their own copy: whoever can replace both the archive and that file could re-sign.

Several ``serve`` workers may seal their first call at the same instant, so creation is
race-free (:mod:`recordings.key_files`): the losers load the winner's key. A key is identified
by the SHA-256 of its 32 raw public bytes (``key_id``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from recordings.errors import RecordingError
from recordings.key_files import FileVersion, load_key_file
from recordings.private_fs import PUBLIC_FILE

KEY_FILE_NAME = "recordings-ed25519.pem"


@dataclass(frozen=True)
class Signer:
    """A loaded private key; ``sign`` is what the manifest chain calls."""

    private_key: Ed25519PrivateKey
    key_id: str
    path: Path

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)


@dataclass(frozen=True)
class TrustedKey:
    """A public key the verifier accepts signatures from."""

    public_key: Ed25519PublicKey
    key_id: str
    source: Path

    def verifies(self, message: bytes, signature: bytes) -> bool:
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """Hex SHA-256 of the raw 32-byte key (``openssl pkey -pubin -outform DER | tail -c 32``)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_key_path(key_file: Path) -> Path:
    """``recordings-ed25519.pem`` -> ``recordings-ed25519.pub.pem`` (same folder)."""
    stem = key_file.name[: -len(".pem")] if key_file.name.endswith(".pem") else key_file.name
    return key_file.with_name(f"{stem}.pub.pem")


def default_key_file(recordings_root: Path) -> Path:
    """Where the key lives when the caller passes none: ``<data_dir>/keys/`` for the default
    layout (recordings in ``<data_dir>/recordings``), i.e. the settings default."""
    return recordings_root.parent / "keys" / KEY_FILE_NAME


_SIGNERS: dict[FileVersion, Signer] = {}


def load_signer(key_file: Path) -> Signer:
    """The signing key at ``key_file``, created (with its public export) if missing."""

    def parse(data: bytes) -> Signer:
        try:
            loaded = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise RecordingError(f"{key_file}: not a readable unencrypted PEM private key: {exc}") from exc
        if not isinstance(loaded, Ed25519PrivateKey):
            raise RecordingError(
                f"{key_file}: not an Ed25519 private key ({type(loaded).__name__});"
                " manifests are signed with Ed25519"
            )
        _export_public(loaded.public_key(), public_key_path(key_file))
        return Signer(loaded, key_id_of(loaded.public_key()), key_file)

    return load_key_file(key_file, "signing key", _new_private_pem, parse, _SIGNERS)


def _new_private_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _export_public(public_key: Ed25519PublicKey, path: Path) -> None:
    """Write the public PEM (0644) unless it already holds exactly this key."""
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with contextlib.suppress(OSError):
        if path.read_bytes() == pem:
            return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PUBLIC_FILE)
        try:
            os.fchmod(fd, PUBLIC_FILE)  # readable by auditors whatever the umask
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        raise RecordingError(f"{path}: cannot export the public key: {exc.strerror}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def load_trusted_key(path: Path) -> TrustedKey:
    """A public key from a PEM file (``BEGIN PUBLIC KEY``); a private key file is accepted too."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read the public key: {exc.strerror}") from exc
    try:
        if b"PRIVATE KEY" in data:
            private = serialization.load_pem_private_key(data, password=None)
            public: object = private.public_key()
        else:
            public = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise RecordingError(f"{path}: not a PEM key: {exc}") from exc
    if not isinstance(public, Ed25519PublicKey):
        raise RecordingError(
            f"{path}: not an Ed25519 key ({type(public).__name__}); manifests are signed with Ed25519"
        )
    return TrustedKey(public, key_id_of(public), path)
