"""Call index, transcripts for word search, legal holds, access log.

Revision ID: r0001
Revises:
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "r0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = "recording_access_log is append-only: rows are never changed or deleted"


def upgrade() -> None:
    op.create_table(
        "recording_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=200), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("flow", sa.String(length=200), nullable=False),
        sa.Column("flow_version", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=200), nullable=False),
        sa.Column("campaign", sa.String(length=200), nullable=False),
        sa.Column("contact_id", sa.String(length=200), nullable=False),
        sa.Column("from_hash", sa.String(length=64), nullable=True),
        sa.Column("to_hash", sa.String(length=64), nullable=True),
        sa.Column("number_key_id", sa.String(length=16), nullable=False),
        sa.Column("from_masked", sa.String(length=200), nullable=False),
        sa.Column("to_masked", sa.String(length=200), nullable=False),
        sa.Column("turns", sa.Integer(), nullable=False),
        sa.Column("sidecar_path", sa.String(length=1000), nullable=False),
        sa.Column("sidecar_sha256", sa.String(length=64), nullable=False),
        sa.Column("indexed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_recording_calls"),
        sa.UniqueConstraint("call_id", name="uq_recording_calls_call_id"),
    )
    op.create_index("ix_recording_calls_started_at", "recording_calls", ["started_at"])
    op.create_index("ix_recording_calls_from_hash", "recording_calls", ["from_hash"])
    op.create_index("ix_recording_calls_to_hash", "recording_calls", ["to_hash"])
    op.create_index("ix_recording_calls_flow_started", "recording_calls", ["flow", "started_at"])
    op.create_index("ix_recording_calls_outcome_started", "recording_calls", ["outcome", "started_at"])
    op.create_index("ix_recording_calls_campaign_started", "recording_calls", ["campaign", "started_at"])

    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TABLE recording_transcripts ("
            " call_pk integer PRIMARY KEY REFERENCES recording_calls (id) ON DELETE CASCADE,"
            " caller text NOT NULL DEFAULT '', bot text NOT NULL DEFAULT '', agent text NOT NULL DEFAULT '',"
            " caller_tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', caller)) STORED,"
            " bot_tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', bot)) STORED,"
            " agent_tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', agent)) STORED)"
        )
        for speaker in ("caller", "bot", "agent"):
            op.execute(
                f"CREATE INDEX ix_recording_transcripts_{speaker} ON recording_transcripts"
                f" USING gin ({speaker}_tsv)"
            )
    else:
        op.execute(
            "CREATE VIRTUAL TABLE recording_transcripts USING fts5(caller, bot, agent,"
            " tokenize = 'porter unicode61')"
        )

    op.create_table(
        "recording_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("held_by", sa.String(length=200), nullable=False),
        sa.Column("held_at", sa.DateTime(), nullable=False),
        sa.Column("released_at", sa.DateTime(), nullable=True),
        sa.Column("released_by", sa.String(length=200), nullable=True),
        sa.Column("release_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_recording_holds"),
    )
    op.create_index("ix_recording_holds_call_id", "recording_holds", ["call_id"])

    op.create_table(
        "recording_access_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("os_user", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("tty", sa.String(length=200), nullable=False),
        sa.Column("remote", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("call_count", sa.Integer(), nullable=False),
        sa.Column("call_ids", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_recording_access_log"),
    )
    op.create_index("ix_recording_access_log_at", "recording_access_log", ["at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION recording_access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS"
            f" $$ BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$"
        )
        refuse = "EXECUTE FUNCTION recording_access_log_append_only()"
        op.execute(
            "CREATE TRIGGER recording_access_log_append_only BEFORE UPDATE OR DELETE"
            f" ON recording_access_log FOR EACH ROW {refuse}"
        )
        op.execute(
            "CREATE TRIGGER recording_access_log_no_truncate BEFORE TRUNCATE"
            f" ON recording_access_log FOR EACH STATEMENT {refuse}"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER recording_access_log_no_{verb.lower()} BEFORE {verb}"
                f" ON recording_access_log BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE recording_access_log")
        op.execute("DROP FUNCTION recording_access_log_append_only()")
    else:
        op.execute("DROP TABLE recording_access_log")
    op.drop_index("ix_recording_holds_call_id", table_name="recording_holds")
    op.drop_table("recording_holds")
    op.execute("DROP TABLE recording_transcripts")
    for name in ("campaign_started", "outcome_started", "flow_started", "to_hash", "from_hash", "started_at"):
        op.drop_index(f"ix_recording_calls_{name}", table_name="recording_calls")
    op.drop_table("recording_calls")
