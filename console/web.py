"""What every console page shares: the context on ``app.state.console``, who is logged in,
permission checks, and rendering a template with the user and the CSRF token.

Page modules (campaigns, recordings, flows, live calls) build on these four things only:
``ConsoleContext``, ``current_user``, ``require`` and ``render``.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup, escape
from sqlalchemy import Engine
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from config.errors import ConfigError
from config.settings import Settings
from console.csrf import FIELD, session_token
from console.roles import check_permission
from console.throttle import LoginThrottle
from console.users import User, UserStore

__all__ = ["ConsoleContext", "User", "current_user", "render", "require", "templates"]

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
SESSION_USER = "user"
SESSION_SINCE = "since"
templates = Jinja2Templates(env=Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True))


@dataclass
class ConsoleContext:
    """Everything the pages read, opened once when the console starts."""

    settings: Settings
    engine: Engine
    """The campaign (dialer) database; the users table lives there too."""
    index_engine: Engine
    """The call index, holds and access log (recordings.database), on the same database URL."""
    recordings_root: Path
    flows_dir: Path
    users: UserStore
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    session_s: float = 12 * 3600.0
    """A login lasts this long at most, active or not."""
    refresh_s: float = 2.0
    """How often live pages (the wallboard's server-sent events) look for changes."""


def context_of(request: Request) -> ConsoleContext:
    context: ConsoleContext = request.app.state.console
    return context


def current_user(request: Request) -> User | None:
    """The logged-in user, looked up afresh (a disabled account is out at its next click)."""
    cached = request.scope.get("console.user", False)
    if cached is not False:
        return cached  # type: ignore[no-any-return]
    user: User | None = None
    name = request.session.get(SESSION_USER)
    since = request.session.get(SESSION_SINCE)
    context = context_of(request)
    if not isinstance(since, (int, float)) or time.time() - since > context.session_s:
        name = None  # a login older than the session lifetime (or a forged one) counts for nothing
    if isinstance(name, str):
        found = context.users.get(name)
        user = found if found is not None and not found.disabled else None
    request.scope["console.user"] = user
    return user


def require(request: Request, permission: str) -> User:
    """The user, if logged in (else 401: pages redirect to /login) and allowed (else 403)."""
    check_permission(permission)
    user = current_user(request)
    if user is None:
        raise HTTPException(401, "log in first")
    if not user.can(permission):
        raise HTTPException(403, f"your role ({user.role}) may not do this ({permission})")
    return user


def csrf_token(request: Request) -> str:
    return session_token(request.session)


def render(request: Request, template_name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """``template_name`` with ``user``, ``csrf_token``, ``csrf_input()`` and ``can(permission)``."""
    token = csrf_token(request)
    user = current_user(request)

    def csrf_input() -> Markup:
        return Markup(f'<input type="hidden" name="{FIELD}" value="{escape(token)}">')

    def can(permission: str) -> bool:
        return user is not None and user.can(permission)

    values = {"user": user, "csrf_token": token, "csrf_input": csrf_input, "can": can, **context}
    response: HTMLResponse = templates.TemplateResponse(
        request, template_name, values, status_code=status_code
    )
    return response


def secret_key(settings: Settings) -> str:
    """The session signing key: ``IVR_CONSOLE__SECRET_KEY``, else a 0600 file under the data dir,
    made on first use (so sessions survive a restart)."""
    if settings.console.secret_key:
        return settings.console.secret_key
    path = settings.data_path / "console-secret.key"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text(encoding="ascii").strip()
        if len(key) < 32:
            raise ConfigError(f"{path}: console secret key too short; delete it to make a new one") from None
        return key
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="ascii").strip()
