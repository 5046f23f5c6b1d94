"""Database engine and schema upgrades for the dialer.

SQLite (the default, one file under the data dir) runs in WAL mode with a busy timeout and
takes its write lock at ``BEGIN`` (``BEGIN IMMEDIATE``), so two workers never both read a
contact as free and then both lease it. PostgreSQL is for several worker processes.
Every command calls :func:`upgrade_database` first; migrations only ever add.

Every connection waits a bounded time for locks (PostgreSQL ``lock_timeout``, SQLite's busy
timeout) and PostgreSQL statements run a bounded time (``statement_timeout``), so a table
locked by someone else makes a command fail with :func:`database_error`'s message, naming
the command and what it was doing, instead of hanging forever.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from alembic import command as alembic_command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from config.database import postgres_timeouts
from config.errors import IvrError
from config.logs import log_event
from config.settings import DatabaseSettings
from recordings.private_fs import private_database_file

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
DEFAULTS = DatabaseSettings()
_LOG = logging.getLogger("ivr.dialer.db")
_PASSWORD = re.compile(r"(//[^/:@]*:)[^/@]*@")
_TABLES = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN|TABLE)\s+\"?(\w+)", re.IGNORECASE)
_LOCK_STATES = frozenset({"55P03", "55006"})  # lock_not_available, object_in_use


class DialerDataError(IvrError):
    """Dialer data could not be read or written: bad input, unknown campaign, database error."""


class CampaignNotFoundError(DialerDataError):
    def __init__(self, name: str) -> None:
        super().__init__(f"campaign '{name}' does not exist (import a call list first)")
        self.name = name


def make_engine(url: str, settings: DatabaseSettings = DEFAULTS, **kwargs: Any) -> Engine:
    """An engine for ``url`` whose connections wait at most ``settings``' timeouts.

    SQLite gets WAL, a busy timeout, foreign keys and immediate writes; PostgreSQL gets
    ``statement_timeout`` and ``lock_timeout`` on every connection.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DialerDataError(
            f"database url {_hide_password(url)!r} is not a URL; "
            "use e.g. sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
        ) from None
    if parsed.get_backend_name() != "sqlite":
        engine = _create(url, dict(pool_pre_ping=True, **kwargs))
        if parsed.get_backend_name() == "postgresql":
            postgres_timeouts(engine, settings)
        return engine
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database).expanduser()
        try:  # contacts' numbers: the file is the owner's only (0600, its folder 0700 if new)
            private_database_file(path)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise DialerDataError(f"cannot create the database file {str(path)[:200]}: {reason}") from None
    busy_ms = int(settings.lock_timeout_s * 1000)
    engine = _create(
        url, dict(connect_args={"check_same_thread": False, "timeout": busy_ms / 1000}, **kwargs)
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (see _on_begin).
        dbapi_conn.isolation_level = None
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


def _create(url: str, kwargs: dict[str, Any]) -> Engine:
    """``create_engine``, with an unknown database kind or a missing driver as a clear error."""
    try:
        return create_engine(url, **kwargs)
    except NoSuchModuleError:
        scheme = url.partition(":")[0]
        raise DialerDataError(
            f"database url {_hide_password(url)!r}: unknown database kind {scheme!r}; "
            "use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
        ) from None
    except ImportError as exc:
        raise DialerDataError(
            f"database url {_hide_password(url)!r}: its driver is not installed ({exc.name or exc}); "
            "for PostgreSQL use postgresql+psycopg://"
        ) from None


def _hide_password(url: str) -> str:
    """``url`` as an error may show it: no password, and not longer than a line."""
    shown = _PASSWORD.sub(r"\1***@", url)
    return shown if len(shown) <= 100 else shown[:97] + "..."


def database_error(
    exc: DBAPIError, command: str, settings: DatabaseSettings = DEFAULTS, during: str = ""
) -> DialerDataError:
    """What ``command`` was doing when the database gave up, and why, in one line."""
    orig = exc.orig
    first_line = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    state = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)
    tables = list(dict.fromkeys(_TABLES.findall(exc.statement or "")))
    verb = (exc.statement or "").split(maxsplit=1)[0].upper() if exc.statement else "a statement"
    doing = f"{verb} on {', '.join(tables)}" if tables else verb
    doing = "BEGIN (starting a transaction)" if verb == "BEGIN" else doing
    doing += f" during {during}" if during else ""
    if state in _LOCK_STATES or "lock timeout" in first_line or "database is locked" in first_line:
        why = (
            f"gave up after waiting {settings.lock_timeout_s:g} s for a lock another session holds "
            "(an import, a schema upgrade, a manual LOCK?); try again later or raise database.lock_timeout_s"
        )
    elif state == "57014" and "statement timeout" in first_line:
        why = (
            f"the statement ran longer than {settings.statement_timeout_s:g} s and was cancelled "
            "(database.statement_timeout_s)"
        )
    else:
        why = f"database error: {first_line}"
    return DialerDataError(f"{command}: {why} (while running {doing})")


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_database(
    target: str | Engine,
    revision: str = "head",
    settings: DatabaseSettings = DEFAULTS,
    command: str = "database schema upgrade",
) -> None:
    """Bring the schema to ``revision`` (Alembic ``upgrade``); safe to call at every start.

    Given a URL, statements are not time-limited (a migration may rewrite a big table) but
    lock waits are.
    """
    unlimited = DatabaseSettings(settings.url, 0.0, settings.lock_timeout_s)
    engine = make_engine(target, unlimited) if isinstance(target, str) else target
    url = engine.url.render_as_string(hide_password=False)
    cfg = alembic_config(url)
    # Alembic reports every step at INFO; one event line per real upgrade is enough.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        before = current_revision(engine)
        with engine.connect() as conn:
            cfg.attributes["connection"] = conn
            alembic_command.upgrade(cfg, revision)
            conn.commit()
        after = current_revision(engine)
        if after != before:
            log_event("database schema upgraded", logger=_LOG, before=before or "empty", after=after)
    except OperationalError as exc:
        if "lock" in str(exc.orig) or getattr(exc.orig, "sqlstate", None) in _LOCK_STATES:
            raise database_error(exc, command, settings, "the schema check") from exc
        raise DialerDataError(f"cannot open database {engine.url!r}: {exc.orig}") from exc
    finally:
        if isinstance(target, str):
            engine.dispose()


def open_database(url: str, settings: DatabaseSettings = DEFAULTS, command: str = "database") -> Engine:
    """Upgrade the schema, then return an engine: what every command (and ``serve``) does first.

    ``command`` names the caller in a lock-timeout message, e.g. ``campaign status``.
    """
    upgrade_database(url, settings=settings, command=command)
    return make_engine(url, settings)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
