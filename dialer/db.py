"""Database engine and schema upgrades for the dialer.

SQLite (the default, one file under the data dir) runs in WAL mode with a busy timeout and
takes its write lock at ``BEGIN`` (``BEGIN IMMEDIATE``), so two workers never both read a
contact as free and then both lease it. PostgreSQL is for several worker processes.
Every command calls :func:`upgrade_database` first; migrations only ever add.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from config.errors import IvrError
from config.logs import log_event

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
_LOG = logging.getLogger("ivr.dialer.db")


class DialerDataError(IvrError):
    """Dialer data could not be read or written: bad input, unknown campaign, database error."""


class CampaignNotFoundError(DialerDataError):
    def __init__(self, name: str) -> None:
        super().__init__(f"campaign '{name}' does not exist (import a call list first)")
        self.name = name


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout, foreign keys and immediate writes."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DialerDataError(f"database url {url!r} is not valid: {exc}") from exc
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **kwargs)
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        **kwargs,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (see _on_begin).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_database(target: str | Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (Alembic ``upgrade``); safe to call at every start."""
    engine = make_engine(target) if isinstance(target, str) else target
    url = engine.url.render_as_string(hide_password=False)
    cfg = alembic_config(url)
    # Alembic reports every step at INFO; one event line per real upgrade is enough.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        before = current_revision(engine)
        with engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            conn.commit()
        after = current_revision(engine)
        if after != before:
            log_event("database schema upgraded", logger=_LOG, before=before or "empty", after=after)
    except OperationalError as exc:
        raise DialerDataError(f"cannot open database {engine.url!r}: {exc.orig}") from exc
    finally:
        if isinstance(target, str):
            engine.dispose()


def open_database(url: str) -> Engine:
    """Upgrade the schema, then return an engine: what every command (and ``serve``) does first."""
    upgrade_database(url)
    return make_engine(url)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
