"""A campaign's contacts, a page at a time, and one contact's history: attempts with their SIP
results, events, outcome and a link to each call's recording page.

Pages use keyset paging (``after`` = the last contact id shown), so the hundredth page of a
100,000-contact campaign costs what the first does. Numbers are shown masked in the list;
opening a contact shows its number and is an audit line (``console.contact_viewed``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from config.logs import log_event, mask_number
from console.web import context_of, render, require
from dialer.models import Attempt, Campaign, Contact, ContactEvent, ContactState

AUDIT = logging.getLogger("ivr.console.audit")
PAGE = 50
STATES = tuple(state.value for state in ContactState)


@dataclass(frozen=True)
class ContactPage:
    rows: list[dict[str, Any]]
    total: int
    next_after: int | None


def _campaign_id(session: Session, name: str) -> int:
    found = session.scalar(select(Campaign.id).where(Campaign.name == name))
    if found is None:
        raise HTTPException(404, "no such campaign")
    return int(found)


def contact_page(engine: Engine, name: str, state: str | None, after: int, size: int = PAGE) -> ContactPage:
    with Session(engine) as session:
        where = [Contact.campaign_id == _campaign_id(session, name)]
        if state:
            where.append(Contact.state == state)
        total = session.scalar(select(func.count()).select_from(Contact).where(*where)) or 0
        found = session.execute(
            select(
                Contact.id,
                Contact.row_number,
                Contact.phone,
                Contact.state,
                Contact.attempts,
                Contact.last_result,
                Contact.outcome,
                Contact.next_attempt_at,
                Contact.window_end,
                Contact.dnc,
            )
            .where(*where, Contact.id > after)
            .order_by(Contact.id)
            .limit(size + 1)
        ).all()
    rows = [dict(r._mapping, phone=mask_number(r.phone)) for r in found[:size]]
    return ContactPage(rows, int(total), rows[-1]["id"] if len(found) > size else None)


def contact_history(engine: Engine, name: str, contact_id: int) -> dict[str, Any]:
    with Session(engine) as session:
        camp = _campaign_id(session, name)
        contact = session.get(Contact, contact_id)
        if contact is None or contact.campaign_id != camp:
            raise HTTPException(404, "no such contact in this campaign")
        attempts = session.scalars(
            select(Attempt).where(Attempt.contact_id == contact_id).order_by(Attempt.id)
        ).all()
        events = session.scalars(
            select(ContactEvent).where(ContactEvent.contact_id == contact_id).order_by(ContactEvent.id)
        ).all()
        session.expunge_all()
    return {"contact": contact, "attempts": attempts, "events": events}


def _after(request: Request) -> int:
    raw = request.query_params.get("after", "0")
    if not raw.isdigit() or len(raw) > 12:
        raise HTTPException(400, f"after={raw[:20]!r}: expected a contact id")
    return int(raw)


async def contacts_page(request: Request) -> Response:
    require(request, "campaigns.view")
    name = request.path_params["name"]
    state = request.query_params.get("state") or None
    if state is not None and state not in STATES:
        raise HTTPException(400, f"state={state[:20]!r}: expected one of {', '.join(STATES)}")
    page = await run_in_threadpool(contact_page, context_of(request).engine, name, state, _after(request))
    return render(request, "campaigns/contacts.html", name=name, page=page, state=state, states=STATES)


async def contact_page_view(request: Request) -> Response:
    user = require(request, "campaigns.view")
    name = request.path_params["name"]
    contact_id = request.path_params["contact_id"]
    history = await run_in_threadpool(contact_history, context_of(request).engine, name, contact_id)
    log_event("console.contact_viewed", logger=AUDIT, user=user.name, campaign=name, contact_id=contact_id)
    return render(request, "campaigns/contact.html", name=name, **history)


def routes() -> list[BaseRoute]:
    return [
        Route("/campaigns/{name}/contacts", contacts_page, methods=["GET"], name="campaign_contacts"),
        Route(
            "/campaigns/{name}/contacts/{contact_id:int}",
            contact_page_view,
            methods=["GET"],
            name="campaign_contact",
        ),
    ]
