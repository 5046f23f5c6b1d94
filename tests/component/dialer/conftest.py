"""Database fixtures: every test gets a fresh SQLite file and, when reachable, a fresh
PostgreSQL schema (tests/db_fixtures.py). PostgreSQL missing: skip, but fail under CI=true."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from dialer.db import make_engine, upgrade_database
from tests.db_fixtures import BACKENDS, fresh_database


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A URL to an empty database (not yet migrated) on each backend."""
    with fresh_database(
        request.param, tmp_path_factory.mktemp("db") / "dialer.sqlite3", "dialer_test"
    ) as url:
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated database on each backend."""
    upgrade_database(db_url)
    eng = make_engine(db_url)
    try:
        yield eng
    finally:
        eng.dispose()
