"""The console's ASGI application: sessions, CSRF, static files, and every page module's routes.

Page modules written separately (recordings, flows, live calls) are mounted when present, each
through its ``routes() -> list[BaseRoute]``, so the console starts with whatever is installed.
A page module that runs work on the event loop (the live calls' MQTT subscription) also has
``async startup(app)`` and ``async shutdown(app)``, run by the app's lifespan when the server
starts and stops: nothing it started outlives the app (a task left behind kept a test client,
and its event loop, from closing).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import ModuleType
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from config.logs import log_event
from config.settings import Settings
from console import account_pages, campaign_pages, contact_pages, wallboard_pages
from console.csrf import CsrfMiddleware
from console.users import UserStore
from console.web import STATIC_DIR, ConsoleContext, current_user, render, secret_key
from dialer.db import open_database
from recordings.database import open_index_database

OPTIONAL_PAGES = ("console.recording_pages", "console.flow_pages", "console.live_pages")
SESSION_COOKIE = "ivr_console"
_LOG = logging.getLogger("ivr.console")


def _present(modules: tuple[str, ...]) -> list[ModuleType]:
    """Each page module that exists; a module that is absent is skipped."""
    found: list[ModuleType] = []
    for name in modules:
        try:
            found.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:  # the module exists but something it imports does not
                raise
    return found


def optional_routes(modules: tuple[str, ...] = OPTIONAL_PAGES) -> list[BaseRoute]:
    """The routes of each page module that exists; a module that is absent is skipped."""
    routes: list[BaseRoute] = []
    for module in _present(modules):
        routes += module.routes()
    return routes


def _lifespan(modules: tuple[str, ...]) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """At start, every page module's ``startup(app)``; at stop, every ``shutdown(app)``, each
    even when an earlier one failed."""
    present = _present(modules)
    openers: list[Callable[[Starlette], Awaitable[None]]] = [
        module.startup for module in present if hasattr(module, "startup")
    ]
    closers: list[Callable[[Starlette], Awaitable[None]]] = [
        module.shutdown for module in present if hasattr(module, "shutdown")
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for open_page in openers:
            await open_page(app)
        try:
            yield
        finally:
            for close in closers:
                try:
                    await close(app)
                except Exception as exc:  # one page's failure must not keep the others open
                    log_event(
                        "console.shutdown_failed", logging.ERROR, _LOG, page=close.__module__, error=str(exc)
                    )

    return lifespan


class _Sessions:
    """Signed session cookies, ``Secure`` when the request came over https."""

    def __init__(self, app: ASGIApp, secret: str, max_age: int) -> None:
        common: dict[str, Any] = dict(
            secret_key=secret, session_cookie=SESSION_COOKIE, max_age=max_age, same_site="lax"
        )
        self.plain = SessionMiddleware(app, https_only=False, **common)
        self.secure = SessionMiddleware(app, https_only=True, **common)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chosen = self.secure if scope.get("scheme") in ("https", "wss") else self.plain
        await chosen(scope, receive, send)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    accept = request.headers.get("accept", "")
    wants_page = "text/html" in accept or (request.method == "GET" and "text/event-stream" not in accept)
    if exc.status_code == 401 and wants_page:
        if request.method != "GET":  # a form posted after the session ended: log in again first
            return RedirectResponse("/login", status_code=303)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)
    if wants_page:
        return render(
            request, "error.html", status_code=exc.status_code, status=exc.status_code, detail=exc.detail
        )
    return PlainTextResponse(f"{exc.status_code}: {exc.detail}", status_code=exc.status_code)


def open_context(settings: Settings, engine: Engine | None = None) -> ConsoleContext:
    """Open (and upgrade) the campaign database and the call index, as every command does."""
    engine = engine or open_database(settings.database_url, settings.database, "console")
    return ConsoleContext(
        settings=settings,
        engine=engine,
        index_engine=open_index_database(settings.database_url, settings.database),
        recordings_root=settings.recordings_path,
        flows_dir=settings.flow_path.parent,
        users=UserStore(engine),
        session_s=settings.console.session_hours * 3600.0,
    )


def create_app(context: ConsoleContext) -> Starlette:
    routes: list[BaseRoute] = [
        *account_pages.routes(),
        *campaign_pages.routes(),
        *wallboard_pages.routes(),
        *contact_pages.routes(),
        *optional_routes(),
        Mount("/static", app=StaticFiles(directory=str(STATIC_DIR)), name="static"),
    ]
    secret = secret_key(context.settings)
    max_age = int(context.session_s)
    middleware = [
        Middleware(_Sessions, secret=secret, max_age=max_age),
        Middleware(CsrfMiddleware),
    ]
    handlers: dict[Any, Callable[..., Any]] = {HTTPException: _http_error}
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers=handlers,
        lifespan=_lifespan(OPTIONAL_PAGES),
    )
    app.state.console = context
    return app


__all__ = ["create_app", "current_user", "open_context", "optional_routes"]
