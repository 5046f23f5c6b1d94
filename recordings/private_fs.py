"""Owner-only files and folders: transcripts, audio and manifests are personal data.

Everything the recordings package creates is ``0600`` (files) or ``0700`` (folders), whatever
the process umask, so a recording is never readable by other local users. Folders that already
exist are left as they are: an operator may have opened one to an auditors' group on purpose.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
PUBLIC_FILE = 0o644


def make_private_dirs(path: Path) -> None:
    """``mkdir -p`` where every folder created is 0700 (``Path.mkdir`` gives parents the default)."""
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it first
            os.mkdir(folder, PRIVATE_DIR)
    if not path.is_dir():
        raise NotADirectoryError(f"{path}: exists and is not a directory")


def open_private(path: Path, flags: int) -> int:
    """``os.open`` that leaves the file 0600 even if it existed before with a wider mode."""
    fd = os.open(path, flags | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
    except OSError:
        os.close(fd)
        raise
    return fd


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new file in ``folder`` survive a power cut."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def private_database_file(path: Path) -> int | None:
    """Create a SQLite file 0600 before SQLite opens it (its -wal and -shm inherit the mode).

    An existing file readable by others is tightened to owner-only; its old mode is returned so
    the caller can log it (None when nothing changed). Raises OSError.
    """
    make_private_dirs(path.parent)
    if not path.exists():
        os.close(open_private(path, os.O_RDWR | os.O_CREAT))
        return None
    mode = stat.S_IMODE(path.stat().st_mode)
    if not mode & 0o077:
        return None
    path.chmod(mode & 0o700)
    return mode
