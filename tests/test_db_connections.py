"""Pooled connections the PostgreSQL server closed (a restart, an administrator, an idle
timeout) are never handed out again: the next statement of a command, a job or an update
works on its first try, without the round trip of a ping before every statement."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.models import Title
from tests.conftest import PG_ADMIN_URL, _pg_dsn


async def test_a_connection_the_server_closed_is_replaced_on_checkout(
    backend: str,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has no server to close connections")
    async with engine.connect() as conn:
        pid = await conn.scalar(text("SELECT pg_backend_pid()"))
        driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None and not driver.is_closed()  # back in the pool, idle

    admin = await asyncpg.connect(_pg_dsn(PG_ADMIN_URL))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    # The driver reads the server's goodbye as soon as the event loop gets to it.
    for _ in range(1000):
        if driver.is_closed():
            break
        await asyncio.sleep(0.01)
    assert driver.is_closed()

    async with sessionmaker() as session:  # no error, no retry
        assert (await session.scalar(select(func.count(Title.id))) or 0) > 0


async def test_a_connection_returned_in_a_transaction_is_rolled_back_before_reuse(
    backend: str, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """On SQLite the pool's reset sends no ROLLBACK after a commit (a round trip to the
    driver's thread on every update: storage.sqlite_adapter); a connection whose driver still
    has a transaction open is rolled back."""
    if backend != "sqlite":
        pytest.skip("the pool's reset is PostgreSQL's default")
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        # Behind SQLAlchemy's back: it sees no transaction of its own to roll back.
        await driver.execute("BEGIN")
        await driver.execute("UPDATE titles SET name = 'changed' WHERE code = 'LDTT'")
        assert driver.in_transaction
    assert not driver.in_transaction
    async with sessionmaker() as session:
        names = set(await session.scalars(select(Title.name).where(Title.code == "LDTT")))
    assert names and "changed" not in names
