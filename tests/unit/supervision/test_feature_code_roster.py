"""Storing a supervisor's PIN hash in the roster: checked, atomic, 0600, nothing else changed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ivr.supervisor_client import SupervisionError, load_roster, store_pin_hash

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"


def _roster(tmp_path: Path, mode: int = 0o600) -> Path:
    path = tmp_path / "supervisors.yaml"
    path.write_text('users:\n  alice: {roles: [supervisor], sip_uris: ["sip:alice@pbx"]}\n')
    os.chmod(path, mode)
    return path


def test_the_hash_is_stored_for_that_user_only(tmp_path: Path) -> None:
    path = _roster(tmp_path)
    store_pin_hash(path, "alice", HASH)
    alice = load_roster(path)["alice"]
    assert alice.pin_hash == HASH and alice.uris == frozenset({"sip:alice@pbx"})
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["supervisors.yaml"]


def test_an_unknown_user_or_an_open_roster_is_refused(tmp_path: Path) -> None:
    path = _roster(tmp_path)
    with pytest.raises(SupervisionError, match=r"users.bob: no such user"):
        store_pin_hash(path, "bob", HASH)
    os.chmod(path, 0o666)
    with pytest.raises(SupervisionError, match="others may write"):
        store_pin_hash(path, "alice", HASH)
    assert "pin_hash" not in path.read_text()


def test_a_clear_pin_is_never_written(tmp_path: Path) -> None:
    path = _roster(tmp_path)
    with pytest.raises(SupervisionError, match="expected an argon2 hash"):
        store_pin_hash(path, "alice", "2468")
    assert "2468" not in path.read_text()
