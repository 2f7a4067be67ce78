"""The schema as migrated matches the models, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select
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
