"""Alembic environment of the recordings tables: runs on the connection
:func:`recordings.database.upgrade_index_database` passes in.

Its own version table (``recordings_alembic_version``) keeps it apart from the dialer's
migrations in the same database. Several processes may upgrade at once (every ``serve`` worker
opens the index when it seals its first call): on PostgreSQL a transaction-scoped advisory lock
serializes them, on SQLite the ``BEGIN IMMEDIATE`` write lock does.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from recordings.schema import VERSION_TABLE, metadata

ADVISORY_LOCK = "SELECT pg_advisory_xact_lock(hashtext('recordings_alembic_version'))"


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text(ADVISORY_LOCK))
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise SystemExit("run these migrations through recordings.database.upgrade_index_database")
    _run(connection)


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run them against a database")
run_migrations_online()
