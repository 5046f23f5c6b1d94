"""Hot reload for ``serve``: hand out the current valid flow, re-validating when files change.

A call keeps the :class:`~flows.model.Flow` object it started with, so reloading never
touches calls in progress. An invalid edit is logged and the previous flow stays in service:
a typo must not take the hotline down. A valid flow's warnings are logged when it loads. The
mechanism is :class:`config.hot_reload.HotReloaded`, shared with the alert rules; a flow's
stamp covers every file it read (its subflows and shared files too).
"""

from __future__ import annotations

import logging
from pathlib import Path

from config.hot_reload import HotReloaded, ReloadLog, file_stamps
from config.logs import log_event
from flows.errors import FlowValidationError, Problem
from flows.loader import load_flow
from flows.model import Flow

_LOGGER = logging.getLogger("ivr.flows")
_LOG = ReloadLog(_LOGGER, "flow_reload_rejected", "flow_reloaded", problem="flow_problem", path_field="flow")


class FlowRepository(HotReloaded[Flow, Problem]):
    """The flow at ``path``. Cheap to poll: :meth:`current` only stats the files it read.

    The first load must succeed (raises :class:`FlowValidationError`); later invalid versions
    are kept out and listed in :attr:`problems` until the file is fixed.
    """

    def __init__(self, path: str | Path) -> None:
        main = Path(path)
        super().__init__(
            main,
            load_flow,
            invalid=FlowValidationError,
            problems_of=lambda exc: exc.problems,
            stamp=lambda flow: file_stamps([main, *flow.sources]),
            log=_LOG,
            describe=lambda flow: {"name": flow.metadata.name, "version": flow.metadata.version},
            on_load=_log_warnings,
        )

    @property
    def flow(self) -> Flow:
        """The flow in service, without checking the files."""
        return self.value


def _log_warnings(flow: Flow) -> None:
    """A flow in service with warnings (e.g. an order cancelled on one unconfirmed answer)."""
    for problem in flow.warnings:
        log_event("flow_warning", logging.WARNING, _LOGGER, problem=str(problem))
