"""The schema as migrated matches the models, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.models import Base, Title
from storage.seed import catalogue_entries


async def test_migrations_match_models(engine: AsyncEngine) -> None:
    def diff(connection):
        ctx = MigrationContext.configure(connection, opts={"compare_type": False})
        return compare_metadata(ctx, Base.metadata)

    async with engine.connect() as conn:
        changes = await conn.run_sync(diff)
    assert changes == []


async def test_catalogue_is_seeded_once(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    from storage.seed import seed_titles

    async with sessionmaker() as session, session.begin():
        assert await seed_titles(session) == 0
        count = await session.scalar(select(func.count()).select_from(Title))
    assert count == len(catalogue_entries())
    async with sessionmaker() as session:
        cstdcs = await session.scalar(select(Title).where(Title.code == "CSTDCS"))
    assert cstdcs is not None
    assert cstdcs.name == "Chiến sĩ thi đua cơ sở"
    assert cstdcs.rules["requires_titles"] == ["LDTT"]


async def test_migration_0013_corrects_the_catalogue_rows_still_as_first_seeded(
    db_url: str,
) -> None:
    """A database made before the rules had their sources: rows as first seeded get the
    current rules and names (TTLĐTT over 50 %, no CSTĐCS cap, "hoàn thành xuất sắc nhiệm
    vụ"); a row an officer edited stays as edited."""
    from storage.db import make_engine, make_sessionmaker, upgrade

    engine = make_engine(db_url)
    try:
        await upgrade(engine, "0008")
        old_rules = {
            "CSTDCS": {
                "requires_titles": ["LDTT"],
                "requires_initiative": True,
                "max_share_of_ldtt": 0.15,
            },
            "TTLDTT": {"min_share_ldtt": 0.50},
        }
        sessions = make_sessionmaker(engine)
        # Written as the 0008 schema stood, without the ORM (whose writes of reference data
        # also bump reference_version, a table of 0014).
        async with engine.begin() as conn:
            for code, name, target, rules in (
                ("CSTDCS", "Chiến sĩ thi đua cơ sở", "individual", old_rules["CSTDCS"]),
                ("TTLDTT", "Tập thể lao động tiên tiến", "collective", old_rules["TTLDTT"]),
                ("CDCS_VM", "Công đoàn cơ sở vững mạnh", "collective", {}),
                ("TTLDXS", "Tập thể lao động xuất sắc", "collective", {"min_share_ldtt": 0.8}),
            ):
                await conn.execute(
                    insert(Title).values(
                        code=code, name=name, target=target, level="unit", rank=50, rules=rules
                    )
                )
        await upgrade(engine)
        async with sessions() as session:
            titles = {t.code: t for t in await session.scalars(select(Title))}
    finally:
        await engine.dispose()
    assert "max_share_of_ldtt" not in titles["CSTDCS"].rules
    assert titles["CSTDCS"].rules["options"]["max_share_of_ldtt"]["value"] == 0.15
    assert titles["TTLDTT"].rules["over_share_ldtt"] == 0.5
    assert "min_share_ldtt" not in titles["TTLDTT"].rules
    assert titles["TTLDTT"].rules["sources"]["over_share_ldtt"] == "Luật Thi đua, khen thưởng 2022"
    assert titles["CDCS_VM"].name == "Công đoàn cơ sở hoàn thành xuất sắc nhiệm vụ"
    assert titles["TTLDXS"].rules == {"min_share_ldtt": 0.8}  # edited by an officer: kept
