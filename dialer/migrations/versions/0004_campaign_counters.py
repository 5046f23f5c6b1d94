"""Per-campaign, per-hour counters for the wallboard, the latest dialled / reached /
succeeded times of each contact, and the indexes the wallboard counts with; the counters are
filled from the attempts already stored (:func:`dialer.hourly_counters.rebuild`).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

from dialer.hourly_counters import rebuild

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COUNTS = (
    "attempts",
    "contacts_dialled",
    "contacts_reached",
    "contacts_succeeded",
    "answered",
    "machine",
    "person_answered",
    "abandoned",
)
_LIVE = sa.text("ended_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "campaign_hours",
        sa.Column("campaign_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("hour", sa.DateTime(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in _COUNTS),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_hours_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "hour", name=op.f("pk_campaign_hours")),
    )
    op.create_table(
        "campaign_hour_outcomes",
        sa.Column("campaign_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("hour", sa.DateTime(), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_hour_outcomes_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "hour", "label", name=op.f("pk_campaign_hour_outcomes")),
    )
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("dialled_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("reached_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("succeeded_at", sa.DateTime(), nullable=True))
    op.create_index("ix_contacts_outcome", "contacts", ["campaign_id", "outcome", "dnc"])
    op.create_index(
        "ix_contacts_retry", "contacts", ["campaign_id", "state", "dnc", "next_attempt_at", "attempts"]
    )
    op.create_index("ix_contacts_dialled", "contacts", ["campaign_id", "dialled_at"])
    op.create_index(
        "ix_contacts_reached", "contacts", ["campaign_id", "reached_at", "succeeded_at", "outcome"]
    )
    op.create_index("ix_contacts_deadline", "contacts", ["campaign_id", "window_end"])
    op.create_index(
        "ix_attempts_live",
        "attempts",
        ["contact_id", "invite_at"],
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    )
    op.create_index("ix_attempts_invite_at", "attempts", ["invite_at"])
    with Session(bind=op.get_bind()) as session:
        rebuild(session)
        session.flush()


def downgrade() -> None:
    op.drop_index("ix_attempts_invite_at", table_name="attempts")
    op.drop_index("ix_attempts_live", table_name="attempts")
    for name in (
        "ix_contacts_deadline",
        "ix_contacts_reached",
        "ix_contacts_dialled",
        "ix_contacts_retry",
        "ix_contacts_outcome",
    ):
        op.drop_index(name, table_name="contacts")
    with op.batch_alter_table("contacts") as batch:
        for column in ("succeeded_at", "reached_at", "dialled_at"):
            batch.drop_column(column)
    op.drop_table("campaign_hour_outcomes")
    op.drop_table("campaign_hours")
