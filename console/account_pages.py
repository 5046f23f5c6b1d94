"""Logging in and out: the login form, throttled per user name and per client address.

Each login, logout and failure is one log line (``console.login`` ...) with the user name and
address, never the password. A failure says only "wrong name or password", for any reason.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from config.logs import log_event
from console.csrf import new_token
from console.users import MAX_PASSWORD
from console.web import SESSION_SINCE, SESSION_USER, context_of, current_user, render

_LOG = logging.getLogger("ivr.console.auth")
HOME_PAGES = (
    ("campaigns.view", "/campaigns"),
    ("recordings.search", "/recordings"),
    ("flows.view", "/flows"),
    ("live.view", "/live"),
)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def safe_next(target: str | None) -> str:
    """Only a path on this site (never ``//evil`` or ``https://evil``) is followed after login."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return "/" if parts.scheme or parts.netloc else target


async def home(request: Request) -> Response:
    user = current_user(request)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    for permission, path in HOME_PAGES:
        if user.can(permission):
            return RedirectResponse(path, status_code=303)
    return render(request, "home.html")


async def login_form(request: Request) -> Response:
    return render(request, "login.html", next=safe_next(request.query_params.get("next")), error=None)


async def login(request: Request) -> Response:
    context = context_of(request)
    form = await request.form()
    name = str(form.get("name") or "").strip()[:64]
    password = str(form.get("password") or "")[:MAX_PASSWORD]
    target = safe_next(str(form.get("next") or ""))
    address = client_address(request)
    keys = (f"user:{name.lower()}", f"addr:{address}")
    now = time.monotonic()
    wait = context.throttle.locked_for(keys, now)
    if wait > 0:
        log_event(
            "console.login_throttled", logging.WARNING, _LOG, user=name, client=address, wait_s=round(wait)
        )
        error = f"Too many failed logins: try again in {int(wait) + 1} s."
        return render(request, "login.html", status_code=429, next=target, error=error)
    user = await run_in_threadpool(context.users.authenticate, name, password) if name and password else None
    if user is None:
        lockout = context.throttle.failed(keys, now)
        log_event(
            "console.login_failed", logging.WARNING, _LOG, user=name, client=address, lockout_s=round(lockout)
        )
        return render(request, "login.html", status_code=401, next=target, error="Wrong name or password.")
    context.throttle.succeeded(keys[0])
    request.session.clear()  # a fresh session (and CSRF token) at login: no fixation
    request.session.update({SESSION_USER: user.name, SESSION_SINCE: time.time(), "csrf": new_token()})
    log_event("console.login", logging.INFO, _LOG, user=user.name, role=user.role, client=address)
    return RedirectResponse(target, status_code=303)


async def logout(request: Request) -> Response:
    user = current_user(request)
    if user is not None:
        log_event("console.logout", logging.INFO, _LOG, user=user.name, client=client_address(request))
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


def routes() -> list[BaseRoute]:
    return [
        Route("/", home, methods=["GET"]),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]
