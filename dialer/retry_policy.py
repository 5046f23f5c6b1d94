"""After an attempt: call again later (:class:`RetryAt`) or stop (:class:`Final`).

Each :class:`CallResult` has a :class:`RetryRule` (delay, optional cap on attempts ending with
that result, outcome when it stops); the policy adds a total attempt cap and the contact's
deadline. A retry is moved into the callee's calling hours; if the regular delay would land
past the deadline, the policy squeezes in one last try (no sooner than ``min_delay``, ideally
``deadline_margin`` before the deadline); if nothing fits, the outcome is ``expired``.

Defaults suit compliance callbacks: busy 5 min, no answer 30 min, machine 60 min, network
failure 2 min, rejected once more after 60 min, invalid numbers final at once, 5 attempts.

A person answering usually ends the contact with the flow's outcome. ``outcome_rules`` name
flow outcomes that call again instead, e.g. ``no_decision`` (the callee hung up before the
order was confirmed); when such a rule stops, the flow's outcome stays the contact's outcome.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from types import MappingProxyType
from typing import Any

from dialer.call_result import CallResult, Outcome, PolicyError
from dialer.calling_hours import CallingHours, require_aware


@dataclass(frozen=True)
class RetryRule:
    """How one result is retried; ``delay=None`` makes the result final at once."""

    delay: timedelta | None
    max_attempts: int | None = None
    """Stop after this many attempts ended with this result (None: only the total cap)."""
    final_outcome: Outcome = Outcome.MAX_ATTEMPTS
    """The outcome when this rule stops retrying."""
    backoff: float = 1.0
    """Delay multiplier per earlier attempt with the same result (1.0: constant delay)."""

    def __post_init__(self) -> None:
        if self.delay is not None and self.delay < timedelta(0):
            raise PolicyError(f"retry delay {self.delay} is negative")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise PolicyError(f"retry max_attempts {self.max_attempts} must be at least 1")
        if self.backoff < 1.0:
            raise PolicyError(f"retry backoff {self.backoff} must be at least 1.0")


@dataclass(frozen=True)
class RetryAt:
    """Dial again at ``when`` (UTC, inside calling hours and before the deadline)."""

    when: datetime
    reason: str


@dataclass(frozen=True)
class Final:
    """Stop dialling this contact; ``outcome`` is stored as the contact's outcome."""

    outcome: Outcome
    reason: str


Decision = RetryAt | Final

_MIN = timedelta(minutes=1)
DEFAULT_RULES: Mapping[CallResult, RetryRule] = MappingProxyType(
    {
        CallResult.ANSWERED: RetryRule(None, final_outcome=Outcome.ANSWERED),
        CallResult.ANSWERED_HUMAN: RetryRule(None, final_outcome=Outcome.ANSWERED),
        CallResult.ANSWERED_MACHINE: RetryRule(60 * _MIN),
        CallResult.BUSY: RetryRule(5 * _MIN),
        CallResult.NO_ANSWER: RetryRule(30 * _MIN),
        CallResult.NETWORK_FAILURE: RetryRule(2 * _MIN),
        CallResult.REJECTED: RetryRule(60 * _MIN, max_attempts=2, final_outcome=Outcome.REJECTED),
        CallResult.INVALID_NUMBER: RetryRule(None, final_outcome=Outcome.INVALID_NUMBER),
        # We hung up ourselves (pause, shutdown): try again as soon as allowed.
        CallResult.CANCELLED: RetryRule(timedelta(0)),
    }
)


@dataclass(frozen=True)
class RetryPolicy:
    """Per-result rules plus a total cap; see the module docstring."""

    rules: Mapping[CallResult, RetryRule] = field(default_factory=lambda: DEFAULT_RULES)
    max_attempts: int = 5
    """Total attempts per contact (cancelled attempts should not be counted by the caller)."""
    min_delay: timedelta = 2 * _MIN
    """Shortest gap before a last try squeezed in before the deadline."""
    deadline_margin: timedelta = 5 * _MIN
    """A retry must start at least this long before the deadline (ring time plus the call)."""
    message_left_final: bool = False
    """True: a message left on a machine ends the contact with ``message_left``."""
    outcome_rules: Mapping[str, RetryRule] = field(default_factory=lambda: MappingProxyType({}))
    """Flow outcomes (of answered calls) that are retried, keyed by outcome name."""
    callback_outcome: str = "callback_requested"
    """The flow outcome by which a callee asks to be called back at a time (``callback_at``)."""
    max_callback_requests: int = 2
    """How many call-back requests of one contact are honoured before its outcome is final."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise PolicyError(f"retry max_attempts {self.max_attempts} must be at least 1")
        if self.min_delay < timedelta(0) or self.deadline_margin < timedelta(0):
            raise PolicyError("retry min_delay and deadline_margin must not be negative")
        missing = [r.value for r in CallResult if r not in self.rules]
        if missing:
            raise PolicyError(f"retry policy has no rule for {', '.join(missing)}")

    def follows_flow_outcome(self, result: CallResult, flow_outcome: str | None) -> bool:
        """True when this attempt is judged by its flow outcome (a retried outcome or a call-back
        request), so ``same_result_count`` counts attempts with that outcome, not that result."""
        return (
            result.reached_person
            and bool(flow_outcome)
            and (flow_outcome in self.outcome_rules or flow_outcome == self.callback_outcome)
        )

    def decide(
        self,
        result: CallResult,
        attempts: int,
        now: datetime,
        *,
        same_result_count: int = 1,
        deadline: datetime | None = None,
        hours: CallingHours | None = None,
        tz: str | tzinfo | None = None,
        message_left: bool = False,
        flow_outcome: str | None = None,
        requested_at: datetime | None = None,
    ) -> Decision:
        """Decide after an attempt that ended with ``result`` at ``now``.

        ``attempts`` counts attempts made so far, this one included; ``same_result_count``
        how many of them ended with ``result`` (or, for a retried flow outcome, with that
        ``flow_outcome``). With ``hours`` and ``tz`` the retry is moved into the callee's
        calling hours. ``requested_at`` is when the callee asked to be called back (with the
        ``callback_outcome`` flow outcome): the next call is placed then, or as close before
        the deadline as fits.
        """
        require_aware(now, "retry decision time")
        if attempts < 0 or same_result_count < 1:
            raise PolicyError(f"attempts {attempts} / same_result_count {same_result_count} out of range")
        if hours is not None and tz is None:
            raise PolicyError("retry policy: calling hours given without the callee's time zone")
        if deadline is not None:
            require_aware(deadline, "contact deadline")

        def allowed(at: datetime) -> datetime:
            return hours.next_open(at, tz) if hours is not None and tz is not None else at

        if result.reached_person and flow_outcome == self.callback_outcome and requested_at is not None:
            require_aware(requested_at, "requested call-back time")
            if same_result_count > self.max_callback_requests:
                return Final(
                    Outcome.ANSWERED,
                    f"{same_result_count} call-backs requested, {self.max_callback_requests} are honoured",
                )
            asked = requested_at.isoformat()
            return self._schedule(
                allowed(max(requested_at, now + self.min_delay)),
                now,
                shortest=self.min_delay,
                deadline=deadline,
                allowed=allowed,
                reason=f"call-back requested for {asked}",
            )
        rule = self.rules[result]
        label = result.value
        if result.reached_person and flow_outcome and flow_outcome in self.outcome_rules:
            rule, label = self.outcome_rules[flow_outcome], flow_outcome
        if result is CallResult.ANSWERED_MACHINE and message_left and self.message_left_final:
            return Final(Outcome.MESSAGE_LEFT, "message left on answering machine")
        if rule.delay is None:
            return Final(rule.final_outcome, f"{label} is final")
        if rule.max_attempts is not None and same_result_count >= rule.max_attempts:
            return Final(rule.final_outcome, f"{same_result_count} attempts ended {label}")
        if attempts >= self.max_attempts:
            return Final(Outcome.MAX_ATTEMPTS, f"{attempts} of {self.max_attempts} attempts made")
        delay = rule.delay * rule.backoff ** (same_result_count - 1)
        return self._schedule(
            allowed(now + delay),
            now,
            shortest=min(self.min_delay, delay),
            deadline=deadline,
            allowed=allowed,
            reason=f"{label}: retry after {delay}",
            label=label,
        )

    def _schedule(
        self,
        when: datetime,
        now: datetime,
        *,
        shortest: timedelta,
        deadline: datetime | None,
        allowed: Callable[[datetime], datetime],
        reason: str,
        label: str = "call-back",
    ) -> Decision:
        """``when`` if it is early enough for the deadline, else one last try squeezed in before it."""
        if deadline is None or when <= deadline - self.deadline_margin:
            return RetryAt(when, reason)
        latest = deadline - self.deadline_margin
        earliest = now + shortest
        for candidate in (allowed(max(earliest, latest)), allowed(earliest)):
            if candidate <= latest:
                return RetryAt(candidate, f"{label}: last try before the deadline")
        return Final(Outcome.EXPIRED, f"{label}: no retry fits before the deadline")

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None, where: str = "retry") -> RetryPolicy:
        """Build from data: ``max_attempts``, ``min_delay``, ``deadline_margin``,
        ``message_left_final``, one key per result (``busy: 5m``, ``rejected: final``, or
        ``no_answer: {delay: 30m, max_attempts: 3, backoff: 2}``) and ``outcomes``, flow
        outcomes to retry in the same forms (``{no_decision: 30m}``; ``final`` drops one).
        Durations are seconds or ``90s``/``5m``/``2h``/``1d``. Results not given keep their
        defaults."""
        config = dict(config or {})
        rules = dict(DEFAULT_RULES)
        kwargs: dict[str, Any] = {}
        for key, value in config.items():
            path = f"{where}.{key}"
            if key == "outcomes":
                kwargs["outcome_rules"] = _outcome_rules(value, path)
            elif key == "max_callback_requests":
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise PolicyError(f"{path}: expected a whole number of at least 0, got {value!r}")
                kwargs[key] = value
            elif key == "max_attempts":
                kwargs[key] = _positive_int(value, path)
            elif key in ("min_delay", "deadline_margin"):
                kwargs[key] = parse_duration(value, path)
            elif key == "message_left_final":
                if not isinstance(value, bool):
                    raise PolicyError(f"{path}: expected true or false, got {value!r}")
                kwargs[key] = value
            elif key in _RESULT_NAMES:
                result = CallResult(key)
                rules[result] = _rule(value, result, rules[result], path)
            else:
                names = ", ".join(r.value for r in CallResult)
                raise PolicyError(
                    f"{path}: unknown key (expected max_attempts, min_delay, "
                    f"deadline_margin, message_left_final, outcomes, "
                    f"max_callback_requests or one of {names})"
                )
        return cls(rules=MappingProxyType(rules), **kwargs)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any, where: str) -> timedelta:
    """Seconds as a number, or a string like ``90s``, ``5m``, ``2h``, ``1d``."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise PolicyError(f"{where}: expected a duration like '5m', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise PolicyError(f"{where}: expected a duration like '90s', '5m' or '2h', got {value!r}")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 0:
        raise PolicyError(f"{where}: duration {value!r} is negative")
    return timedelta(seconds=seconds)


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PolicyError(f"{where}: expected a whole number of at least 1, got {value!r}")
    return value


_RESULT_NAMES = frozenset(r.value for r in CallResult)
# The outcome when a result is configured ``final``.
_FINAL_OUTCOME = {
    CallResult.ANSWERED: Outcome.ANSWERED,
    CallResult.ANSWERED_HUMAN: Outcome.ANSWERED,
    CallResult.REJECTED: Outcome.REJECTED,
    CallResult.INVALID_NUMBER: Outcome.INVALID_NUMBER,
}


def _rule(value: Any, result: CallResult, default: RetryRule, where: str) -> RetryRule:
    if isinstance(value, str) and value.strip().lower() == "final":
        return RetryRule(None, final_outcome=_FINAL_OUTCOME.get(result, Outcome.UNREACHED))
    if not isinstance(value, Mapping):
        return RetryRule(
            parse_duration(value, where), default.max_attempts, default.final_outcome, default.backoff
        )
    unknown = set(value) - {"delay", "max_attempts", "backoff"}
    if unknown:
        first = sorted(unknown)[0]
        raise PolicyError(f"{where}.{first}: unknown key (expected delay, max_attempts, backoff)")
    delay = default.delay
    if "delay" in value:
        delay = parse_duration(value["delay"], f"{where}.delay")
    max_attempts = (
        _positive_int(value["max_attempts"], f"{where}.max_attempts")
        if value.get("max_attempts") is not None
        else default.max_attempts
    )
    backoff = value.get("backoff", default.backoff)
    if isinstance(backoff, bool) or not isinstance(backoff, int | float) or backoff < 1:
        raise PolicyError(f"{where}.backoff: expected a number of at least 1, got {backoff!r}")
    return RetryRule(delay, max_attempts, default.final_outcome, float(backoff))


_OUTCOME_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_NO_RETRY = RetryRule(None, final_outcome=Outcome.ANSWERED)


def _outcome_rules(value: Any, where: str) -> Mapping[str, RetryRule]:
    if not isinstance(value, Mapping):
        raise PolicyError(f"{where}: expected a mapping of flow outcome to delay, e.g. {{no_decision: 30m}}")
    rules: dict[str, RetryRule] = {}
    for name, rule in value.items():
        if not isinstance(name, str) or not _OUTCOME_NAME.match(name):
            raise PolicyError(f"{where}.{name}: not a flow outcome name (lower case, digits, _)")
        if name == Outcome.DO_NOT_CALL.value:
            raise PolicyError(f"{where}.{name}: a callee who asked not to be called is never called again")
        parsed = _rule(rule, CallResult.ANSWERED_HUMAN, _NO_RETRY, f"{where}.{name}")
        if parsed.delay is not None:
            rules[name] = parsed
    return MappingProxyType(rules)
