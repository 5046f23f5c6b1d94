"""Migrations build exactly the models' schema, on SQLite and PostgreSQL, and keep data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from dialer.db import current_revision, make_engine, upgrade_database
from dialer.models import Base, Campaign


def test_dialer_data_upgrade_matches_models(db_url: str) -> None:
    upgrade_database(db_url)
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
        assert diff == []
        assert current_revision(engine) == "0004"
        assert {
            "campaigns",
            "contacts",
            "attempts",
            "contact_events",
            "dnc_entries",
            "campaign_hours",
        } <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_dialer_data_upgrade_twice_keeps_rows(db_url: str) -> None:
    upgrade_database(db_url)
    engine = make_engine(db_url)
    created = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    try:
        with Session(engine) as session, session.begin():
            session.add(Campaign(name="c1", kind="retention", flow="f.yaml", created_at=created))
        upgrade_database(db_url)
        with Session(engine) as session:
            campaign = session.scalars(select(Campaign)).one()
        assert campaign.name == "c1"
        assert campaign.created_at == created
        assert campaign.created_at.tzinfo is UTC
    finally:
        engine.dispose()


def test_dialer_data_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/sub/dir/x.sqlite3"
    upgrade_database(url)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        engine.dispose()


def test_dialer_data_upgrades_never_drop() -> None:
    """An upgrade may add but never drop tables or columns (downgrades may)."""
    versions = Path(__file__).resolve().parents[3] / "dialer" / "migrations" / "versions"
    scripts = sorted(versions.glob("*.py"))
    assert scripts, versions
    for script in scripts:
        source = script.read_text(encoding="utf-8")
        upgrade = source.split("def upgrade()", 1)[1].split("def downgrade()", 1)[0]
        for forbidden in ("drop_table", "drop_column", "drop_constraint", "DROP "):
            assert forbidden not in upgrade, f"{script.name}: upgrade() uses {forbidden}"
