"""The campaign database holds callees' numbers and names: its SQLite file is the owner's only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from dialer.db import open_database


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_sqlite_database_and_its_folder_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = tmp_path / "new" / "ivr.sqlite3"
        engine = open_database(f"sqlite:///{path}")
        engine.dispose()
    finally:
        os.umask(old)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert all(mode(p) & 0o077 == 0 for p in path.parent.iterdir())  # -wal and -shm too


def test_an_existing_world_readable_database_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "ivr.sqlite3"
    open_database(f"sqlite:///{path}").dispose()
    path.chmod(0o644)
    open_database(f"sqlite:///{path}").dispose()
    assert mode(path) == 0o600
