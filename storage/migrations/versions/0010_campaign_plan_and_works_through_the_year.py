"""campaign plan document, phase end for works, occasion dates and plaques

A campaign keeps its launch plan document (sent in the chat); a phase may end later for
works than for its other business; a work keeps the day of the occasion it greets and the
day its plaque was put up.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-04 12:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("plan_file_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("plan_file_mime", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("plan_file_content", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("campaign_phases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("works_until", sa.Date(), nullable=True))
    with op.batch_alter_table("works", schema=None) as batch_op:
        batch_op.add_column(sa.Column("occasion_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("plaque_installed_on", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("works", schema=None) as batch_op:
        batch_op.drop_column("plaque_installed_on")
        batch_op.drop_column("occasion_on")
    with op.batch_alter_table("campaign_phases", schema=None) as batch_op:
        batch_op.drop_column("works_until")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("plan_file_content")
        batch_op.drop_column("plan_file_mime")
        batch_op.drop_column("plan_file_name")
