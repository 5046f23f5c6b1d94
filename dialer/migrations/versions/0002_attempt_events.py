"""Attempts record the real call events, why they were cancelled and the deciding answer.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("invite_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("answered_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("flow_started_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("detail", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("decision_text", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("decision_confidence", sa.Float(), nullable=True))
        batch.add_column(
            sa.Column("ended_after_deadline", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        for column in (
            "ended_after_deadline",
            "decision_confidence",
            "decision_text",
            "detail",
            "flow_started_at",
            "answered_at",
            "invite_at",
        ):
            batch.drop_column(column)
