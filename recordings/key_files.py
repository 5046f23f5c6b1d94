"""The key files of the recordings package (the Ed25519 signing key, the number key): created on
first use, kept private, read once per version.

Several ``serve`` workers may need a key at the same instant, so creation is race-free: each
writes a private temp file and ``link``s it into place; the losers use the winner's key. A key
file is 0600 in a 0700 folder and refused, like ssh does, if group or others can read it. The
parsed key is cached per file version (device, inode, mtime).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from recordings.errors import RecordingError
from recordings.private_fs import fsync_dir, make_private_dirs, open_private

KeyT = TypeVar("KeyT")
FileVersion = tuple[Path, int, int, int]


def load_key_file(
    path: Path,
    what: str,
    make: Callable[[], bytes],
    parse: Callable[[bytes], KeyT],
    cache: dict[FileVersion, KeyT],
) -> KeyT:
    """The key at ``path`` (``what``: ``signing key``, ``number key``), created from ``make()``
    if missing, parsed by ``parse`` (which raises :class:`RecordingError` for a bad file)."""
    if not path.exists():
        _create(path, what, make())
    try:
        info = path.stat()
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read the {what}: {exc.strerror}") from exc
    if info.st_mode & 0o077:
        raise RecordingError(
            f"{path}: {what} is readable by group or others (mode {stat.S_IMODE(info.st_mode):04o});"
            f" it must be 0600: chmod 600 {path}"
        )
    version = (path.resolve(), info.st_dev, info.st_ino, info.st_mtime_ns)
    if version in cache:
        return cache[version]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read the {what}: {exc.strerror}") from exc
    key = parse(data)
    cache[version] = key
    return key


def _create(path: Path, what: str, data: bytes) -> None:
    try:
        make_private_dirs(path.parent)
    except OSError as exc:
        raise RecordingError(f"{path.parent}: cannot create the key folder: {exc}") from exc
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):  # another process won the race: use its key
            os.link(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        raise RecordingError(f"{path}: cannot create the {what}: {exc.strerror}") from exc
    finally:
        tmp.unlink(missing_ok=True)
