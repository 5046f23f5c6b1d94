"""Published versions of a flow file: numbered, who and when, diffs, one-step rollback.

``serve`` reads one file per flow (the *served* file) and reloads it when it changes
(:class:`~flows.repository.FlowRepository`). Publishing validates the candidate text exactly as
``serve`` would load it (next to the served file, so its ``include:`` paths resolve), then
swaps it in with one ``os.replace``: a reader sees the old file or the new one, never half of
either, and an invalid text never reaches the served path. Every version is kept as
``NNNN.yaml`` plus one JSON line in ``history.jsonl`` in the flow's history folder, so a
rollback is just publishing an older text again, and nothing ever published is lost. A served
file edited by hand since the last publish is kept as a version of its own (``found``) before
it is replaced.
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from config.logs import log_event
from flows.errors import FlowError, FlowValidationError, Problem
from flows.loader import load_flow

_LOGGER = logging.getLogger("ivr.flows")
HISTORY_FILE = "history.jsonl"
ACTIONS = ("found", "publish", "rollback")
MAX_FLOW_BYTES = 1_000_000


class FlowHistoryError(FlowError):
    """The history folder of a flow is unreadable or a version asked for does not exist."""


@dataclass(frozen=True)
class FlowVersion:
    """One published text of a flow; ``source`` is the version a rollback republished."""

    number: int
    user: str
    at: datetime
    sha256: str
    action: str
    source: int | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": self.number,
                "user": self.user,
                "at": self.at.isoformat(),
                "sha256": self.sha256,
                "action": self.action,
                "source": self.source,
            },
            sort_keys=True,
        )


class FlowVersions:
    """The history of the flow served from ``served``, kept in ``history_dir``."""

    def __init__(self, served: Path, history_dir: Path) -> None:
        self.served = served
        self.history_dir = history_dir

    def versions(self) -> list[FlowVersion]:
        """Every version, oldest first (empty before the first publish)."""
        path = self.history_dir / HISTORY_FILE
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [_parse(line, f"{path}:{number}") for number, line in enumerate(lines, 1) if line.strip()]

    def latest(self) -> FlowVersion | None:
        found = self.versions()
        return found[-1] if found else None

    def text(self, number: int) -> str:
        """The text of version ``number``."""
        try:
            return self._version_path(number).read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise FlowHistoryError(f"{self.served.name}: no version {number} in {self.history_dir}") from exc

    def check(self, text: str) -> list[Problem]:
        """Every error and warning in ``text`` as the served file, reported against its name."""
        try:
            with self._candidate(text) as candidate:
                flow = load_flow(candidate)
        except FlowValidationError as exc:
            return exc.problems
        return list(flow.warnings)

    def publish(self, text: str, user: str, now: datetime) -> FlowVersion:
        """Validate ``text`` and serve it as the next version; raises
        :class:`FlowValidationError` (problems at the served file's lines) if it is invalid."""
        return self._publish(text, user, now, "publish", None)

    def rollback(self, number: int, user: str, now: datetime) -> FlowVersion:
        """Serve version ``number`` again, as a new version (history only grows)."""
        return self._publish(self.text(number), user, now, "rollback", number)

    def diff(self, old: int, new: int) -> list[str]:
        """A unified diff from version ``old`` to version ``new``."""
        return list(
            difflib.unified_diff(
                self.text(old).splitlines(keepends=True),
                self.text(new).splitlines(keepends=True),
                fromfile=f"{self.served.name} v{old}",
                tofile=f"{self.served.name} v{new}",
            )
        )

    def _publish(self, text: str, user: str, now: datetime, action: str, source: int | None) -> FlowVersion:
        if not user.strip():
            raise FlowHistoryError(f"{self.served.name}: a version must name who published it")
        _private_dirs(self.history_dir)
        with self._locked():
            with self._candidate(text) as candidate:
                load_flow(candidate)  # raises FlowValidationError, problems renamed to the served file
                self._keep_hand_edit(now)
                version = self._record(text, user, now, action, source)
                candidate.chmod(self._served_mode())
                self._newer_than_served(candidate)
                os.replace(candidate, self.served)
            _fsync_dir(self.served.parent)
        log_event(
            "flow_published",
            logging.INFO,
            _LOGGER,
            flow=str(self.served),
            version=version.number,
            action=action,
            source=source,
            user=user,
        )
        return version

    def _keep_hand_edit(self, now: datetime) -> None:
        """A served file that differs from the last published text becomes a version first."""
        try:
            current = self.served.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        latest = self.latest()
        if latest is None or latest.sha256 != _sha256(current):
            self._record(current, "(file on disk)", now, "found", None)

    def _record(self, text: str, user: str, now: datetime, action: str, source: int | None) -> FlowVersion:
        latest = self.latest()
        version = FlowVersion((latest.number if latest else 0) + 1, user, now, _sha256(text), action, source)
        _write_private(self._version_path(version.number), text)
        fd = os.open(self.history_dir / HISTORY_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "ab") as file:
            file.write((version.to_json() + "\n").encode())
            file.flush()
            os.fsync(file.fileno())
        return version

    def _version_path(self, number: int) -> Path:
        return self.history_dir / f"{number:04d}.yaml"

    def _newer_than_served(self, candidate: Path) -> None:
        """``serve`` notices a change by mtime and size: a same-size text written within the
        file system's clock tick must still look newer, or the old version stays in service."""
        try:
            old = self.served.stat().st_mtime_ns
        except FileNotFoundError:
            return
        new = candidate.stat()
        if new.st_mtime_ns <= old:
            later = old + 1_000_000
            os.utime(candidate, ns=(new.st_atime_ns, later))

    def _served_mode(self) -> int:
        try:
            return self.served.stat().st_mode & 0o777
        except FileNotFoundError:
            return 0o644

    @contextlib.contextmanager
    def _candidate(self, text: str) -> Iterator[Path]:
        """``text`` in a hidden file beside the served one; problems name the served file."""
        data = text.encode("utf-8")
        if len(data) > MAX_FLOW_BYTES:
            raise FlowValidationError(
                [Problem(str(self.served), 1, 1, f"flow text is {len(data)} bytes; at most {MAX_FLOW_BYTES}")]
            )
        candidate = self.served.with_name(f".{self.served.stem}.candidate-{os.getpid()}{self.served.suffix}")
        try:
            _write_private(candidate, text)
            try:
                yield candidate
            except FlowValidationError as exc:
                raise FlowValidationError(
                    [_rename(p, candidate, self.served) for p in exc.problems]
                ) from None
        finally:
            candidate.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One publisher at a time per flow (console workers, two admins clicking at once)."""
        fd = os.open(self.history_dir / ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _rename(problem: Problem, candidate: Path, served: Path) -> Problem:
    if Path(problem.file) != candidate:
        return problem
    return Problem(str(served), problem.line, problem.col, problem.message, problem.severity)


def _parse(line: str, where: str) -> FlowVersion:
    try:
        raw = json.loads(line)
        version = FlowVersion(
            int(raw["version"]),
            str(raw["user"]),
            datetime.fromisoformat(raw["at"]),
            str(raw["sha256"]),
            str(raw["action"]),
            None if raw.get("source") is None else int(raw["source"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise FlowHistoryError(f"{where}: unreadable version record ({exc})") from exc
    if version.action not in ACTIONS:
        raise FlowHistoryError(f"{where}: unknown action '{version.action}'")
    return version


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(text.encode("utf-8"))
        file.flush()
        os.fsync(file.fileno())


def _private_dirs(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def _fsync_dir(folder: Path) -> None:
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
