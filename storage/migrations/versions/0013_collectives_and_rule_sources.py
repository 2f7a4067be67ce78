"""collectives named on collective titles, the initiative author's category, rule sources

TTLĐXS / TTLĐTT are conferred on a collective (a tổ, phòng, phân xưởng, the enterprise or
agency), not on the grassroots union: a collective registration names it
(``collective_name``, and ``collective_unit_id`` when it is a sub-unit of the org tree), and
a unit may register the same title for several of its collectives. Bằng Lao động sáng tạo's
threshold depends on who the author is (``initiatives.author_category``). Catalogue rows
still as first seeded get the corrected rules with their legal sources and the TLĐ's
current names (storage/seed/titles.yaml); rows an officer edited are left alone.

Revision ID: 0013
Revises: 0008
Create Date: 2026-12-04 12:00:00
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE_COLLECTIVE = "status != 'withdrawn' AND is_collective"

# The catalogue as the first seed wrote it (names and rules), to tell untouched rows.
FIRST_SEED_RULES: dict[str, dict[str, Any]] = {
    "CSTDTQ": {"requires_history": {"title": "CSTD_TINH", "years": 2}},
    "LDST": {"min_initiative_benefit": 80000000},
    "CSTD_TINH": {"requires_history": {"title": "CSTDCS", "years": 3}},
    "TTLDXS": {"requires_titles": ["TTLDTT"], "min_share_ldtt": 0.70, "min_cstdcs": 1},
    "CSTDCS": {
        "requires_titles": ["LDTT"],
        "requires_initiative": True,
        "max_share_of_ldtt": 0.15,
    },
    "TTLDTT": {"min_share_ldtt": 0.50},
}
FIRST_SEED_NAMES = {"CDCS_VM": "Công đoàn cơ sở vững mạnh"}


def upgrade() -> None:
    with op.batch_alter_table("registrations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("collective_name", sa.String(length=300), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("collective_unit_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_registrations_collective_unit_id_units"),
            "units",
            ["collective_unit_id"],
            ["id"],
        )
        batch_op.drop_index(
            "uq_registrations_unit_title_live",
            sqlite_where=sa.text(LIVE_COLLECTIVE),
            postgresql_where=sa.text(LIVE_COLLECTIVE),
        )
        batch_op.create_index(
            "uq_registrations_unit_title_live",
            ["campaign_id", "unit_id", "title_code", "collective_name"],
            unique=True,
            sqlite_where=sa.text(LIVE_COLLECTIVE),
            postgresql_where=sa.text(LIVE_COLLECTIVE),
        )
    with op.batch_alter_table("initiatives", schema=None) as batch_op:
        batch_op.add_column(sa.Column("author_category", sa.String(length=20), nullable=True))
    _catalogue_to_current_seed()


def _catalogue_to_current_seed() -> None:
    # Imported here: the seed reader is all this migration needs of the application.
    from storage.seed import catalogue_entries, seed_rules

    titles = sa.table(
        "titles",
        sa.column("code", sa.String),
        sa.column("name", sa.String),
        sa.column("rules", sa.JSON),
    )
    bind = op.get_bind()
    rows = {code: (name, rules) for code, name, rules in bind.execute(sa.select(titles))}
    for entry in catalogue_entries():
        code = entry["code"]
        if code not in rows:
            continue  # the seed adds it after the upgrade
        name, rules = rows[code]
        if isinstance(rules, str):
            rules = json.loads(rules)
        changes: dict[str, Any] = {}
        if (rules or {}) == FIRST_SEED_RULES.get(code, {}):
            changes["rules"] = seed_rules(entry)
        if code in FIRST_SEED_NAMES and name == FIRST_SEED_NAMES[code]:
            changes["name"] = entry["name"]
        if changes:
            bind.execute(titles.update().where(titles.c.code == code).values(**changes))


def downgrade() -> None:
    with op.batch_alter_table("initiatives", schema=None) as batch_op:
        batch_op.drop_column("author_category")
    with op.batch_alter_table("registrations", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_registrations_unit_title_live",
            sqlite_where=sa.text(LIVE_COLLECTIVE),
            postgresql_where=sa.text(LIVE_COLLECTIVE),
        )
        batch_op.create_index(
            "uq_registrations_unit_title_live",
            ["campaign_id", "unit_id", "title_code"],
            unique=True,
            sqlite_where=sa.text(LIVE_COLLECTIVE),
            postgresql_where=sa.text(LIVE_COLLECTIVE),
        )
        batch_op.drop_constraint(
            batch_op.f("fk_registrations_collective_unit_id_units"), type_="foreignkey"
        )
        batch_op.drop_column("collective_unit_id")
        batch_op.drop_column("collective_name")
