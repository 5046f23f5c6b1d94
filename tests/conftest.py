"""How the suite spreads over CPU cores when run with ``pytest -n N`` (pytest-xdist).

Most component tests wait on subprocesses, databases and brokers rather than the CPU, so two
workers finish them in about half the wall-clock time. End-to-end tests under ``tests/e2e/``
are different: each one is a real-time call between real processes whose timing is asserted, so
they all go to one worker as one unit of work, one after another, while the other worker takes
the rest file by file (module-scoped fixtures such as a speech pool start once per file).
Browser tests drive a real Chromium against a real console but assert no call timing, so they
go file by file with the rest. Without ``-n`` nothing changes.

The grouping is a scheduler rather than ``xdist_group`` marks: xdist 3.8 renames node ids to
carry a mark's group, which pytest 9.2's node ids no longer allow.
"""

from __future__ import annotations

from typing import Any

E2E_FOLDER = "tests/e2e/"


def pytest_xdist_make_scheduler(config: Any, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling  # noqa: PLC0415 (only with -n)

    class E2eTogether(LoadScopeScheduling):  # type: ignore[misc]
        """Every e2e test in one unit of work (largest first, so it starts at once)."""

        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "e2e" if path.startswith(E2E_FOLDER) else path

    return E2eTogether(config, log)
