"""SQLite through storage.sqlite_adapter (one trip to aiosqlite's thread per statement)
behaves as SQLAlchemy's own aiosqlite adapter: the same errors, transactions, row counts,
streamed results and connection settings, through the engine the bot builds."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import make_engine

metadata = MetaData()
teams = Table(
    "teams",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, nullable=False, unique=True),
)
players = Table(
    "players",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("team_id", ForeignKey("teams.id"), nullable=False),
    Column("score", Integer, nullable=False, default=0),
)


@pytest.fixture
async def engine(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(sqlite_url)
    async with eng.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        yield eng
    finally:
        await eng.dispose()


async def names(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list(await conn.scalars(select(teams.c.name).order_by(teams.c.name)))


async def test_a_duplicate_is_an_integrity_error_and_its_transaction_is_undone(
    engine: AsyncEngine,
) -> None:
    """The engine redoes a unit of work that lost a race on a unique key: it must see
    SQLAlchemy's IntegrityError, and nothing the failed unit wrote may remain."""
    async with engine.begin() as conn:
        await conn.execute(insert(teams).values(name="Tổ 1"))
    with pytest.raises(IntegrityError) as raised:
        async with engine.begin() as conn:
            await conn.execute(insert(teams).values(name="Tổ 2"))
            await conn.execute(insert(teams).values(name="Tổ 1"))
    assert isinstance(raised.value.orig, sqlite3.IntegrityError)
    assert await names(engine) == ["Tổ 1"]
    # A foreign key is enforced (PRAGMA foreign_keys on every connection).
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(insert(players).values(team_id=999))


async def test_a_write_lock_held_elsewhere_is_an_operational_error(
    sqlite_url: str, engine: AsyncEngine
) -> None:
    """Another connection holding the write lock past the busy timeout: "database is
    locked" reaches the engine as SQLAlchemy's OperationalError (it redoes such units)."""
    impatient = make_engine(sqlite_url, connect_args={"timeout": 0})
    try:
        async with engine.connect() as holder:
            await holder.execute(text("BEGIN IMMEDIATE"))
            await holder.execute(insert(teams).values(name="held"))
            with pytest.raises(OperationalError) as raised:
                async with impatient.begin() as conn:
                    await conn.execute(insert(teams).values(name="blocked"))
            assert "locked" in str(raised.value.orig)
            await holder.commit()
        # The lock released, the same engine writes.
        async with impatient.begin() as conn:
            await conn.execute(insert(teams).values(name="after"))
    finally:
        await impatient.dispose()
    assert await names(engine) == ["after", "held"]


async def test_connections_keep_their_settings(sqlite_url: str, engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        assert await conn.scalar(text("PRAGMA journal_mode")) == "wal"
        assert await conn.scalar(text("PRAGMA foreign_keys")) == 1
        assert await conn.scalar(text("PRAGMA synchronous")) == 1  # NORMAL
        assert await conn.scalar(text("PRAGMA busy_timeout")) == 30_000  # the busy handler
    impatient = make_engine(sqlite_url, connect_args={"timeout": 0.25})
    try:
        async with impatient.connect() as conn:
            assert await conn.scalar(text("PRAGMA busy_timeout")) == 250
    finally:
        await impatient.dispose()


async def test_a_rollback_undoes_the_writes_and_a_commit_keeps_them(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as conn:
        await conn.execute(insert(teams).values(name="kept"))
        await conn.commit()
        await conn.execute(insert(teams).values(name="undone"))
        await conn.execute(update(teams).where(teams.c.name == "kept").values(name="renamed"))
        # Inside the transaction the writes are seen...
        assert set(await conn.scalars(select(teams.c.name))) == {"renamed", "undone"}
        await conn.rollback()
        # ...and after the rollback they are gone, on this connection and on another.
        assert list(await conn.scalars(select(teams.c.name))) == ["kept"]
        await conn.rollback()  # nothing open: nothing to do, no error
    assert await names(engine) == ["kept"]


async def test_row_counts_keys_and_returned_rows(engine: AsyncEngine) -> None:
    """Row counts decide the optimistic checks (a conversation changed meanwhile), the
    inserted key and RETURNING feed the ORM: each as SQLite reports it."""
    async with engine.begin() as conn:
        inserted = await conn.execute(insert(teams).values(name="A"))
        assert inserted.inserted_primary_key is not None
        (team_id,) = inserted.inserted_primary_key
        assert await conn.scalar(select(teams.c.id).where(teams.c.name == "A")) == team_id
        returned = await conn.execute(
            insert(teams).values(name="B").returning(teams.c.id, teams.c.name)
        )
        assert returned.one()[1] == "B"
        none = await conn.execute(update(teams).where(teams.c.name == "Z").values(name="Y"))
        assert none.rowcount == 0
        both = await conn.execute(update(teams).values(name=teams.c.name + "!"))
        assert both.rowcount == 2
        assert await conn.scalar(select(func.count()).where(teams.c.name.like("%!"))) == 2


async def test_executemany_writes_every_set(engine: AsyncEngine) -> None:
    many: list[bool] = []

    def note(_c: Any, _cur: Any, _stmt: str, _p: Any, _ctx: Any, executemany: bool) -> None:
        many.append(executemany)

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    async with engine.begin() as conn:
        await conn.execute(insert(teams), [{"name": f"team {i}"} for i in range(300)])
        moved = await conn.execute(
            update(teams).where(teams.c.id == bindparam("b_id")).values(name=bindparam("b_name")),
            [{"b_id": i, "b_name": f"renamed {i}"} for i in (1, 2, 3, 999)],
        )
    assert many == [True, True]  # both went to the driver's executemany
    assert moved.rowcount == 3  # id 999 does not exist
    got = await names(engine)
    assert len(got) == 300 and {"renamed 1", "renamed 2", "renamed 3"} <= set(got)
    with pytest.raises(IntegrityError):  # a duplicate in the middle of the sets
        async with engine.begin() as conn:
            await conn.execute(insert(teams), [{"name": "new"}, {"name": "team 10"}])
    assert "new" not in await names(engine)


async def test_large_results_whole_and_streamed(engine: AsyncEngine) -> None:
    """A plain read brings every row back; a streamed one (yield_per, as storage.reminders
    does) still goes through a server-side cursor, a batch at a time."""
    series = text(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) "
        "SELECT i, 'row ' || i FROM n"
    )
    server_side: list[bool] = []

    def note(_c: Any, cursor: Any, *_args: Any) -> None:
        server_side.append(cursor.server_side)

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    async with engine.connect() as conn:
        rows = (await conn.execute(series)).all()
        assert [r[0] for r in rows] == list(range(1, 20001)) and rows[-1][1] == "row 20000"
        streamed = await conn.stream(series.execution_options(yield_per=1000))
        batches = [len(batch) async for batch in streamed.partitions(1000)]
        # Another statement on the same connection after the stream, as after any read.
        assert await conn.scalar(text("SELECT 41 + 1")) == 42
    assert batches == [1000] * 20
    assert server_side == [False, True, False]


async def test_savepoints_undo_only_their_part(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(teams).values(name="outer"))
        with pytest.raises(IntegrityError):
            async with conn.begin_nested():
                await conn.execute(insert(teams).values(name="inner"))
                await conn.execute(insert(teams).values(name="outer"))
        async with conn.begin_nested():
            await conn.execute(insert(teams).values(name="nested, kept"))
    assert await names(engine) == ["nested, kept", "outer"]


async def test_units_of_work_from_concurrent_tasks(engine: AsyncEngine) -> None:
    """Two tasks (two pooled connections, two driver threads) read and write at once; each
    unit sees its own writes and every committed one is there at the end."""
    async with engine.begin() as conn:
        await conn.execute(insert(teams), [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}])

    async def unit_of_work(team_id: int, n: int) -> None:
        async with engine.begin() as conn:
            await conn.execute(insert(players).values(team_id=team_id, score=n))
            mine = await conn.scalar(
                select(func.count()).where(players.c.team_id == team_id, players.c.score == n)
            )
            assert mine == 1

    async def task(team_id: int) -> None:
        for n in range(40):
            await unit_of_work(team_id, n)

    await asyncio.gather(task(1), task(2))
    async with engine.connect() as conn:
        counted = await conn.execute(
            select(players.c.team_id, func.count()).group_by(players.c.team_id)
        )
        totals = {team_id: n for team_id, n in counted}
    assert totals == {1: 40, 2: 40}


async def test_a_connection_closed_under_the_engine_is_replaced(engine: AsyncEngine) -> None:
    """A dead driver connection is reported as SQLAlchemy's OperationalError (a disconnect:
    the pool drops it) and the next unit of work gets a working one."""
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        await driver.close()
        with pytest.raises(OperationalError) as raised:
            await conn.execute(select(teams.c.id))
        assert raised.value.connection_invalidated
    async with engine.begin() as conn:
        await conn.execute(insert(teams).values(name="fine"))
    assert await names(engine) == ["fine"]


async def test_a_unit_of_work_cancelled_mid_statement_leaves_nothing_behind(
    engine: AsyncEngine,
) -> None:
    """An answer cancelled (shutdown, a timeout) while its INSERT waits for the write lock:
    the statement still runs in the driver's thread after the cancellation, and its row must
    not be committed later by whichever unit of work gets that connection next."""
    waiting = asyncio.Event()

    def note(_c: Any, _cur: Any, statement: str, parameters: Any, *_args: Any) -> None:
        if statement.startswith("INSERT INTO teams") and "cancelled" in parameters:
            waiting.set()  # the statement's trip to the thread is queued next

    event.listen(engine.sync_engine, "before_cursor_execute", note)

    async def doomed() -> None:
        async with engine.begin() as conn:
            await conn.execute(insert(teams).values(name="cancelled"))

    async with engine.connect() as holder:
        await holder.execute(text("BEGIN IMMEDIATE"))  # the write lock
        task = asyncio.create_task(doomed())
        await waiting.wait()
        task.cancel()
        await holder.execute(insert(teams).values(name="holder"))
        await holder.commit()  # the lock released: the cancelled INSERT runs now
    with pytest.raises(asyncio.CancelledError):
        await task
    for n in range(6):  # more units of work than the pool has connections
        async with engine.begin() as conn:
            await conn.execute(insert(teams).values(name=f"next {n}"))
    assert await names(engine) == ["holder", *(f"next {n}" for n in range(6))]


async def test_an_async_creator_is_used_as_given(tmp_path: Path) -> None:
    """create_async_engine(async_creator=...) opens the connections itself: still adapted."""
    import aiosqlite

    opened: list[str] = []

    def creator() -> Any:
        opened.append("creator")
        return aiosqlite.connect(tmp_path / "made.db", timeout=0.5)

    made = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}", async_creator=creator)
    try:
        async with made.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(insert(teams).values(name="made"))
        async with made.connect() as conn:
            assert list(await conn.scalars(select(teams.c.name))) == ["made"]
            assert await conn.scalar(text("PRAGMA journal_mode")) == "wal"
    finally:
        await made.dispose()
    assert opened and (tmp_path / "made.db").exists()
    assert not (tmp_path / "unused.db").exists()
