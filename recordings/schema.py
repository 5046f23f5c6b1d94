"""The auditor's tables, in the dialer's database (``settings.database_url``), with their own migrations.

- ``recording_calls``: one row per sealed call (the call index). Numbers only as keyed hashes
  (:mod:`recordings.numbers`) and masked; its QA verdict (``qa_status`` pass/fail/incomplete,
  ``qa_score``, ``qa_failed_rules`` space-separated) from ``<call>.qa.json``, NULL while the
  call is not judged; the transcript per speaker lives in
  ``recording_transcripts`` for word search: an FTS5 table on SQLite (``rowid`` = the call's
  ``id``), a table with a ``tsvector`` and a GIN index per speaker on PostgreSQL. Neither fits
  SQLAlchemy's portable types, so that table is created and queried with SQL per dialect.
- ``recording_holds``: legal holds, one row per hold; ``released_at`` is set when it is lifted.
- ``recording_access_log``: who read, exported, searched or purged which calls; append-only
  (triggers refuse UPDATE and DELETE).

Times are stored as naive UTC and read back aware (:class:`UtcDateTime`), as the dialer does.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from config.database import UtcDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
VERSION_TABLE = "recordings_alembic_version"
"""Alembic's version table for these migrations; the dialer's stays ``alembic_version``."""
TRANSCRIPTS = "recording_transcripts"
SPEAKER_COLUMNS = ("caller", "bot", "agent")
TS_CONFIG = "english"
"""PostgreSQL text search configuration (stems like SQLite's porter tokenizer)."""


metadata = MetaData(naming_convention=NAMING_CONVENTION)

calls = Table(
    "recording_calls",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String(200), nullable=False, unique=True),
    Column("direction", String(8), nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("ended_at", UtcDateTime(), nullable=True),
    Column("duration_s", Float, nullable=True),
    Column("flow", String(200), nullable=False),
    Column("flow_version", String(64), nullable=False),
    Column("outcome", String(200), nullable=False),
    Column("campaign", String(200), nullable=False),
    Column("contact_id", String(200), nullable=False),
    Column("from_hash", String(64), nullable=True),
    Column("to_hash", String(64), nullable=True),
    Column("number_key_id", String(16), nullable=False),
    Column("from_masked", String(200), nullable=False),
    Column("to_masked", String(200), nullable=False),
    Column("turns", Integer, nullable=False),
    Column("sidecar_path", String(1000), nullable=False),
    Column("sidecar_sha256", String(64), nullable=False),
    Column("indexed_at", UtcDateTime(), nullable=False),
    Column("qa_status", String(16), nullable=True),
    Column("qa_score", Float, nullable=True),
    Column("qa_failed_rules", Text, nullable=True),
    Index("ix_recording_calls_started_at", "started_at"),
    Index("ix_recording_calls_from_hash", "from_hash"),
    Index("ix_recording_calls_to_hash", "to_hash"),
    Index("ix_recording_calls_flow_started", "flow", "started_at"),
    Index("ix_recording_calls_outcome_started", "outcome", "started_at"),
    Index("ix_recording_calls_campaign_started", "campaign", "started_at"),
    Index("ix_recording_calls_qa_started", "qa_status", "started_at"),
)

holds = Table(
    "recording_holds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("held_by", String(200), nullable=False),
    Column("held_at", UtcDateTime(), nullable=False),
    Column("released_at", UtcDateTime(), nullable=True),
    Column("released_by", String(200), nullable=True),
    Column("release_reason", Text, nullable=True),
    Index("ix_recording_holds_call_id", "call_id"),
)

access_log = Table(
    "recording_access_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("os_user", String(200), nullable=False),
    Column("host", String(255), nullable=False),
    Column("tty", String(200), nullable=False),
    Column("remote", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("action", String(32), nullable=False),
    Column("call_count", Integer, nullable=False),
    Column("call_ids", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Index("ix_recording_access_log_at", "at"),
)
