"""Trunk lines and the trunk's call rate, shared by every dialer process on the database.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trunk_lines",
        sa.Column("trunk", sa.String(length=200), nullable=False),
        sa.Column("line", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("taken_at", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("trunk", "line", name=op.f("pk_trunk_lines")),
    )
    op.create_table(
        "trunk_rates",
        sa.Column("trunk", sa.String(length=200), nullable=False),
        sa.Column("allowed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("trunk", name=op.f("pk_trunk_rates")),
    )


def downgrade() -> None:
    op.drop_table("trunk_rates")
    op.drop_table("trunk_lines")
