"""The signing key file: created once, private, exported for auditors, refused when exposed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from recordings import RecordingError
from recordings.signing import (
    default_key_file,
    load_signer,
    load_trusted_key,
    public_key_path,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_key_is_created_0600_in_a_0700_folder_with_a_0644_public_export(tmp_path: Path) -> None:
    key_file = tmp_path / "data" / "keys" / "recordings-ed25519.pem"
    old = os.umask(0o077)  # a strict umask must not hide the public key from auditors
    try:
        signer = load_signer(key_file)
    finally:
        os.umask(old)
    public = public_key_path(key_file)
    assert public.name == "recordings-ed25519.pub.pem"
    assert (mode(key_file), mode(key_file.parent), mode(tmp_path / "data"), mode(public)) == (
        0o600, 0o700, 0o700, 0o644)
    assert key_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    trusted = load_trusted_key(public)
    assert trusted.key_id == signer.key_id
    assert trusted.verifies(b"msg", signer.sign(b"msg"))
    assert not trusted.verifies(b"other", signer.sign(b"msg"))
    assert load_trusted_key(key_file).key_id == signer.key_id  # a private key file also serves
    assert not list(key_file.parent.glob(".*tmp"))


def test_second_load_returns_the_same_key_and_restores_a_deleted_export(tmp_path: Path) -> None:
    key_file = tmp_path / "k.pem"
    first = load_signer(key_file)
    public_key_path(key_file).unlink()
    assert load_signer(key_file).key_id == first.key_id
    # a fresh process would re-read the file: bypass the cache by touching it
    os.utime(key_file, ns=(1, 1))
    again = load_signer(key_file)
    assert again.key_id == first.key_id
    assert load_trusted_key(public_key_path(key_file)).key_id == first.key_id


def test_group_readable_key_is_refused_naming_the_file_and_the_rule(tmp_path: Path) -> None:
    key_file = tmp_path / "k.pem"
    load_signer(key_file)
    key_file.chmod(0o640)
    with pytest.raises(RecordingError) as info:
        load_signer(key_file)
    assert str(info.value) == (f"{key_file}: signing key is readable by group or others (mode 0640);"
                               f" it must be 0600: chmod 600 {key_file}")


def test_wrong_kind_of_key_and_garbage_are_refused(tmp_path: Path) -> None:
    ec_file = tmp_path / "ec.pem"
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_file.write_bytes(ec_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
    ec_file.chmod(0o600)
    with pytest.raises(RecordingError, match=r"ec\.pem: not an Ed25519 private key"):
        load_signer(ec_file)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello")
    garbage.chmod(0o600)
    with pytest.raises(RecordingError, match=r"garbage\.pem: not a readable unencrypted PEM private key"):
        load_signer(garbage)
    with pytest.raises(RecordingError, match=r"garbage\.pem: not a PEM key"):
        load_trusted_key(garbage)
    with pytest.raises(RecordingError, match=r"nope\.pem: cannot read the public key"):
        load_trusted_key(tmp_path / "nope.pem")


def test_default_key_file_matches_the_settings_default_layout(tmp_path: Path) -> None:
    assert default_key_file(tmp_path / "recordings") == tmp_path / "keys" / "recordings-ed25519.pem"
    assert public_key_path(Path("/k/other.key")) == Path("/k/other.key.pub.pem")
