"""Flow errors: a flow file that breaks the language rules, or a session fed the wrong thing.

Every validation problem carries the file, line and column it came from, so an admin can
jump to it; :class:`FlowValidationError` lists all problems found in one pass. A problem is an
error (the flow cannot be used) or a warning (it can, but something is risky, e.g. a question
that cancels an order on one unconfirmed answer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from config.errors import IvrError

MAX_MESSAGE_CHARS = 400
_LONG_WORD = re.compile(r"\S{81,}")


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a flow file, printed as ``FILE:LINE:COL: message``.

    A message quotes what it found; a pasted blob is cut short so the report stays readable.
    A warning prints as ``FILE:LINE:COL: warning: message`` and does not stop the flow loading.
    """

    file: str
    line: int
    col: int
    message: str
    severity: str = "error"  # error | warning

    def __post_init__(self) -> None:
        if len(self.message) > MAX_MESSAGE_CHARS:
            short = _LONG_WORD.sub(lambda m: m.group()[:60] + "...", self.message)
            if len(short) > MAX_MESSAGE_CHARS:
                short = short[: MAX_MESSAGE_CHARS - 3] + "..."
            object.__setattr__(self, "message", short)

    @property
    def is_warning(self) -> bool:
        return self.severity == "warning"

    def __str__(self) -> str:
        label = "warning: " if self.is_warning else ""
        return f"{self.file}:{self.line}:{self.col}: {label}{self.message}"


class FlowError(IvrError):
    """Base of every error raised by the flow engine."""


class FlowValidationError(FlowError):
    """A flow file is invalid; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        lines = "\n".join(str(p) for p in self.problems)
        super().__init__(f"flow is invalid ({len(self.problems)} problem(s)):\n{lines}")


class FlowRuntimeError(FlowError):
    """A session could not continue (e.g. steps that jump to each other without waiting)."""


class TemplateLimitError(FlowRuntimeError):
    """A template went past its output size, value size or time budget: the call ends politely."""


class ConversationTestError(FlowError):
    """A conversation test file is malformed (not a failing test: a broken test file)."""
