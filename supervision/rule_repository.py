"""Hot reload of the alert rules, the way :class:`flows.FlowRepository` reloads a flow.

A call takes the rules in service when it starts and keeps them. An edit is validated when a
call asks for the rules after the file changed; an invalid edit is logged (each problem as
``FILE:LINE:COL``) and the previous rules stay: a typo must not switch the alerts off.
"""

from __future__ import annotations

import logging
from pathlib import Path

from config.logs import log_event
from flows.errors import Problem
from supervision.alert_rules import AlertRules, AlertRulesError, load_rules

_LOGGER = logging.getLogger("ivr.supervision")


class AlertRulesRepository:
    """The rules at ``path``; the first load must succeed (raises :class:`AlertRulesError`)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.problems: list[Problem] = []
        self.reloads = 0
        self._rules = load_rules(self.path)
        self._stamp = self._stat()

    @property
    def rules(self) -> AlertRules:
        return self._rules

    def current(self) -> AlertRules:
        """The rules new calls should use: reloaded first if the file changed."""
        stamp = self._stat()
        if stamp != self._stamp:
            self._stamp = stamp
            self.reload()
        return self._rules

    def reload(self) -> list[Problem]:
        """Load the file now; returns its problems (empty when the new rules are in service)."""
        try:
            rules = load_rules(self.path)
        except AlertRulesError as exc:
            self.problems = exc.problems
            log_event(
                "alert_rules_rejected",
                logging.ERROR,
                _LOGGER,
                file=str(self.path),
                problems=len(exc.problems),
                first=str(exc.problems[0]) if exc.problems else "",
            )
            return exc.problems
        self._rules = rules
        self.problems = []
        self.reloads += 1
        log_event("alert_rules_reloaded", logger=_LOGGER, file=str(self.path), rules=len(rules.rules))
        return []

    def _stat(self) -> tuple[int, int]:
        try:
            info = self.path.stat()
        except OSError:
            return (-1, -1)
        return (info.st_mtime_ns, info.st_size)
