"""Hot reload for ``serve``: hand out the current valid flow, re-validating when files change.

A call keeps the :class:`~flows.model.Flow` object it started with, so reloading never
touches calls in progress. An invalid edit is logged and the previous flow stays in service:
a typo must not take the hotline down. A valid flow's warnings are logged when it loads.
"""

from __future__ import annotations

import logging
from pathlib import Path

from config.logs import log_event
from flows.errors import FlowValidationError, Problem
from flows.loader import load_flow
from flows.model import Flow

_LOGGER = logging.getLogger("ivr.flows")


class FlowRepository:
    """The flow at ``path``. Cheap to poll: :meth:`current` only stats the files it read.

    The first load must succeed (raises :class:`FlowValidationError`); later invalid versions
    are kept out and listed in :attr:`problems` until the file is fixed.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.problems: list[Problem] = []
        self.reloads = 0
        self._flow = load_flow(self.path)
        self._stamps = self._stat(self._flow)
        _log_warnings(self._flow)

    @property
    def flow(self) -> Flow:
        """The flow in service, without checking the files."""
        return self._flow

    def current(self) -> Flow:
        """The flow new calls should use: reloaded first if any of its files changed."""
        stamps = self._stat(self._flow)
        if stamps != self._stamps:
            self._stamps = stamps
            self.reload()
        return self._flow

    def reload(self) -> list[Problem]:
        """Load the file now; returns its problems (empty when the new version is in service)."""
        try:
            flow = load_flow(self.path)
        except FlowValidationError as exc:
            self.problems = exc.problems
            log_event(
                "flow_reload_rejected",
                logging.ERROR,
                _LOGGER,
                flow=str(self.path),
                problems=len(exc.problems),
                first=str(exc.problems[0]) if exc.problems else "",
            )
            for problem in exc.problems:
                log_event("flow_problem", logging.ERROR, _LOGGER, problem=str(problem))
            return exc.problems
        self._flow = flow
        self._stamps = self._stat(flow)
        self.problems = []
        self.reloads += 1
        _log_warnings(flow)
        log_event(
            "flow_reloaded",
            logging.INFO,
            _LOGGER,
            flow=str(self.path),
            name=flow.metadata.name,
            version=flow.metadata.version,
        )
        return []

    def _stat(self, flow: Flow) -> tuple[tuple[str, int, int], ...]:
        stamps: list[tuple[str, int, int]] = []
        for source in dict.fromkeys([self.path, *flow.sources]):
            try:
                info = source.stat()
                stamps.append((str(source), info.st_mtime_ns, info.st_size))
            except OSError:
                stamps.append((str(source), -1, -1))
        return tuple(stamps)


def _log_warnings(flow: Flow) -> None:
    """A flow in service with warnings (e.g. an order cancelled on one unconfirmed answer)."""
    for problem in flow.warnings:
        log_event("flow_warning", logging.WARNING, _LOGGER, problem=str(problem))
