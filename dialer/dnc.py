"""The do-not-call list: numbers no campaign may dial.

Adding a number marks every contact with that number (in every campaign): one not called yet
(or leased, about to be) ends with outcome ``do_not_call`` at that moment, so it is never
dialled and never reported expired; a call already in progress is not cut, and its contact
ends ``do_not_call`` unless the call itself decided otherwise. Removing a number unmarks the
contacts that are not final. Each change leaves a ``contact_events`` row so the audit trail
shows why a contact was skipped.
Numbers are stored in E.164; national numbers need a region (``--region``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import phonenumbers
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.orm import Session

from dialer.call_list_csv import ImportFileError, Reject, read_rows
from dialer.contact_rows import mark_do_not_call
from dialer.db import DialerDataError
from dialer.models import Contact, ContactEvent, ContactState, DncEntry, EventKind


@dataclass(frozen=True)
class DncListing:
    phone: str
    reason: str
    added_at: datetime


@dataclass
class DncImportReport:
    file: Path
    rows: int = 0
    added: int = 0
    already: int = 0
    contacts_marked: int = 0
    rejects: list[Reject] = field(default_factory=list)


def normalize(number: str, region: str = "") -> str:
    """``number`` in E.164, or :class:`DialerDataError` saying why it is not a number."""
    try:
        parsed = phonenumbers.parse(number, region or None)
    except phonenumbers.NumberParseException:
        hint = "" if region else " (a national number? pass --region)"
        raise DialerDataError(f"{number!r} is not a phone number{hint}") from None
    if not phonenumbers.is_possible_number(parsed):
        raise DialerDataError(f"{number!r} is not a possible phone number for its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def add_in_session(session: Session, phone: str, reason: str, now: datetime) -> tuple[bool, int]:
    """Add an E.164 ``phone`` inside the caller's transaction.

    Returns (newly added, contacts marked). Used by :func:`add` and by the store when a
    flow ends with outcome ``do_not_call``.
    """
    exists = session.get(DncEntry, phone) is not None
    if not exists:
        session.add(DncEntry(phone=phone, reason=reason, added_at=now))
        session.flush()
    return not exists, _mark(session, phone, True, f"added: {reason}" if reason else "added", now)


def add(engine: Engine, number: str, reason: str, now: datetime, region: str = "") -> tuple[str, bool, int]:
    """Add ``number``; returns (E.164, newly added, contacts marked)."""
    phone = normalize(number, region)
    with Session(engine) as session, session.begin():
        added, marked = add_in_session(session, phone, reason, now)
    return phone, added, marked


def remove(engine: Engine, number: str, now: datetime, region: str = "") -> tuple[str, int]:
    """Remove ``number``; returns (E.164, contacts unmarked). Unknown numbers are an error."""
    phone = normalize(number, region)
    with Session(engine) as session, session.begin():
        if session.execute(delete(DncEntry).where(DncEntry.phone == phone)).rowcount == 0:  # type: ignore[attr-defined]
            raise DialerDataError(f"{phone} is not on the do-not-call list")
        unmarked = _mark(session, phone, False, "removed from the do-not-call list", now)
    return phone, unmarked


def listing(engine: Engine) -> Iterator[DncListing]:
    with Session(engine) as session:
        for entry in session.scalars(select(DncEntry).order_by(DncEntry.added_at, DncEntry.phone)):
            yield DncListing(entry.phone, entry.reason, entry.added_at)


def import_file(engine: Engine, path: Path, now: datetime, region: str = "") -> DncImportReport:
    """Add every number of a CSV with a ``phone`` column (and optional ``reason``), in one
    transaction; unusable rows are reported like call-list rejects."""
    report = DncImportReport(file=path)
    header, rows = read_rows(path, {})
    phone_at = header.index("phone")
    reason_at = header.index("reason") if "reason" in header else None
    with Session(engine) as session, session.begin():
        for line, values in rows:
            report.rows += 1
            raw = values[phone_at].strip()
            try:
                phone = normalize(raw, region) if raw else ""
            except DialerDataError as exc:
                report.rejects.append(Reject(line, "phone", str(exc)))
                continue
            if not phone:
                report.rejects.append(Reject(line, "phone", "missing (required)"))
                continue
            reason = values[reason_at].strip() if reason_at is not None else f"imported from {path.name}"
            added, marked = add_in_session(session, phone, reason, now)
            report.added += added
            report.already += not added
            report.contacts_marked += marked
    return report


def _mark(session: Session, phone: str, dnc: bool, detail: str, now: datetime) -> int:
    """Listing: every contact with ``phone`` is marked, and those not yet called or about to be
    ends ``do_not_call`` at once (a live call is not cut). Unlisting: contacts that are not final
    may be called again; a contact that already ended ``do_not_call`` stays so."""
    if dnc:
        query = select(Contact).where(Contact.phone == phone, Contact.dnc.is_(False))
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()  # a worker's check before its INVITE waits, or we do
        contacts = list(session.scalars(query))
        for contact in contacts:
            mark_do_not_call(session, contact, now, detail)
        return len(contacts)
    ids = list(
        session.scalars(
            select(Contact.id).where(
                Contact.phone == phone, Contact.dnc.is_(True), Contact.state != ContactState.DONE
            )
        )
    )
    if not ids:
        return 0
    session.execute(update(Contact).where(Contact.id.in_(ids)).values(dnc=False))
    session.execute(
        insert(ContactEvent),
        [{"contact_id": i, "at": now, "kind": EventKind.DNC_CLEARED, "detail": detail} for i in ids],
    )
    return len(ids)


__all__ = [
    "DncImportReport",
    "DncListing",
    "ImportFileError",
    "add",
    "add_in_session",
    "import_file",
    "listing",
    "normalize",
    "remove",
]
