"""What every database the engine opens shares: UTC timestamps and bounded waits.

The dialer's tables and the recordings' call index live in one database (``database.url``);
both store aware UTC as naive UTC and both bound lock waits and statements on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect, Engine, event
from sqlalchemy.types import TypeDecorator

from config.settings import DatabaseSettings


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC in Python, naive UTC in the database (SQLite has no time zones)."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given where UTC is required")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # raw SQL on SQLite may hand back text
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def postgres_timeouts(engine: Engine, settings: DatabaseSettings) -> None:
    """Every new PostgreSQL connection gets ``database.statement_timeout_s`` and ``lock_timeout_s``."""
    statement_ms = int(settings.statement_timeout_s * 1000)
    lock_ms = int(settings.lock_timeout_s * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Outside a transaction, so the pool's rollback-on-return cannot undo the settings.
        autocommit = dbapi_conn.autocommit
        dbapi_conn.autocommit = True
        cursor = dbapi_conn.cursor()
        cursor.execute(f"SET statement_timeout = {statement_ms}")
        cursor.execute(f"SET lock_timeout = {lock_ms}")
        cursor.close()
        dbapi_conn.autocommit = autocommit
