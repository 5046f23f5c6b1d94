"""A supervisor's modes on one call: listen, barge in, take over; who hears whom in each.

Pure: the supervisor leg's adapter (:mod:`ivr.supervisor_leg`) feeds it the leg's life and
the digits pressed on the supervisor's phone with ``now``; it answers with the mode changes to
carry out. The keys follow Asterisk's ChanSpy (4 listen, 5 barge, 6 take over). Taking over is
final: the bot has left the call for good, so no key brings it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Mode = Literal["listen", "barge", "takeover"]
MODES: tuple[Mode, ...] = ("listen", "barge", "takeover")
DTMF_KEYS: dict[str, Mode] = {"4": "listen", "5": "barge", "6": "takeover"}
"""Keys on the supervisor's phone, as Asterisk ChanSpy: 4 listen, 5 barge, 6 take over."""


@dataclass(frozen=True, slots=True)
class Routes:
    """Who hears whom in a mode (the supervisor always hears the caller and the bot)."""

    caller_hears_supervisor: bool
    bot_active: bool
    """The bot plays prompts, listens and runs the flow."""


ROUTES: dict[Mode | None, Routes] = {
    None: Routes(caller_hears_supervisor=False, bot_active=True),
    "listen": Routes(caller_hears_supervisor=False, bot_active=True),
    "barge": Routes(caller_hears_supervisor=True, bot_active=False),
    "takeover": Routes(caller_hears_supervisor=True, bot_active=False),
}


@dataclass(frozen=True, slots=True)
class SupervisionChanged:
    """For the call core: the supervisor's mode is now ``mode`` (None: the supervisor left)."""

    mode: Mode | None


@dataclass(frozen=True, slots=True)
class ModeChange:
    """A step of one supervision, for the events, the sidecar and the audit."""

    kind: Literal["started", "mode_changed", "ended", "key_ignored"]
    mode: Mode | None
    previous: Mode | None
    at: float
    reason: str = ""


def check_mode(text: str) -> Mode:
    """``text`` as a mode, or a ValueError that lists the modes."""
    for mode in MODES:
        if text == mode:
            return mode
    raise ValueError(f"supervision mode {text!r} is not one of {', '.join(MODES)}")


class SupervisorModes:
    """The mode machine of one supervision: idle -> (ringing) -> mode ... -> ended."""

    def __init__(self, requested: Mode) -> None:
        self.requested = requested
        self.mode: Mode | None = None
        self.ended = False
        self.history: list[ModeChange] = []

    @property
    def routes(self) -> Routes:
        return ROUTES[None if self.ended else self.mode]

    def answered(self, now: float) -> ModeChange | None:
        """The supervisor's phone answered: the requested mode starts."""
        if self.ended or self.mode is not None:
            return None
        self.mode = self.requested
        return self._note(ModeChange("started", self.mode, None, now))

    def key(self, digit: str, now: float) -> ModeChange | None:
        """A digit from the supervisor's phone; None when it changes nothing (same mode, other key)."""
        target = DTMF_KEYS.get(digit)
        if target is None or self.ended or self.mode is None or target == self.mode:
            return None
        if self.mode == "takeover":
            return self._note(
                ModeChange("key_ignored", self.mode, self.mode, now, "the bot has left the call")
            )
        previous, self.mode = self.mode, target
        return self._note(ModeChange("mode_changed", target, previous, now, f"key {digit}"))

    def leave(self, now: float, reason: str) -> ModeChange | None:
        """The supervisor's leg is over (hung up, never answered, or the call ended)."""
        if self.ended:
            return None
        self.ended = True
        previous, self.mode = self.mode, None
        return self._note(ModeChange("ended", None, previous, now, reason))

    def _note(self, change: ModeChange) -> ModeChange:
        self.history.append(change)
        return change
