"""identity claims waiting for a leader, and failed proofs counted in the database

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-04 12:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "identity_claims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["decided_by_id"],
            ["people.id"],
            name=op.f("fk_identity_claims_decided_by_id_people"),
        ),
        sa.ForeignKeyConstraint(
            ["identity_id"],
            ["channel_identities.id"],
            name=op.f("fk_identity_claims_identity_id_channel_identities"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_identity_claims_person_id_people")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_identity_claims_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_claims")),
    )
    with op.batch_alter_table("identity_claims", schema=None) as batch_op:
        batch_op.create_index(
            "ix_identity_claims_identity", ["identity_id", "status"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_identity_claims_person_id"), ["person_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_identity_claims_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "proof_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=140), nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proof_failures")),
    )
    with op.batch_alter_table("proof_failures", schema=None) as batch_op:
        batch_op.create_index("ix_proof_failures_key_at", ["key", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("proof_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_proof_failures_key_at")
    op.drop_table("proof_failures")
    with op.batch_alter_table("identity_claims", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_claims_unit_id"))
        batch_op.drop_index(batch_op.f("ix_identity_claims_person_id"))
        batch_op.drop_index("ix_identity_claims_identity")
    op.drop_table("identity_claims")
