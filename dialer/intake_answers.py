"""What an intake request gets back: one answer type for HTTP and MQTT alike.

Both transports answer from the same :class:`IntakeAnswer`, so a status, its HTTP code and
the JSON body can never differ between them; MQTT only asks for the number to be masked,
because its answers go to a shared broker. The statuses and codes are listed in
docs/intake.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from config.logs import mask_number
from dialer.call_list_csv import printable

_DIGITS_BUT_LAST_TWO = re.compile(r"\d(?=(?:\D*\d){2})")


class IntakeStatus(StrEnum):
    CREATED = "created"
    UNCHANGED = "unchanged"
    MALFORMED = "malformed"
    INVALID = "invalid"
    TOO_LARGE = "too_large"
    UNAUTHORIZED = "unauthorized"
    CAMPAIGN_NOT_FOUND = "campaign_not_found"
    CAMPAIGN_NOT_RUNNING = "campaign_not_running"
    DUPLICATE = "duplicate"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    REQUEST_TIMEOUT = "request_timeout"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    ERROR = "error"


HTTP_STATUS: Mapping[IntakeStatus, int] = {
    IntakeStatus.CREATED: 201,
    IntakeStatus.UNCHANGED: 200,
    IntakeStatus.MALFORMED: 400,
    IntakeStatus.INVALID: 422,
    IntakeStatus.TOO_LARGE: 413,
    IntakeStatus.UNAUTHORIZED: 401,
    IntakeStatus.CAMPAIGN_NOT_FOUND: 404,
    IntakeStatus.CAMPAIGN_NOT_RUNNING: 409,
    IntakeStatus.DUPLICATE: 409,
    IntakeStatus.UNSUPPORTED_MEDIA_TYPE: 415,
    IntakeStatus.REQUEST_TIMEOUT: 408,
    IntakeStatus.RATE_LIMITED: 429,
    IntakeStatus.UNAVAILABLE: 503,
    IntakeStatus.ERROR: 500,
}


@dataclass(frozen=True)
class Problem:
    """One reason a request was refused: the field (``fields.NAME`` for a flow variable)."""

    field: str
    reason: str


@dataclass(frozen=True)
class AddedContact:
    """The stored contact an answer is about (created now, or found unchanged)."""

    contact_id: int
    campaign: str
    campaign_state: str
    phone: str
    timezone: str
    state: str
    next_attempt_at: datetime | None
    """When it may first be dialled (None: never, e.g. on the do-not-call list, or done)."""
    deadline: datetime | None
    do_not_call: bool
    dialable_now: bool
    """Eligible at once: the dialer should look for it now (see ``on_added``)."""


OnAdded = Callable[[AddedContact], None]
"""Called in the event loop after a contact was stored (the dialer's wake-up; see docs/intake.md)."""


@dataclass(frozen=True)
class IntakeAnswer:
    """The answer to one request, for any transport."""

    status: IntakeStatus
    message: str
    problems: tuple[Problem, ...] = ()
    contact: AddedContact | None = None
    request_id: str | None = None
    duplicate_of: int | None = None

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.status]

    @property
    def created(self) -> bool:
        return self.status is IntakeStatus.CREATED

    def body(self, *, mask: bool = False) -> dict[str, Any]:
        """The JSON answer; ``mask`` hides the number (MQTT answers go to a shared broker)."""
        out: dict[str, Any] = {"status": self.status.value, "message": self.message}
        if self.request_id is not None:
            out["request_id"] = self.request_id
        if self.problems:
            out["problems"] = [
                {"field": p.field, "reason": _masked_reason(p) if mask else p.reason} for p in self.problems
            ]
        if self.duplicate_of is not None:
            out["contact_id"] = self.duplicate_of
        contact = self.contact
        if contact is not None:
            out.update(
                contact_id=contact.contact_id,
                campaign=contact.campaign,
                campaign_state=contact.campaign_state,
                phone=mask_number(contact.phone) if mask else contact.phone,
                timezone=contact.timezone,
                contact_state=contact.state,
                next_attempt_at=iso(contact.next_attempt_at),
                deadline=iso(contact.deadline),
                do_not_call=contact.do_not_call,
                dialable_now=contact.dialable_now,
            )
        return out


def answer(status: IntakeStatus, message: str, request_id: str | None = None) -> IntakeAnswer:
    return IntakeAnswer(status, message, request_id=request_id)


def invalid(problems: Iterable[Problem], request_id: str | None) -> IntakeAnswer:
    """The 422 answer listing every problem (its message names each field once)."""
    found = tuple(problems)
    names = ", ".join(dict.fromkeys(p.field for p in found))
    plural = "s" if len(found) != 1 else ""
    message = f"refused: {len(found)} problem{plural} ({names}); nothing stored"
    return IntakeAnswer(IntakeStatus.INVALID, message, found, request_id=request_id)


def iso(moment: datetime | None) -> str | None:
    """``moment`` in UTC as ISO 8601 with a ``Z``, to the second (None stays None)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _masked_reason(problem: Problem) -> str:
    # The importer quotes a rejected number in its reason; an MQTT answer must not carry it.
    return _DIGITS_BUT_LAST_TWO.sub("*", problem.reason) if problem.field == "phone" else problem.reason


def label(text: str, limit: int = 60) -> str:
    """``text`` safe to show and log: control characters and lone surrogates escaped, cut short."""
    safe = printable(text).encode("utf-8", "backslashreplace").decode("utf-8")
    return safe if len(safe) <= limit else safe[: limit - 3] + "..."
