"""Which contacts may be dialled now, in which order, and when the others become due.

Pure functions over :class:`ContactSlot` (a plain view of a stored contact) and a
:class:`CampaignPolicy`; time is always passed in as an aware datetime. A store selects
candidates with SQL in the same order as :func:`order_key` and checks each with
:func:`is_dialable` before leasing it.

A contact's window is ``[window_start, window_end)``: for a compliance callback it opens at
the cooling-off end and closes ``callback_window`` (24 h) later (:meth:`CampaignPolicy.window_for`);
for retention it is the campaign's dates. An attempt may start only inside the window and at
least ``retry.deadline_margin`` before it closes (:func:`last_start`), inside the callee's
calling hours, on or after ``next_attempt_at``, with attempts left, never on the do-not-call
list. A contact still unreached when no attempt may start any more is :func:`expired`.

The rules are checked when a contact is leased and again, by :func:`dial_check`, the moment
before its INVITE leaves (leasing, starting the SIP endpoint or waiting for a line take time).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from dialer.call_result import PolicyError
from dialer.calling_hours import CallingHours, require_aware, zone
from dialer.retry_policy import RetryPolicy, parse_duration

FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


class CampaignKind(StrEnum):
    COMPLIANCE_CALLBACK = "compliance_callback"
    RETENTION = "retention"


class ContactState(StrEnum):
    PENDING = "pending"
    """Waiting to be dialled (possibly for a retry time)."""
    LEASED = "leased"
    """Taken by a worker, about to be dialled."""
    IN_CALL = "in_call"
    DONE = "done"
    """Has its outcome; never dialled again."""


@dataclass(frozen=True)
class ContactSlot:
    """What scheduling needs to know about one contact (the store maps its rows to this)."""

    id: int | str
    e164: str
    tz: str
    window_start: datetime | None = None
    window_end: datetime | None = None
    """The deadline: no attempt starts at or after it."""
    priority: int = 0
    """Higher is dialled first among contacts with the same deadline."""
    attempts: int = 0
    next_attempt_at: datetime | None = None
    dnc: bool = False
    state: str = ContactState.PENDING
    """A :class:`ContactState` value (any ``StrEnum`` or string with the same values)."""


@dataclass(frozen=True)
class CampaignPolicy:
    """A campaign's dialling rules."""

    kind: CampaignKind = CampaignKind.COMPLIANCE_CALLBACK
    hours: CallingHours = field(default_factory=CallingHours)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    callback_window: timedelta = timedelta(hours=24)
    starts_at: datetime | None = None
    """Retention: first moment any contact may be dialled (also bounds callbacks if set)."""
    ends_at: datetime | None = None
    """Retention: the campaign's last moment; every contact's deadline at the latest."""

    def __post_init__(self) -> None:
        if self.callback_window <= timedelta(0):
            raise PolicyError(f"callback_window {self.callback_window} must be positive")
        for name in ("starts_at", "ends_at"):
            value = getattr(self, name)
            if value is not None:
                require_aware(value, f"campaign {name}")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise PolicyError(f"campaign ends_at {self.ends_at.isoformat()} is not after starts_at")

    def window_for(self, cooling_off_end: datetime | None) -> tuple[datetime | None, datetime | None]:
        """The ``(window_start, window_end)`` a contact gets when imported.

        Callbacks need ``cooling_off_end`` (the window is that plus ``callback_window``);
        retention contacts get the campaign dates.
        """
        if self.kind is CampaignKind.COMPLIANCE_CALLBACK:
            if cooling_off_end is None:
                raise PolicyError("a compliance callback contact needs cooling_off_end")
            require_aware(cooling_off_end, "cooling_off_end")
            return cooling_off_end, cooling_off_end + self.callback_window
        return self.starts_at, self.ends_at

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None, where: str = "campaign") -> CampaignPolicy:
        """Build from data: ``kind``, ``calling_hours`` (see :class:`CallingHours`), ``retry``
        (see :class:`RetryPolicy`), ``callback_window`` (duration), ``starts_at``/``ends_at``
        (ISO 8601 with offset)."""
        config = dict(config or {})
        allowed = {"kind", "calling_hours", "retry", "callback_window", "starts_at", "ends_at"}
        unknown = set(config) - allowed
        if unknown:
            expected = ", ".join(sorted(allowed))
            raise PolicyError(f"{where}.{sorted(unknown)[0]}: unknown key (expected {expected})")
        kwargs: dict[str, Any] = {}
        if "kind" in config:
            try:
                kwargs["kind"] = CampaignKind(config["kind"])
            except ValueError:
                kinds = ", ".join(k.value for k in CampaignKind)
                raise PolicyError(f"{where}.kind: {config['kind']!r} is not one of {kinds}") from None
        if "calling_hours" in config:
            kwargs["hours"] = CallingHours.from_config(config["calling_hours"], f"{where}.calling_hours")
        if "retry" in config:
            kwargs["retry"] = RetryPolicy.from_config(config["retry"], f"{where}.retry")
        if "callback_window" in config:
            kwargs["callback_window"] = parse_duration(config["callback_window"], f"{where}.callback_window")
        for name in ("starts_at", "ends_at"):
            if config.get(name) is not None:
                kwargs[name] = _instant(config[name], f"{where}.{name}")
        return cls(**kwargs)


class Reason(StrEnum):
    OK = "ok"
    NOT_PENDING = "not_pending"
    DO_NOT_CALL = "do_not_call"
    WINDOW_NOT_OPEN = "window_not_open"
    EXPIRED = "expired"
    RETRY_NOT_DUE = "retry_not_due"
    OUTSIDE_CALLING_HOURS = "outside_calling_hours"
    NO_ATTEMPTS_LEFT = "no_attempts_left"


@dataclass(frozen=True)
class Eligibility:
    """Whether a contact may be dialled now; if not, why, and when it may be (None: never)."""

    ok: bool
    reason: Reason
    not_before: datetime | None = None

    def __bool__(self) -> bool:
        return self.ok


def deadline(contact: ContactSlot, policy: CampaignPolicy) -> datetime | None:
    """The earlier of the contact's window end and the campaign's end."""
    ends = [t for t in (contact.window_end, policy.ends_at) if t is not None]
    return min(ends) if ends else None


def last_start(contact: ContactSlot, policy: CampaignPolicy) -> datetime | None:
    """The last moment a call may start: the deadline less ``retry.deadline_margin`` (the
    time a call needs), so a call started in time also ends in time and a contact nobody
    reached is reported expired at least the margin before its deadline. None: no deadline."""
    end = deadline(contact, policy)
    return None if end is None else end - policy.retry.deadline_margin


def is_dialable(contact: ContactSlot, policy: CampaignPolicy, now: datetime) -> Eligibility:
    """Check every rule, cheapest and most final first."""
    require_aware(now, "scheduling time")
    if contact.state != ContactState.PENDING:
        return Eligibility(False, Reason.NOT_PENDING)
    if contact.dnc:
        return Eligibility(False, Reason.DO_NOT_CALL)
    if contact.attempts >= policy.retry.max_attempts:
        return Eligibility(False, Reason.NO_ATTEMPTS_LEFT)
    end = last_start(contact, policy)
    if end is not None and now >= end:
        return Eligibility(False, Reason.EXPIRED)
    due = _earliest_start(contact, policy)
    if due is not None and now < due:
        reason = Reason.RETRY_NOT_DUE if due == contact.next_attempt_at else Reason.WINDOW_NOT_OPEN
        return Eligibility(False, reason, _next_open_before(contact, policy, due, end))
    if not policy.hours.is_open(now, contact.tz):
        return Eligibility(False, Reason.OUTSIDE_CALLING_HOURS, _next_open_before(contact, policy, now, end))
    return Eligibility(True, Reason.OK, now)


def dial_check(
    contact: ContactSlot, policy: CampaignPolicy, now: datetime, guard: timedelta = timedelta(0)
) -> Eligibility:
    """The check right before an INVITE leaves: every rule of :func:`is_dialable` at ``now``
    (the contact may be leased or marked in a call by the worker about to dial it), and still
    so ``guard`` later, the time the INVITE may take to leave: calling hours must not close and
    the last start must not pass within it. ``not_before`` says when to try again (None: never).
    """
    require_aware(now, "dial time")
    if guard < timedelta(0):
        raise PolicyError(f"dial check guard {guard} is negative")
    if contact.state in (ContactState.LEASED, ContactState.IN_CALL):
        contact = replace(contact, state=ContactState.PENDING)
    verdict = is_dialable(contact, policy, now)
    if not verdict.ok:
        return verdict
    cutoff = last_start(contact, policy)
    if cutoff is not None and now + guard >= cutoff:
        return Eligibility(False, Reason.EXPIRED)
    if not policy.hours.is_open(now + guard, contact.tz):
        return Eligibility(
            False, Reason.OUTSIDE_CALLING_HOURS, _next_open_before(contact, policy, now + guard, cutoff)
        )
    return verdict


def margin_shortfall(policy: CampaignPolicy, expected_call: timedelta) -> timedelta | None:
    """How much ``retry.deadline_margin`` falls short of a call's expected length (ring time
    plus the flow's conversation), or None when it is long enough. A shorter margin lets calls
    that started in time run past the deadline."""
    short = expected_call - policy.retry.deadline_margin
    return short if short > timedelta(0) else None


def next_action_time(contact: ContactSlot, policy: CampaignPolicy, now: datetime) -> datetime | None:
    """The earliest instant at or after ``now`` when the contact is dialable; None if never
    (done, leased, do-not-call, out of attempts, or no calling hours left before its deadline)."""
    eligibility = is_dialable(contact, policy, now)
    return eligibility.not_before


def expired(contact: ContactSlot, now: datetime, policy: CampaignPolicy | None = None) -> bool:
    """True if the contact is still unreached (not done) and its deadline has passed.

    With ``policy`` the campaign's end counts too, the deadline is the last start
    (:func:`last_start`, the margin before it), and a deadline that can no longer be met
    because the callee's calling hours do not open before it counts as passed.
    """
    require_aware(now, "expiry check time")
    if contact.state == ContactState.DONE:
        return False
    end = contact.window_end if policy is None else last_start(contact, policy)
    if end is not None and now >= end:
        return True
    if policy is None or contact.state != ContactState.PENDING or end is None:
        return False
    start = max(now, _earliest_start(contact, policy) or now)
    return _next_open_before(contact, policy, start, end) is None


def at_risk(
    contact: ContactSlot, policy: CampaignPolicy, now: datetime, horizon: timedelta = timedelta(hours=2)
) -> bool:
    """Still open but its deadline is within ``horizon``: someone should watch it."""
    if contact.state == ContactState.DONE or contact.dnc:
        return False
    end = deadline(contact, policy)
    return end is not None and now < end <= now + horizon


def order_key(contact: ContactSlot) -> tuple[datetime, int, int, str]:
    """Sort key: earliest deadline first (none last), then higher priority, then fewer attempts.

    SQL equivalent: ``ORDER BY window_end NULLS LAST, priority DESC, attempts, id``.
    """
    return (contact.window_end or FAR_FUTURE, -contact.priority, contact.attempts, str(contact.id))


def pick(
    contacts: Iterable[ContactSlot], policy: CampaignPolicy, now: datetime, limit: int
) -> list[ContactSlot]:
    """Up to ``limit`` dialable contacts in dialling order."""
    if limit < 0:
        raise PolicyError(f"pick limit {limit} is negative")
    ready = [c for c in contacts if is_dialable(c, policy, now).ok]
    ready.sort(key=order_key)
    return ready[:limit]


def _earliest_start(contact: ContactSlot, policy: CampaignPolicy) -> datetime | None:
    starts = [t for t in (contact.window_start, policy.starts_at, contact.next_attempt_at) if t is not None]
    return max(starts) if starts else None


def _next_open_before(
    contact: ContactSlot, policy: CampaignPolicy, at: datetime, end: datetime | None
) -> datetime | None:
    """The first calling-hours instant at or after ``at`` and before ``end``, else None."""
    return policy.hours.next_open_before(at, zone(contact.tz), end)


def _instant(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise PolicyError(
                f"{where}: {value!r} is not an ISO 8601 time like 2025-06-01T09:00:00+08:00"
            ) from None
    if moment.tzinfo is None:
        raise PolicyError(f"{where}: {value!r} has no UTC offset; write it like 2025-06-01T09:00:00+08:00")
    return moment
