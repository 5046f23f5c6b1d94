"""CSRF protection, once for every page: an unsafe request (POST, PUT, PATCH, DELETE) must carry
the session's token, as the form field ``csrf`` or the header ``X-CSRF-Token``, else 403.

A pure ASGI middleware under the session middleware; a form body is read (up to a limit),
checked and replayed to the page untouched, so page modules need nothing.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import MutableMapping
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FIELD = "csrf"
HEADER = "x-csrf-token"
SESSION_KEY = "csrf"
MAX_BODY = 64 * 1024 * 1024
"""The largest body read for the check (a call list upload); a bigger one is refused (413)."""


def new_token() -> str:
    return secrets.token_urlsafe(32)


def session_token(session: MutableMapping[str, Any]) -> str:
    """The session's token, made on first use (the login page makes it before anyone logs in)."""
    token = session.get(SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = session[SESSION_KEY] = new_token()
    return token


def token_ok(expected: object, given: object) -> bool:
    """Constant-time comparison; a missing token on either side never matches."""
    if not isinstance(expected, str) or not isinstance(given, str) or not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


class CsrfMiddleware:
    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE:
            await self.app(scope, receive, send)
            return
        expected = scope.get("session", {}).get(SESSION_KEY)
        request = Request(scope)
        header = request.headers.get(HEADER)
        if header is not None:
            if token_ok(expected, header):
                await self.app(scope, receive, send)
            else:
                await _refuse(scope, receive, send, "CSRF token in X-CSRF-Token does not match the session")
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                response = PlainTextResponse(f"request body larger than {self.max_body} bytes", 413)
                await response(scope, receive, send)
                return
        given = await _form_field(scope, bytes(body))
        if not token_ok(expected, given):
            await _refuse(
                scope, receive, send, "form has no valid CSRF token (reload the page and try again)"
            )
            return
        await self.app(scope, _replay(bytes(body), receive), send)


async def _form_field(scope: Scope, body: bytes) -> str | None:
    content_type = Request(scope).headers.get("content-type", "")
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return None
    request = Request(scope, _replay(body, None))
    try:
        form: FormData = await request.form()
    except Exception:  # a malformed body: no token found, refused below with a clear reason
        return None
    try:
        value = form.get(FIELD)
        return value if isinstance(value, str) else None
    finally:
        await form.close()


def _replay(body: bytes, receive: Receive | None) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        if receive is None:
            return {"type": "http.disconnect"}
        return await receive()

    return replay


async def _refuse(scope: Scope, receive: Receive, send: Send, reason: str) -> None:
    await PlainTextResponse(f"403 Forbidden: {reason}", status_code=403)(scope, receive, send)
