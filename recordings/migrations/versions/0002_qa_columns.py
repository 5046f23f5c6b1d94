"""QA verdict of each indexed call: status, score and failed rule ids (from ``<call>.qa.json``).

Revision ID: r0002
Revises: r0001

Calls indexed before stay NULL (not judged) until ``recordings qa`` or ``recordings reindex``
reads their QA files.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "r0002"
down_revision: str | None = "r0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("recording_calls") as batch:
        batch.add_column(sa.Column("qa_status", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("qa_score", sa.Float(), nullable=True))
        batch.add_column(sa.Column("qa_failed_rules", sa.Text(), nullable=True))
    op.create_index("ix_recording_calls_qa_started", "recording_calls", ["qa_status", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_recording_calls_qa_started", table_name="recording_calls")
    with op.batch_alter_table("recording_calls") as batch:
        batch.drop_column("qa_failed_rules")
        batch.drop_column("qa_score")
        batch.drop_column("qa_status")
