"""One empty database per test, on SQLite and on PostgreSQL: shared by the component conftests.

SQLite is a fresh file; PostgreSQL is a fresh schema in the ``test`` database, created here and
dropped afterwards, so tests running at once never see each other's tables. PostgreSQL missing:
the test is skipped, except under ``CI=true``, where that fails.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

PG_ADMIN_URL = os.environ.get("IVR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]
"""``params`` for a ``db_url`` fixture."""


def pg_admin() -> Engine:
    """An autocommit engine on the test server, or a skip (a failure under CI=true)."""
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        engine.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true but unreachable: {exc.orig}")
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_URL}")
    return engine


@contextlib.contextmanager
def fresh_database(
    backend: str, sqlite_file: Path, prefix: str, before_drop: Callable[[], None] = lambda: None
) -> Iterator[str]:
    """The URL of an empty database on ``backend``; ``before_drop`` runs first on the way out
    (e.g. closing cached engines, whose connections would hold the schema)."""
    if backend == "sqlite":
        try:
            yield f"sqlite:///{sqlite_file}"
        finally:
            before_drop()
        return
    admin = pg_admin()
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    finally:
        before_drop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
