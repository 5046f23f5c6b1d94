"""Sealed calls waiting to be indexed: one marker file each in ``<recordings>/.unindexed/``.

A call is registered here when it is sealed, before anything tries to index it, and
unregistered once its row is in the call index (:mod:`recordings.call_index`). So a call sealed
while the database was down, by a recorder that was given no database, or by start-up recovery,
is indexed by the next ``recordings`` command or seal; nothing is lost and nothing is scanned.
"""

from __future__ import annotations

import os
from pathlib import Path

from recordings.private_fs import make_private_dirs, open_private

UNINDEXED_DIR = ".unindexed"


def mark_unindexed(root: Path, call_id: str, sidecar: Path) -> None:
    """Register a sealed call for indexing (its marker holds the sidecar path under ``root``)."""
    folder = root / UNINDEXED_DIR
    make_private_dirs(folder)
    fd = open_private(folder / call_id, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with open(fd, "w", encoding="utf-8") as handle:
        handle.write(sidecar.relative_to(root).as_posix() if sidecar.is_relative_to(root) else str(sidecar))


def unmark(root: Path, call_id: str) -> None:
    (root / UNINDEXED_DIR / call_id).unlink(missing_ok=True)


def pending(root: Path) -> list[tuple[str, Path]]:
    """(call id, sidecar) of every sealed call waiting to be indexed, by call id."""
    folder = root / UNINDEXED_DIR
    if not folder.is_dir():
        return []
    found = []
    for marker in sorted(folder.iterdir()):
        try:
            found.append((marker.name, root / marker.read_text(encoding="utf-8").strip()))
        except (OSError, UnicodeDecodeError):
            continue
    return found
