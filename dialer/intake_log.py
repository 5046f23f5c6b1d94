"""What intake logs, and what it never logs: a number (only masked), a token, a reason's text.

A refusal's reason may quote the input and an exception's message may quote a database row,
so events carry field names, statuses and where a failure was raised, never those texts. The
helpers here are shared by HTTP and MQTT so the two sides log a request the same way.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import Any

from config.logs import log_event, mask_number
from dialer.intake_answers import IntakeAnswer, IntakeStatus, OnAdded, answer, iso, label
from dialer.intake_request import MAX_REQUEST_ID

LOG = logging.getLogger("ivr.dialer.intake")


def failure_site(exc: BaseException) -> str:
    """Where ``exc`` was raised (file:line function), for a log line that must not carry its
    message: a database error's message may quote the number."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__name__
    last = frames[-1]
    return f"{type(exc).__name__} at {Path(last.filename).name}:{last.lineno} in {last.name}"


def internal_error(
    exc: BaseException, *, source: str, client: str = "", request_id: str | None = None
) -> IntakeAnswer:
    """Log a bug where it happened and answer 500: a bug costs one request, not the server."""
    fields: dict[str, Any] = {"source": source}
    if client:
        fields["client"] = client
    log_event("intake.failed", logging.ERROR, LOG, **fields, error=failure_site(exc))
    return answer(IntakeStatus.ERROR, "internal error; nothing may have been stored; try again", request_id)


def notify(on_added: OnAdded | None, result: IntakeAnswer, source: str) -> None:
    """Tell ``on_added`` about a stored contact; its failure is logged, never the request's."""
    if on_added is None or not result.created or result.contact is None:
        return
    try:
        on_added(result.contact)
    except Exception as exc:  # the contact is stored: the dialer finds it at its next poll
        log_event("intake.on_added_failed", logging.ERROR, LOG, source=source, error=failure_site(exc))


def log_answer(result: IntakeAnswer, *, source: str, campaign: str, client: str = "") -> None:
    """One event line per request: no number but a masked one, no reason text (it may quote input)."""
    fields: dict[str, Any] = {"source": source, "campaign": label(campaign), "status": result.status.value}
    if client:
        fields["client"] = client
    if result.request_id is not None:
        fields["request_id"] = label(result.request_id, MAX_REQUEST_ID)
    if result.contact is not None:
        fields.update(
            contact=result.contact.contact_id,
            number=mask_number(result.contact.phone),
            next_attempt_at=iso(result.contact.next_attempt_at) or "none",
        )
    if result.problems:
        fields["fields"] = ",".join(dict.fromkeys(p.field for p in result.problems))
    if result.status in (IntakeStatus.CREATED, IntakeStatus.UNCHANGED):
        log_event(f"intake.{result.status.value}", logging.INFO, LOG, **fields)
    elif result.http_status >= 500:
        log_event("intake.failed", logging.ERROR, LOG, **fields)
    else:
        log_event("intake.refused", logging.INFO, LOG, **fields)
