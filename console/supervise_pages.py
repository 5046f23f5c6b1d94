"""Listen / Barge / Take over from the live calls page: ask the running ``serve`` to ring the
logged-in supervisor's own phone into a call (docs/supervision.md).

The console never decides alone: it sends the request over serve's control socket
(:func:`ivr.supervisor_client.send_request`) naming the user it authenticated, and the engine
checks that user's role and phone again and writes the ``supervise`` audit row before anything
rings. The phone is one registered to the user in the roster ``<data dir>/supervisors.yaml``
(the engine never rings a URI it was merely given). A request that never reaches an engine (no
phone registered, no serve running, no such live call) is audited here instead, so every use
leaves a row. Permission ``supervise``: anyone else gets 403.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from config.logs import log_event, mask_number
from console.recording_access import accessor, audit
from console.web import ConsoleContext, User, context_of, require
from ivr.supervisor_client import SupervisionError, load_roster, send_request
from recordings.errors import RecordingError
from recordings.sidecar import check_call_id
from supervision.supervisor_access import normalise_uri
from supervision.supervisor_modes import DTMF_KEYS, MODES

_LOG = logging.getLogger("console.supervise")
MODE_LABELS = {"listen": "Listen", "barge": "Barge", "takeover": "Take over"}
REQUEST_TIMEOUT_S = 10.0
FLASH = "live.supervise"


def roster_file(context: ConsoleContext) -> Path:
    return context.settings.data_path / "supervisors.yaml"


def phones_of(context: ConsoleContext, user: str) -> tuple[list[str], str]:
    """The SIP phones registered to ``user`` in the roster (sorted), and why there are none."""
    path = roster_file(context)
    try:
        roster = load_roster(path)
    except SupervisionError as exc:
        return [], str(exc)
    entry = roster.get(user)
    if entry is None or not entry.uris:
        return [], f"no phone is registered to {user} in {path}"
    return sorted(entry.uris), ""


@dataclass(frozen=True)
class Outcome:
    """What the page shows after a request: the request in words and the engine's answer."""

    ok: bool
    status: int
    call_id: str
    mode: str
    message: str
    audited: bool
    """True when an engine holding the call answered: it wrote the audit row itself."""

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "call_id": self.call_id, "mode": self.mode, "message": self.message}


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    try:
        return {key: value for key, value in form.items() if isinstance(value, str)}
    finally:
        await form.close()


def _checked(form: dict[str, str]) -> tuple[str, str]:
    call_id, mode = form.get("call_id", "").strip(), form.get("mode", "").strip()
    try:
        check_call_id(call_id)
    except RecordingError as exc:
        raise HTTPException(400, f"field call_id: {exc}") from None
    if mode not in MODES:
        raise HTTPException(400, f"field mode: {mode[:40]!r} is not one of {', '.join(MODES)}")
    return call_id, mode


def _phone(context: ConsoleContext, user: User, wanted: str) -> tuple[str, str]:
    """The phone to ring (the one chosen if registered, else the first), or why none."""
    phones, problem = phones_of(context, user.name)
    if not phones:
        return "", problem
    if not wanted:
        return phones[0], ""
    try:
        normalised = normalise_uri(wanted)
    except ValueError as exc:
        return "", str(exc)
    if normalised not in phones:
        return "", f"{mask_number(normalised)} is not a phone registered to {user.name}"
    return normalised, ""


async def supervise(request: Request) -> Response:
    """POST ``call_id``, ``mode`` (and ``uri``, one of the user's phones): JSON for the page's
    script (``Accept: application/json``), else back to /live with the outcome shown."""
    user = require(request, "supervise")
    context = context_of(request)
    form = await _form(request)
    call_id, mode = _checked(form)
    uri, problem = _phone(context, user, form.get("uri", "").strip()[:300])
    if problem:
        outcome = Outcome(False, 409, call_id, mode, f"{MODE_LABELS[mode]} refused: {problem}", False)
    else:
        outcome = await _ask_engine(context, request, user, call_id=call_id, mode=mode, uri=uri)
    if not outcome.audited:
        detail = {
            "step": "requested",
            "mode": mode,
            "supervisor": mask_number(uri) if uri else "",
            "allowed": False,
            "decision": outcome.message,
        }
        audit(context, request, user, "supervise", [call_id], detail=detail)
    level = logging.INFO if outcome.ok else logging.WARNING
    log_event("console.supervise", level, _LOG, call_id=call_id, user=user.name, mode=mode, ok=outcome.ok)
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(outcome.to_json(), status_code=outcome.status)
    request.session[FLASH] = outcome.to_json()
    return RedirectResponse(request.url_for("live_calls").path, status_code=303)


async def _ask_engine(
    context: ConsoleContext, request: Request, user: User, *, call_id: str, mode: str, uri: str
) -> Outcome:
    """Send the request as the CLI does (who, from where); the outcome of the engine's answer."""
    who = accessor(request, user)
    payload = {
        "call_id": call_id,
        "mode": mode,
        "uri": uri,
        "user": user.name,
        "os_user": who.os_user,
        "host": who.host,
        "tty": who.tty,
        "remote": who.remote,
    }
    label = MODE_LABELS[mode]
    try:
        reply = await asyncio.to_thread(send_request, context.settings.data_path, payload, REQUEST_TIMEOUT_S)
    except (SupervisionError, OSError) as exc:
        return Outcome(False, 503, call_id, mode, f"{label} not sent: {exc}", False)
    if reply.get("ok"):
        keys = ", ".join(f"{key} {name}" for key, name in DTMF_KEYS.items())
        ringing = str(reply.get("ringing", mask_number(uri)))
        return Outcome(True, 200, call_id, mode, f"{label}: ringing {ringing}; on that phone {keys}", True)
    error = str(reply.get("error", "no reason given"))
    if reply.get("found") is True:  # the engine holding the call refused, and audited it
        status = 403 if error.startswith("refused") else 409
        return Outcome(False, status, call_id, mode, f"{label} refused: {error}", True)
    return Outcome(False, 404, call_id, mode, f"{label} not sent: {error}", False)


def take_flash(request: Request) -> dict[str, Any] | None:
    """The outcome of the last request made without the script (shown once on /live)."""
    flash = request.session.pop(FLASH, None)
    return flash if isinstance(flash, dict) else None


def routes() -> list[BaseRoute]:
    return [Route("/live/supervise", supervise, methods=["POST"], name="live_supervise")]
