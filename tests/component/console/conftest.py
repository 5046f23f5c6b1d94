"""Console fixtures over a real database: a context per backend (SQLite file, and a fresh
PostgreSQL schema when reachable; skipped without it, failed under CI=true), the app, and
a factory of logged-in clients by role. Page modules of every area use them."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.testclient import TestClient

from config.settings import load_settings
from console.app import create_app, open_context
from console.users import UserStore
from console.web import ConsoleContext
from dialer.models import utcnow
from recordings.database import forget_engines
from tests.db_fixtures import fresh_database

PASSWORD = "correct horse battery"
BACKENDS = ["sqlite", "postgresql"]
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
"""Argon2id with small costs: the tests check the flow, not the hash's strength."""
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(params=["sqlite"])
def console_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLite by default; a test marked ``@pytest.mark.parametrize("console_db_url", BACKENDS,
    indirect=True)`` runs on PostgreSQL too."""
    with fresh_database(request.param, tmp_path / "ivr.sqlite3", "console_test", forget_engines) as url:
        yield url


@pytest.fixture
def console_context(console_db_url: str, tmp_path: Path) -> Iterator[ConsoleContext]:
    settings = load_settings(
        env={}, overrides={"data_dir": str(tmp_path / "data"), "database.url": console_db_url}
    )
    context = open_context(settings)
    context.users = UserStore(context.engine, FAST_HASHER)
    context.refresh_s = 0.0  # no board cache: a test reads what it just wrote
    try:
        yield context
    finally:
        context.engine.dispose()


@pytest.fixture
def console_app(console_context: ConsoleContext) -> Starlette:
    return create_app(console_context)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "page has no CSRF field"
    return found.group(1)


def log_in(client: TestClient, name: str, password: str = PASSWORD) -> TestClient:
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login", data={"name": name, "password": password, "csrf": token}, follow_redirects=False
    )
    assert response.status_code == 303, response.text[:300]
    return client


@pytest.fixture
def client_as(console_app: Starlette, console_context: ConsoleContext) -> Callable[..., TestClient]:
    """``client_as("manager", grants=("recordings.play",))``: a client logged in as a new user."""

    def make(role: str, grants: tuple[str, ...] = (), name: str | None = None) -> TestClient:
        name = name or f"{role}-{uuid.uuid4().hex[:6]}"
        console_context.users.add(name, role, PASSWORD, utcnow(), frozenset(grants))
        return log_in(TestClient(console_app), name)

    return make
