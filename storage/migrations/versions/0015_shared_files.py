"""files offered as signed links where the chat cannot carry them (Zalo)

Revision ID: 0015
Revises: 0010
Create Date: 2026-12-04 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shared_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("mime", sa.String(length=100), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shared_files")),
    )
    op.create_index(
        op.f("ix_shared_files_expires_at"), "shared_files", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_shared_files_expires_at"), table_name="shared_files")
    op.drop_table("shared_files")
