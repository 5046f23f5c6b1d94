"""A validated file that is re-read when it changes on disk, for every kind of hot-reloaded file.

``serve`` polls its flow and its alert rules between calls. Both follow one contract, kept
here once: the first load must succeed (its error propagates); later, :meth:`HotReloaded.current`
costs a ``stat`` per file until a stamp changes, and then the file is loaded again. An invalid
edit is logged, its problems kept in :attr:`HotReloaded.problems`, and the previous version
stays in service until the next change: a typo must not take a hotline (or its alerts) down.
Whoever holds a version (a call in progress) keeps it; reloading only changes what comes next.

It lives in the foundation because it knows nothing of flows or rules: the caller passes how to
load, how to stamp, which error means "invalid" and what to log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from config.logs import log_event

T = TypeVar("T")
P = TypeVar("P")
E = TypeVar("E", bound=Exception)

FileStamp = tuple[str, int, int]
"""(path, mtime in ns, size); ``-1, -1`` for a file that cannot be stat'ed (deleted, moved)."""


def file_stamps(paths: Iterable[Path]) -> tuple[FileStamp, ...]:
    """The stamps of ``paths``, in order, each path once: what changes when any of them is edited,
    replaced, deleted or comes back."""
    stamps: list[FileStamp] = []
    for path in dict.fromkeys(paths):
        try:
            info = path.stat()
            stamps.append((str(path), info.st_mtime_ns, info.st_size))
        except OSError:
            stamps.append((str(path), -1, -1))
    return tuple(stamps)


@dataclass(frozen=True)
class ReloadLog:
    """The log events of one kind of file (e.g. ``flow_reloaded``), so its lines keep their names."""

    logger: logging.Logger
    rejected: str
    """ERROR: an edit was invalid (fields: the path, ``problems`` count, ``first`` problem)."""
    reloaded: str
    """INFO: a new version is in service (fields: the path and ``describe``'s)."""
    problem: str = ""
    """ERROR, one per problem of a rejected edit; empty: only the ``rejected`` line."""
    path_field: str = "file"
    """The field that names the file in both lines."""


class HotReloaded(Generic[T, P]):
    """The version of ``path`` in service. See the module docstring.

    ``load`` reads and validates the file, raising ``invalid`` (whose ``problems_of`` lists what
    is wrong) for a bad version; any other exception propagates. ``stamp`` says, from the
    version in service, what to compare on each :meth:`current` (files a version includes can be
    stamped too: see :func:`file_stamps`). ``on_load`` sees each version that goes into service,
    the first one included (e.g. to log its warnings); ``describe`` adds fields to the
    ``reloaded`` line.
    """

    def __init__(
        self,
        path: str | Path,
        load: Callable[[Path], T],
        *,
        invalid: type[E],
        problems_of: Callable[[E], Sequence[P]],
        stamp: Callable[[T], Hashable],
        log: ReloadLog,
        describe: Callable[[T], Mapping[str, object]] = lambda _value: {},
        on_load: Callable[[T], None] = lambda _value: None,
    ) -> None:
        self.path = Path(path)
        self.problems: list[P] = []
        """The problems of the last rejected edit; empty while the file on disk is in service."""
        self.reloads = 0
        """Versions put into service after the first."""

        def attempt() -> T | _Rejected[P]:
            try:
                return load(self.path)
            except invalid as exc:
                return _Rejected(list(problems_of(exc)))

        self._attempt = attempt
        self._stamp_of = stamp
        self._log = log
        self._describe = describe
        self._on_load = on_load
        self._value = load(self.path)
        self._stamp = stamp(self._value)
        on_load(self._value)

    @property
    def value(self) -> T:
        """The version in service, without checking the files."""
        return self._value

    def current(self) -> T:
        """The version new work should use: loaded again first if a stamp changed."""
        stamp = self._stamp_of(self._value)
        if stamp != self._stamp:
            self._stamp = stamp  # a rejected edit is not read again until the next change
            self.reload()
        return self._value

    def reload(self) -> list[P]:
        """Load the file now; returns its problems (empty when the new version is in service)."""
        loaded = self._attempt()
        log = self._log
        where = {log.path_field: str(self.path)}
        if isinstance(loaded, _Rejected):
            self.problems = loaded.problems
            first = str(loaded.problems[0]) if loaded.problems else ""
            fields = {**where, "problems": len(loaded.problems), "first": first}
            log_event(log.rejected, logging.ERROR, log.logger, **fields)
            if log.problem:
                for problem in loaded.problems:
                    log_event(log.problem, logging.ERROR, log.logger, problem=str(problem))
            return loaded.problems
        self._value = loaded
        self._stamp = self._stamp_of(loaded)  # what this version reads (its includes may differ)
        self.problems = []
        self.reloads += 1
        self._on_load(loaded)
        log_event(log.reloaded, logging.INFO, log.logger, **where, **self._describe(loaded))
        return []


@dataclass(frozen=True)
class _Rejected(Generic[P]):
    problems: list[P]
