"""A campaign's rates as contact centers and regulators define them, over plain rows.

Pure: no database, no clock; :mod:`dialer.status` reads the rows and passes ``now`` in.

- **connect rate** = contacts a person answered / contacts dialled. A contact is dialled once
  one of its attempts sent an INVITE (``invite_at`` set); a contact never dialled (a
  do-not-call number, one still waiting) is in neither figure. A number put on the
  do-not-call list after it was called keeps the calls it had: those happened. An answering
  machine is not a person.
- **success rate** = contacts whose outcome means the call did its job (per campaign kind,
  :data:`SUCCESS_OUTCOMES`, e.g. ``confirmed`` for a compliance callback) / contacts a person
  answered.
- **machine rate** = attempts answered by a machine / attempts answered (person or machine).
- **abandonment rate** (US FTC safe harbor, UK Ofcom) = attempts a person answered who was
  not connected to the flow within :data:`ABANDON_AFTER` (2 s) of answering (no
  ``flow_started_at``, or later than ``answered_at`` + 2 s) / attempts a person answered
  whose answer time is known. The FTC limit is 3 % per campaign per 30 days, Ofcom's 3 % per
  24 h: :func:`rates` takes a ``since`` for those windows.

Cancelled attempts (we hung up first: a pause, a shutdown) are left out of every figure; a call
still in progress counts once it has its result.
Hourly figures bucket attempts by the UTC hour of their INVITE: an hour's connect rate is the
contacts a person answered in that hour over the contacts dialled in it, its success rate
counts the calls of that hour that ended with a success outcome.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dialer.call_result import CallResult

ABANDON_AFTER = timedelta(seconds=2)
"""A person not connected to the flow within this of answering was abandoned (FTC, Ofcom)."""

SUCCESS_OUTCOMES: Mapping[str, frozenset[str]] = {
    # flows/library/compliance_callback.yaml: the order takes effect only with `confirmed`.
    "compliance_callback": frozenset({"confirmed"}),
    # flows/library/retention.yaml: the customer stays (`retained`).
    "retention": frozenset({"retained"}),
}
"""Per campaign kind, the flow outcomes that count as success (a test checks that each is an
outcome the kind's library flow can end with)."""
DEFAULT_SUCCESS_OUTCOMES = frozenset({"confirmed", "success", "completed"})
"""For a kind not listed above."""

PERSON_RESULTS = frozenset({CallResult.ANSWERED.value, CallResult.ANSWERED_HUMAN.value})
"""``answered`` (AMD off or unsure) is treated like a person, as the worker does."""
MACHINE_RESULTS = frozenset({CallResult.ANSWERED_MACHINE.value})
ANSWERED_RESULTS = PERSON_RESULTS | MACHINE_RESULTS
CANCELLED = CallResult.CANCELLED.value


def success_outcomes(kind: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """What counts as success for a campaign of ``kind``, plus ``extra`` (a command option)."""
    return SUCCESS_OUTCOMES.get(kind, DEFAULT_SUCCESS_OUTCOMES) | frozenset(extra)


@dataclass(frozen=True)
class ContactFacts:
    """What the rates need of a contact."""

    id: int
    outcome: str | None = None
    dnc: bool = False


@dataclass(frozen=True)
class AttemptFacts:
    """What the rates need of an attempt (the columns of ``attempts``)."""

    contact_id: int
    result: str | None = None
    invite_at: datetime | None = None
    answered_at: datetime | None = None
    flow_started_at: datetime | None = None
    ended_at: datetime | None = None
    flow_outcome: str | None = None

    @property
    def counted(self) -> bool:
        """Dialled, over, and not cancelled by us: the attempts every figure is made of."""
        return self.invite_at is not None and self.result is not None and self.result != CANCELLED

    @property
    def person(self) -> bool:
        return self.counted and self.result in PERSON_RESULTS

    @property
    def abandoned(self) -> bool | None:
        """Whether a person answered and waited more than 2 s for the flow; None when no
        person answered or the answer time is unknown."""
        if not self.person or self.answered_at is None:
            return None
        return self.flow_started_at is None or self.flow_started_at - self.answered_at > ABANDON_AFTER


def ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


@dataclass(frozen=True)
class Rates:
    """Counts and the four rates over one set of contacts and attempts."""

    attempts: int
    """Dialled, not cancelled."""
    contacts_dialled: int
    contacts_reached: int
    """Contacts a person answered."""
    contacts_succeeded: int
    answered: int
    """Attempts answered by a person or a machine."""
    machine: int
    person_answered: int
    """Attempts a person answered whose answer time is known (the abandonment base)."""
    abandoned: int

    @property
    def connect_rate(self) -> float | None:
        return ratio(self.contacts_reached, self.contacts_dialled)

    @property
    def success_rate(self) -> float | None:
        return ratio(self.contacts_succeeded, self.contacts_reached)

    @property
    def machine_rate(self) -> float | None:
        return ratio(self.machine, self.answered)

    @property
    def abandonment_rate(self) -> float | None:
        return ratio(self.abandoned, self.person_answered)

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "attempts": self.attempts,
            "contacts_dialled": self.contacts_dialled,
            "contacts_reached": self.contacts_reached,
            "contacts_succeeded": self.contacts_succeeded,
            "answered": self.answered,
            "machine": self.machine,
            "person_answered": self.person_answered,
            "abandoned": self.abandoned,
            "connect_rate": self.connect_rate,
            "success_rate": self.success_rate,
            "machine_rate": self.machine_rate,
            "abandonment_rate": self.abandonment_rate,
        }


class Tally:
    """Takes attempts one at a time (a status streams them from the database) and gives the
    :class:`Rates` so far. A contact succeeded when it is in ``succeeded_contacts`` (its final
    outcome is a success) or one of its attempts a person answered ended with a success
    outcome; either way only once a person answered one of the attempts added."""

    def __init__(self, successes: frozenset[str], succeeded_contacts: frozenset[int] = frozenset()) -> None:
        self.successes = successes
        self.succeeded_contacts = succeeded_contacts
        self.attempts = 0
        self.dialled: set[int] = set()
        self.reached: set[int] = set()
        self.succeeded: set[int] = set()
        self.answered = 0
        self.machine = 0
        self.person_answered = 0
        self.abandoned = 0

    def add(self, attempt: AttemptFacts) -> None:
        if not attempt.counted:
            return
        self.attempts += 1
        self.dialled.add(attempt.contact_id)
        self.answered += attempt.result in ANSWERED_RESULTS
        self.machine += attempt.result in MACHINE_RESULTS
        if attempt.person:
            self.reached.add(attempt.contact_id)
            if attempt.flow_outcome in self.successes or attempt.contact_id in self.succeeded_contacts:
                self.succeeded.add(attempt.contact_id)
        verdict = attempt.abandoned
        if verdict is not None:
            self.person_answered += 1
            self.abandoned += verdict

    def rates(self) -> Rates:
        return Rates(
            attempts=self.attempts,
            contacts_dialled=len(self.dialled),
            contacts_reached=len(self.reached),
            contacts_succeeded=len(self.succeeded),
            answered=self.answered,
            machine=self.machine,
            person_answered=self.person_answered,
            abandoned=self.abandoned,
        )


def succeeded_contacts(contacts: Iterable[ContactFacts], successes: frozenset[str]) -> frozenset[int]:
    return frozenset(c.id for c in contacts if c.outcome in successes)


def rates(
    contacts: Iterable[ContactFacts],
    attempts: Iterable[AttemptFacts],
    successes: frozenset[str],
    *,
    since: datetime | None = None,
) -> Rates:
    """The figures over ``attempts`` (those dialled at or after ``since`` when given)."""
    tally = Tally(successes, succeeded_contacts(contacts, successes))
    for attempt in attempts:
        if since is None or (attempt.invite_at is not None and attempt.invite_at >= since):
            tally.add(attempt)
    return tally.rates()


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hourly(attempts: Iterable[AttemptFacts], successes: frozenset[str]) -> list[tuple[datetime, Rates]]:
    """Per UTC hour of ``invite_at``, oldest first, hours without attempts left out; a contact
    succeeded in the hour when a call of that hour ended with a success outcome."""
    buckets: dict[datetime, Tally] = {}
    for attempt in attempts:
        if attempt.counted and attempt.invite_at is not None:
            hour = hour_of(attempt.invite_at)
            if hour not in buckets:
                buckets[hour] = Tally(successes)
            buckets[hour].add(attempt)
    return [(hour, tally.rates()) for hour, tally in sorted(buckets.items())]
