"""Hot reload of the alert rules, the way :class:`flows.FlowRepository` reloads a flow (both are
a :class:`config.hot_reload.HotReloaded`).

A call takes the rules in service when it starts and keeps them. An edit is validated when a
call asks for the rules after the file changed; an invalid edit is logged (each problem as
``FILE:LINE:COL``) and the previous rules stay: a typo must not switch the alerts off.
"""

from __future__ import annotations

import logging
from pathlib import Path

from config.hot_reload import HotReloaded, ReloadLog, file_stamps
from flows.errors import Problem
from supervision.alert_rules import AlertRules, AlertRulesError, load_rules

_LOG = ReloadLog(logging.getLogger("ivr.supervision"), "alert_rules_rejected", "alert_rules_reloaded")


class AlertRulesRepository(HotReloaded[AlertRules, Problem]):
    """The rules at ``path``; the first load must succeed (raises :class:`AlertRulesError`)."""

    def __init__(self, path: str | Path) -> None:
        file = Path(path)
        super().__init__(
            file,
            load_rules,
            invalid=AlertRulesError,
            problems_of=lambda exc: exc.problems,
            stamp=lambda _rules: file_stamps([file]),
            log=_LOG,
            describe=lambda rules: {"rules": len(rules.rules)},
        )

    @property
    def rules(self) -> AlertRules:
        return self.value
