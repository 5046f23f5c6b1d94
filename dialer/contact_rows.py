"""Changes to one stored contact inside the caller's transaction: give its lease back, give it
its final outcome (with the event a person reads), mark it expired or do-not-call.

Shared by the store, its housekeeping and the do-not-call list so that every path that ends a
contact writes the same columns and the same audit trail.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from dialer.call_result import CallResult, Outcome
from dialer.models import Attempt, Contact, ContactEvent, EventKind
from dialer.scheduler import ContactState


def unlease(contact: Contact, state: ContactState) -> None:
    contact.state = state
    contact.lease_owner = None
    contact.lease_expires_at = None


def finish(
    session: Session, contact: Contact, outcome: str, now: datetime, detail: str, *, event: bool = True
) -> None:
    """Give ``contact`` its final ``outcome``; ``event`` False when the caller writes its own."""
    unlease(contact, ContactState.DONE)
    contact.outcome = outcome
    contact.outcome_at = now
    if event:
        kind = EventKind.EXPIRED if outcome == Outcome.EXPIRED else EventKind.OUTCOME
        session.add(ContactEvent(contact_id=contact.id, at=now, kind=kind, detail=f"{outcome}: {detail}"))


def expire(session: Session, contact: Contact, now: datetime, why: str) -> None:
    deadline = contact.window_end.isoformat() if contact.window_end else "campaign end"
    detail = f"{why}; deadline {deadline}, {contact.attempts} attempts, last result {contact.last_result}"
    finish(session, contact, Outcome.EXPIRED.value, now, detail)


def mark_do_not_call(session: Session, contact: Contact, now: datetime, detail: str) -> None:
    """The contact's number was put on the do-not-call list: a contact waiting or about to be
    dialled ends ``do_not_call`` at once; a live call is not cut, and its result cannot make it
    be dialled again (see the store's ``finish_attempt``)."""
    contact.dnc = True
    if contact.state in (ContactState.PENDING, ContactState.LEASED):
        # A leased contact's attempt that has not dialled yet never will.
        session.execute(
            update(Attempt)
            .where(Attempt.contact_id == contact.id, Attempt.ended_at.is_(None))
            .values(ended_at=now, result=CallResult.CANCELLED, detail="not dialled: on the do-not-call list")
        )
        finish(session, contact, Outcome.DO_NOT_CALL.value, now, detail, event=False)
        detail = f"{detail}; outcome do_not_call"
    elif contact.state == ContactState.IN_CALL:
        detail = f"{detail}; the call in progress ends first, then outcome do_not_call"
    session.add(ContactEvent(contact_id=contact.id, at=now, kind=EventKind.DNC_MARKED, detail=detail))
