"""The dialer's tables: campaigns, contacts, attempts, contact events and the do-not-call list.

Every timestamp is stored as naive UTC and read back as an aware UTC ``datetime`` (see
:class:`UtcDateTime`), so SQLite and PostgreSQL behave the same and no code compares naive
with aware times. Schema changes go through Alembic (``dialer/migrations``), never
``create_all``, so an upgrade never drops data.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from config.database import UtcDateTime
from dialer.scheduler import CampaignKind, ContactState

__all__ = [
    "Attempt",
    "Base",
    "Campaign",
    "CampaignHour",
    "CampaignHourOutcome",
    "CampaignKind",
    "CampaignState",
    "Contact",
    "ContactEvent",
    "ContactState",
    "DncEntry",
    "EventKind",
    "MachinePolicy",
    "TrunkLine",
    "TrunkRate",
]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class CampaignState(enum.StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"


class MachinePolicy(enum.StrEnum):
    LEAVE_MESSAGE = "leave_message"
    HANGUP_RETRY = "hangup_retry"


class EventKind(enum.StrEnum):
    """What a ``contact_events`` row records; a person reads these to act on an order."""

    IMPORTED = "imported"
    OUTCOME = "outcome"
    EXPIRED = "expired"
    DNC_MARKED = "dnc_marked"
    DNC_CLEARED = "dnc_cleared"
    LEASE_RECLAIMED = "lease_reclaimed"
    CALLBACK = "callback"
    """The callee asked to be called back; the detail says when and when the call is due."""


def utcnow() -> datetime:
    """Only the edges (CLI, adapters) call this; the core takes ``now`` as an argument."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
    }


class Campaign(Base):
    """One call list with the rules its calls follow."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    flow: Mapped[str] = mapped_column(String(500))
    region: Mapped[str] = mapped_column(String(8), default="")
    state: Mapped[str] = mapped_column(String(16), default=CampaignState.DRAFT.value)
    # Callee-local calling hours as ``dialer.calling_hours.CallingHours.from_config`` reads them:
    # {"default": "09:00-21:00", "sunday": "closed", "holidays": ["2025-12-25"]}.
    calling_hours: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Retention campaigns call within [starts_at, ends_at]; callbacks use callback_window_s.
    starts_at: Mapped[datetime | None] = mapped_column(default=None)
    ends_at: Mapped[datetime | None] = mapped_column(default=None)
    callback_window_s: Mapped[int] = mapped_column(Integer, default=24 * 3600)
    # ``dialer.retry_policy.RetryPolicy.from_config`` data: {"max_attempts": 5, "busy": "5m"}.
    retry: Mapped[dict[str, Any]] = mapped_column(default=dict)
    machine_policy: Mapped[str] = mapped_column(String(16), default=MachinePolicy.HANGUP_RETRY.value)
    created_at: Mapped[datetime]


class Contact(Base):
    """One person to call, with the scheduling state the workers share."""

    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("campaign_id", "phone", name="uq_contacts_campaign_phone"),
        Index("ix_contacts_due", "campaign_id", "state", "next_attempt_at"),
        Index("ix_contacts_lease", "state", "lease_expires_at"),
        Index("ix_contacts_phone", "phone"),
        # The wallboard's counts read these indexes only (dialer.hourly_counters), not the rows.
        Index("ix_contacts_outcome", "campaign_id", "outcome", "dnc"),
        Index("ix_contacts_retry", "campaign_id", "state", "dnc", "next_attempt_at", "attempts"),
        Index("ix_contacts_dialled", "campaign_id", "dialled_at"),
        Index("ix_contacts_reached", "campaign_id", "reached_at", "succeeded_at", "outcome"),
        Index("ix_contacts_deadline", "campaign_id", "window_end"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    row_number: Mapped[int] = mapped_column(Integer)
    phone: Mapped[str] = mapped_column(String(20))
    raw_phone: Mapped[str] = mapped_column(String(64))
    first_name: Mapped[str] = mapped_column(String(200), default="")
    last_name: Mapped[str] = mapped_column(String(200), default="")
    timezone: Mapped[str] = mapped_column(String(64))
    cooling_off_end: Mapped[datetime | None] = mapped_column(default=None)
    # None: open-ended (a retention campaign without dates).
    window_start: Mapped[datetime | None] = mapped_column(default=None)
    window_end: Mapped[datetime | None] = mapped_column(default=None)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Hash of the source row, so re-importing the same file is recognised and changes nothing.
    source_hash: Mapped[str] = mapped_column(String(64), default="")
    dnc: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16), default=ContactState.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_result: Mapped[str | None] = mapped_column(String(32), default=None)
    outcome: Mapped[str | None] = mapped_column(String(64), default=None)
    outcome_at: Mapped[datetime | None] = mapped_column(default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(128), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    # Incremented on every lease: a late write from a worker that lost its lease is refused.
    lease_token: Mapped[int] = mapped_column(Integer, default=0)
    recording_id: Mapped[str | None] = mapped_column(String(128), default=None)
    # The INVITE time of the contact's latest counted attempt, latest one a person answered and
    # latest one a person answered that ended with one of the campaign kind's success outcomes
    # (kept by dialer.hourly_counters): "contacts dialled / reached / succeeded since T" are
    # then index range counts instead of COUNT DISTINCT over every attempt.
    dialled_at: Mapped[datetime | None] = mapped_column(default=None)
    reached_at: Mapped[datetime | None] = mapped_column(default=None)
    succeeded_at: Mapped[datetime | None] = mapped_column(default=None)


class Attempt(Base):
    """One dial of a contact; ``ended_at`` is empty while the call is live (or its worker died)."""

    __tablename__ = "attempts"
    __table_args__ = (
        # Calls in progress (few rows at any time): lines in use, "in call" on the wallboard.
        Index(
            "ix_attempts_live",
            "contact_id",
            "invite_at",
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
        # The last 24 h figures read the attempts of the hour the window starts in.
        Index("ix_attempts_invite_at", "invite_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    sip_status: Mapped[int | None] = mapped_column(Integer, default=None)
    result: Mapped[str | None] = mapped_column(String(32), default=None)
    flow_outcome: Mapped[str | None] = mapped_column(String(64), default=None)
    worker: Mapped[str] = mapped_column(String(128))
    recording_id: Mapped[str | None] = mapped_column(String(128), default=None)
    # The real call events (``started_at`` is when this row was written, before any dialling):
    # when the INVITE left (None: never dialled, e.g. cancelled by the check at dial time),
    # when the callee answered (200 OK) and when the flow's first prompt started.
    invite_at: Mapped[datetime | None] = mapped_column(default=None)
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
    flow_started_at: Mapped[datetime | None] = mapped_column(default=None)
    # Why the attempt ended as it did when the result alone does not say (e.g. why cancelled).
    detail: Mapped[str] = mapped_column(Text, default="", server_default="")
    # The recognized words (and their confidence) of the answer that decided the flow outcome.
    decision_text: Mapped[str | None] = mapped_column(String(500), default=None)
    decision_confidence: Mapped[float | None] = mapped_column(Float, default=None)
    # The call started before the contact's deadline but ended after it.
    ended_after_deadline: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class CampaignHour(Base):
    """A campaign's :class:`dialer.rates.Rates` of one UTC hour of the INVITE, as
    :func:`dialer.rates.hourly` counts them; kept by :mod:`dialer.hourly_counters` in the
    transaction that stores an attempt's result, so the wallboard adds up a few rows."""

    __tablename__ = "campaign_hours"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    contacts_dialled: Mapped[int] = mapped_column(Integer, default=0)
    contacts_reached: Mapped[int] = mapped_column(Integer, default=0)
    contacts_succeeded: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)
    machine: Mapped[int] = mapped_column(Integer, default=0)
    person_answered: Mapped[int] = mapped_column(Integer, default=0)
    abandoned: Mapped[int] = mapped_column(Integer, default=0)


class CampaignHourOutcome(Base):
    """How a campaign's dialled attempts of one UTC hour ended (the wallboard's outcome chart):
    every attempt with an INVITE and a result other than ``cancelled``, by label."""

    __tablename__ = "campaign_hour_outcomes"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(64), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


class ContactEvent(Base):
    """An audit trail of what happened to a contact outside a call (expiry, DNC, reclaims)."""

    __tablename__ = "contact_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")


class DncEntry(Base):
    """A number that must never be dialled, whatever campaign it appears in."""

    __tablename__ = "dnc_entries"

    phone: Mapped[str] = mapped_column(String(20), primary_key=True)
    reason: Mapped[str] = mapped_column(String(200), default="")
    added_at: Mapped[datetime]


class TrunkLine(Base):
    """One of a trunk's lines: held by one call of one dialer process at a time.

    A trunk with N lines has rows 0..N-1; a call takes a free (or expired) row before its
    contact is leased and gives it back when it ends, so every dialer process on this database
    together keeps to N live calls. A process that dies stops renewing and its lines expire.
    """

    __tablename__ = "trunk_lines"

    trunk: Mapped[str] = mapped_column(String(200), primary_key=True)
    line: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    holder: Mapped[str | None] = mapped_column(String(200), default=None)
    contact_id: Mapped[int | None] = mapped_column(Integer, default=None)
    taken_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)


class TrunkRate(Base):
    """A trunk's calls-per-second budget shared by every dialer process (a GCRA: the next
    call may start once ``allowed_at`` less the burst allowance has come)."""

    __tablename__ = "trunk_rates"

    trunk: Mapped[str] = mapped_column(String(200), primary_key=True)
    allowed_at: Mapped[datetime | None] = mapped_column(default=None)
