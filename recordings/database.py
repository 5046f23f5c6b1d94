"""The database the call index, holds and access log live in: the dialer's (``settings.database_url``).

The recordings package sits below the dialer's adapters, so it opens the database itself, the
same way (:func:`make_engine`): SQLite in WAL mode with a busy timeout and ``BEGIN IMMEDIATE``
writes, PostgreSQL with ``lock_timeout`` and ``statement_timeout`` on every connection. A SQLite
file is created 0600 in 0700 folders (it holds transcripts), and an existing one that group or
others could read is tightened to 0600.

Its tables have their own Alembic migrations (``recordings/migrations``, version table
``recordings_alembic_version``), applied by :func:`open_index_database` once per process.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from alembic import command as alembic_command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from config.database import postgres_timeouts
from config.logs import log_event
from config.settings import DatabaseSettings
from recordings.errors import RecordingError
from recordings.private_fs import private_database_file

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
DEFAULTS = DatabaseSettings()
_LOG = logging.getLogger("ivr.recordings")
_ENGINES: dict[tuple[str, int], Engine] = {}
_ENGINES_LOCK = threading.Lock()
CONNECT_TIMEOUT_S = 10
"""A database host that does not answer fails a connection after this long, not after TCP's minutes."""


class IndexDatabaseError(RecordingError):
    """The call index, holds or access log could not be read or written."""


def hide_password(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<not a database URL>"


def make_engine(url: str, settings: DatabaseSettings = DEFAULTS) -> Engine:
    """An engine for ``url``; a SQLite file is created private before SQLite opens it."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise IndexDatabaseError(
            f"database url {url[:100]!r} is not a URL; use e.g. sqlite:///PATH or"
            " postgresql+psycopg://USER@HOST/DB"
        ) from None
    backend = parsed.get_backend_name()
    try:
        if backend == "sqlite":
            return _sqlite_engine(url, parsed.database or "", settings)
        connect_args = {"connect_timeout": CONNECT_TIMEOUT_S} if backend == "postgresql" else {}
        engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    except NoSuchModuleError:
        raise IndexDatabaseError(f"database url {hide_password(url)!r}: unknown database kind") from None
    except ImportError as exc:
        raise IndexDatabaseError(
            f"database url {hide_password(url)!r}: its driver is not installed ({exc.name or exc})"
        ) from None
    if backend == "postgresql":
        postgres_timeouts(engine, settings)
    return engine


def _sqlite_engine(url: str, database: str, settings: DatabaseSettings) -> Engine:
    if database and database != ":memory:" and not database.startswith("file:"):
        _private_database_file(Path(database).expanduser())
    busy_ms = int(settings.lock_timeout_s * 1000)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": busy_ms / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy, not pysqlite, begins transactions
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _private_database_file(path: Path) -> None:
    """Create the SQLite file 0600; tighten a wider one, saying so."""
    try:
        was = private_database_file(path)
    except OSError as exc:
        raise IndexDatabaseError(f"{path}: cannot create the database file: {exc.strerror or exc}") from exc
    if was is not None:
        log_event(
            "database_file_tightened",
            logging.WARNING,
            _LOG,
            path=str(path),
            was=f"{was:04o}",
            now=f"{was & 0o700:04o}",
        )


def upgrade_index_database(engine: Engine) -> None:
    """Apply the recordings migrations (idempotent; concurrent callers are serialized)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        with engine.connect() as conn:
            cfg.attributes["connection"] = conn
            alembic_command.upgrade(cfg, "head")
            conn.commit()
    except SQLAlchemyError as exc:
        raise database_error(exc, engine, "preparing the recordings tables") from exc


def open_index_database(url: str, settings: DatabaseSettings = DEFAULTS) -> Engine:
    """An engine on ``url`` with the recordings tables in place; one per URL and process."""
    key = (url, os.getpid())
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = make_engine(url, settings)
            try:
                upgrade_index_database(engine)
            except IndexDatabaseError:
                engine.dispose()
                raise
            _ENGINES[key] = engine
        return engine


def forget_engines() -> None:
    """Dispose of every cached engine (tests, and a process about to fork)."""
    with _ENGINES_LOCK:
        for engine in _ENGINES.values():
            engine.dispose()
        _ENGINES.clear()


def database_error(exc: SQLAlchemyError, engine: Engine, doing: str) -> IndexDatabaseError:
    """One line: which database, what was being done, the first line of the database's reason."""
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    where = engine.url.render_as_string(hide_password=True)
    return IndexDatabaseError(f"database {where}: {doing} failed: {first}")
