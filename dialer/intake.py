"""Real-time intake's one write path: a request stored in a running campaign, as an import would.

HTTP (:mod:`dialer.intake_http`) and MQTT (:mod:`dialer.intake_mqtt`) both store through
:func:`add_contact`, and it judges a request with the importer's own row checks
(:class:`dialer.importer.RowParser`) and the campaign's rules, so a contact added by intake
gets the same window, hash and do-not-call mark as a call-list row. A refused request stores
nothing. What a request may hold and what it gets back: docs/intake.md.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from config.logs import log_event
from dialer.call_list_csv import control_character
from dialer.call_result import Outcome, PolicyError
from dialer.db import database_error
from dialer.importer import STANDARD_COLUMNS, CampaignSpec, ContactRow, RowParser
from dialer.intake_answers import (
    AddedContact,
    IntakeAnswer,
    IntakeStatus,
    Problem,
    answer,
    invalid,
    iso,
    label,
)
from dialer.intake_log import LOG
from dialer.intake_request import IntakeRequest, text_problem
from dialer.models import (
    Campaign,
    CampaignKind,
    CampaignState,
    Contact,
    ContactEvent,
    ContactState,
    DncEntry,
    EventKind,
    MachinePolicy,
)
from dialer.scheduler import ContactSlot, is_dialable

__all__ = ["AddedContact", "add_contact", "campaign_name_problem", "campaign_spec"]

MAX_CAMPAIGN_NAME = 200  # campaigns.name
INTAKE_ROW = 0
"""``contacts.row_number`` of a contact added by intake (file rows start at 2)."""
ACCEPTING = frozenset({CampaignState.RUNNING, CampaignState.PAUSED})


def campaign_spec(campaign: Campaign) -> CampaignSpec:
    """The spec an import of ``campaign`` would use: its region, kind, window and rules."""
    return CampaignSpec(
        kind=CampaignKind(campaign.kind),
        flow=campaign.flow,
        region=campaign.region,
        callback_window=timedelta(seconds=campaign.callback_window_s),
        starts_at=campaign.starts_at,
        ends_at=campaign.ends_at,
        calling_hours=dict(campaign.calling_hours),
        retry=dict(campaign.retry),
        machine_policy=MachinePolicy(campaign.machine_policy),
    )


def campaign_name_problem(name: str) -> str:
    """Why ``name`` cannot be a campaign's name (so no lookup is needed), or ``""``."""
    if not name or len(name) > MAX_CAMPAIGN_NAME:
        return "no campaign has such a name"
    return text_problem(name) or control_character(name)


def add_contact(
    engine: Engine, campaign: str, request: IntakeRequest, *, source: str, now: datetime
) -> IntakeAnswer:
    """Store ``request`` in ``campaign`` in one transaction, with its ``imported`` event.

    ``source`` is ``http`` or ``mqtt`` (the event says ``intake http``). Synchronous: call it
    with ``asyncio.to_thread`` from the event loop. Never raises for a bad request or an
    unreachable database; the answer says what happened.
    """
    rid = request.request_id
    if campaign_name_problem(campaign):
        return answer(IntakeStatus.CAMPAIGN_NOT_FOUND, f"no campaign named {label(campaign)!r}", rid)
    for attempt in range(2):
        try:
            with Session(engine) as session:
                result = _add(session, campaign, request, source, now)
                if result.created:
                    session.commit()
                else:
                    session.rollback()
                return result
        except IntegrityError:
            # The same number arrived twice at once and the other request won: answer as if
            # this one came second (unchanged or duplicate).
            if attempt:
                raise
        except DBAPIError as exc:
            problem = database_error(exc, "intake", during=f"adding a contact to {label(campaign)}")
            log_event("intake.database_error", logging.ERROR, LOG, source=source, error=str(problem))
            return answer(
                IntakeStatus.UNAVAILABLE, "the database did not answer; nothing stored; try again", rid
            )
    raise AssertionError("unreachable")  # pragma: no cover


def _add(session: Session, name: str, request: IntakeRequest, source: str, now: datetime) -> IntakeAnswer:
    rid = request.request_id
    query = select(Campaign).where(Campaign.name == name)
    if session.get_bind().dialect.name == "postgresql":
        # Shares the row with other intakes but keeps finish_campaigns (which must lock it
        # FOR UPDATE) from finishing the campaign under a contact being added.
        query = query.with_for_update(read=True)
    campaign = session.scalars(query).one_or_none()
    if campaign is None:
        return answer(IntakeStatus.CAMPAIGN_NOT_FOUND, f"no campaign named {label(name)!r}", rid)
    state = CampaignState(campaign.state)
    if state not in ACCEPTING:
        return answer(
            IntakeStatus.CAMPAIGN_NOT_RUNNING,
            f"campaign {label(name)!r} is {state.value}: it takes contacts while running or paused",
            rid,
        )
    header, values = request.as_row()
    try:
        parser = RowParser(header, campaign_spec(campaign))
    except (PolicyError, ValueError) as exc:
        return answer(
            IntakeStatus.CAMPAIGN_NOT_RUNNING, f"campaign {label(name)!r} has unusable rules: {exc}", rid
        )
    parsed = parser.parse(INTAKE_ROW, values)
    if isinstance(parsed, list):
        return invalid(
            (
                Problem(
                    r.field if r.field in STANDARD_COLUMNS else f"fields.{label(r.field)}",
                    _for_intake(r.reason),
                )
                for r in parsed
            ),
            rid,
        )
    existing = session.scalars(
        select(Contact).where(Contact.campaign_id == campaign.id, Contact.phone == parsed.phone)
    ).one_or_none()
    if existing is not None:
        return _already_there(existing, campaign, parsed, rid)
    slot = ContactSlot(
        id=0,
        e164=parsed.phone,
        tz=parsed.timezone,
        window_start=parsed.window_start,
        window_end=parsed.window_end,
        priority=parsed.priority,
        next_attempt_at=parsed.window_start or now,
    )
    verdict = is_dialable(slot, parser.policy, now)
    if not verdict.ok and verdict.not_before is None:
        return _undialable(campaign, parser, parsed, now, rid)
    dnc = session.get(DncEntry, parsed.phone) is not None
    next_at = (parsed.window_start or now) if dnc else verdict.not_before
    assert next_at is not None
    contact = _contact(campaign.id, parsed, dnc, next_at, now)
    session.add(contact)
    session.flush()
    detail = f"intake {source}"
    session.add(ContactEvent(contact_id=contact.id, at=now, kind=EventKind.IMPORTED, detail=detail))
    if dnc:
        marked = f"{detail}; outcome do_not_call"
        session.add(ContactEvent(contact_id=contact.id, at=now, kind=EventKind.DNC_MARKED, detail=marked))
    session.flush()
    added = _added(contact, campaign, dialable_now=verdict.ok and not dnc and state is CampaignState.RUNNING)
    if dnc:
        message = "stored, but the number is on the do-not-call list: it will not be dialled"
    elif added.dialable_now:
        message = "stored; it may be dialled now"
    else:
        message = f"stored; first call at {iso(next_at)}" + (
            " once the campaign is resumed" if state is CampaignState.PAUSED else ""
        )
    return IntakeAnswer(IntakeStatus.CREATED, message, contact=added, request_id=rid)


def _for_intake(reason: str) -> str:
    """The importer's advice, said for a request rather than a file."""
    return reason.replace("pass --region", "send it with its country code, e.g. +1...").replace(
        "add a timezone column", "send a timezone"
    )


def _already_there(
    existing: Contact, campaign: Campaign, parsed: ContactRow, rid: str | None
) -> IntakeAnswer:
    """The number is in the campaign: a retry of the same request (same hash) is no error."""
    if existing.source_hash == parsed.source_hash:
        return IntakeAnswer(
            IntakeStatus.UNCHANGED,
            "this contact is already in the campaign with the same data; nothing changed",
            contact=_added(existing, campaign, dialable_now=False),
            request_id=rid,
        )
    return IntakeAnswer(
        IntakeStatus.DUPLICATE,
        f"the number is already in campaign {label(campaign.name)!r} with other data"
        f" (contact {existing.id}); nothing stored",
        (Problem("phone", "duplicate: already in the campaign with different data"),),
        request_id=rid,
        duplicate_of=existing.id,
    )


def _undialable(
    campaign: Campaign, parser: RowParser, parsed: ContactRow, now: datetime, rid: str | None
) -> IntakeAnswer:
    """A contact that could never be called: its deadline passed or no calling hours remain."""
    ends_at = parser.policy.ends_at
    if ends_at is not None and now >= ends_at:
        return answer(
            IntakeStatus.CAMPAIGN_NOT_RUNNING,
            f"campaign {label(campaign.name)!r} ended at {iso(ends_at)}; nothing stored",
            rid,
        )
    if parser.policy.kind is CampaignKind.COMPLIANCE_CALLBACK and parsed.window_end is not None:
        closed = now >= parsed.window_end
        reason = (
            f"its callback window closed at {iso(parsed.window_end)}"
            if closed
            else f"no calling hours in {parsed.timezone} remain before its deadline {iso(parsed.window_end)}"
        )
        return invalid([Problem("cooling_off_end", f"{reason}: the callback could never be placed")], rid)
    return answer(
        IntakeStatus.CAMPAIGN_NOT_RUNNING,
        f"campaign {label(campaign.name)!r} has no calling hours left for {parsed.timezone}; nothing stored",
        rid,
    )


def _added(contact: Contact, campaign: Campaign, *, dialable_now: bool) -> AddedContact:
    """What an answer says about a stored contact, just added or found unchanged."""
    pending = contact.state == ContactState.PENDING and not contact.dnc
    return AddedContact(
        contact_id=contact.id,
        campaign=campaign.name,
        campaign_state=campaign.state,
        phone=contact.phone,
        timezone=contact.timezone,
        state=contact.state,
        next_attempt_at=contact.next_attempt_at if pending else None,
        deadline=contact.window_end or campaign.ends_at,
        do_not_call=contact.dnc,
        dialable_now=dialable_now,
    )


def _contact(campaign_id: int, row: ContactRow, dnc: bool, next_at: datetime, now: datetime) -> Contact:
    """The stored contact, as :func:`dialer.importer.import_csv` stores a row."""
    return Contact(
        campaign_id=campaign_id,
        row_number=INTAKE_ROW,
        phone=row.phone,
        raw_phone=row.raw_phone[:64],
        first_name=row.first_name[:200],
        last_name=row.last_name[:200],
        timezone=row.timezone,
        cooling_off_end=row.cooling_off_end,
        window_start=row.window_start,
        window_end=row.window_end,
        priority=row.priority,
        fields=dict(row.fields),
        source_hash=row.source_hash,
        dnc=dnc,
        # On the do-not-call list already: final at once, as at import (never leased or expired).
        state=ContactState.DONE.value if dnc else ContactState.PENDING.value,
        outcome=Outcome.DO_NOT_CALL.value if dnc else None,
        outcome_at=now if dnc else None,
        attempts=0,
        next_attempt_at=next_at,
        lease_token=0,
    )
