"""A locked table or a runaway statement makes a command fail with a message naming it, in
bounded time, on SQLite and PostgreSQL; a bad database URL is one line, not a traceback."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from config.settings import DatabaseSettings
from dialer.db import DialerDataError, database_error, make_engine
from tests.component.dialer.dialer_data_helpers import make_campaign

ROOT = Path(__file__).resolve().parents[3]


def run_cli(*argv: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "run_ivr.py", *argv],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextmanager
def contacts_locked(db_url: str) -> Iterator[None]:
    """Another session holds an exclusive lock on ``contacts`` until the block ends."""
    if db_url.startswith("sqlite"):
        raw = sqlite3.connect(make_url(db_url).database or "", isolation_level=None)
        raw.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            raw.execute("ROLLBACK")
            raw.close()
        return
    holder: Engine = create_engine(db_url)
    try:
        with holder.connect() as conn:
            conn.execute(text("LOCK TABLE contacts IN ACCESS EXCLUSIVE MODE"))
            yield
            conn.rollback()
    finally:
        holder.dispose()


@pytest.mark.component
def test_campaign_status_on_a_locked_contacts_table_fails_naming_the_command(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    env = {
        "IVR_DATABASE__URL": db_url,
        "IVR_DATABASE__LOCK_TIMEOUT_S": "1",
        "IVR_DATA_DIR": str(tmp_path),
    }
    make_campaign(engine, "march")
    with contacts_locked(db_url):
        started = time.monotonic()
        proc = run_cli("campaign", "status", "march", env=env)
        elapsed = time.monotonic() - started
    assert proc.returncode == 2, proc
    assert "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: campaign status: gave up after waiting 1 s for a lock another session")
    assert "raise database.lock_timeout_s" in line and "(while running" in line
    assert elapsed < 30


@pytest.mark.component
def test_a_statement_past_its_timeout_is_cancelled_with_a_clear_message(engine: Engine, db_url: str) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite has no statement timeout (its lock wait is the busy timeout)")
    settings = DatabaseSettings(statement_timeout_s=0.3, lock_timeout_s=5)
    limited = make_engine(db_url, settings)
    make_campaign(engine, "march")  # a row, so pg_sleep runs
    try:
        started = time.monotonic()
        with pytest.raises(DBAPIError) as info, limited.connect() as conn:
            conn.execute(text("SELECT pg_sleep(5) FROM campaigns"))
        assert time.monotonic() - started < 4
        message = str(database_error(info.value, "campaign export", settings))
        assert message == (
            "campaign export: the statement ran longer than 0.3 s and was cancelled "
            "(database.statement_timeout_s) (while running SELECT on campaigns)"
        )
    finally:
        limited.dispose()


@pytest.mark.component
def test_timeouts_survive_the_pool_returning_a_connection(db_url: str) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL settings only")
    engine = make_engine(db_url, DatabaseSettings(statement_timeout_s=7, lock_timeout_s=3))
    try:
        for _ in range(2):  # the second checkout reuses the pooled connection after its rollback
            with engine.connect() as conn:
                values = conn.execute(text("SHOW statement_timeout")).scalar(), conn.execute(
                    text("SHOW lock_timeout")
                ).scalar()
                assert values == ("7s", "3s")
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("notadb://x", "database url 'notadb://x': unknown database kind 'notadb'; use sqlite:///PATH"),
        ("mysql://admin:hunter2@db/calls", "database url 'mysql://admin:***@db/calls': its driver is not"),
        ("::", "database url '::' is not a URL; use e.g. sqlite:///PATH"),
    ],
    ids=["unknown-scheme", "missing-driver", "not-a-url"],
)
def test_a_bad_database_url_is_one_line_without_a_traceback(url: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(DialerDataError, match="^" + message.replace("(", r"\(").replace("*", r"\*")):
        make_engine(url)
    proc = run_cli("campaign", "status", env={"IVR_DATABASE__URL": url, "IVR_DATA_DIR": str(tmp_path)})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"error: {message}" or proc.stderr.strip().startswith(f"error: {message}")
    assert "hunter2" not in proc.stderr
