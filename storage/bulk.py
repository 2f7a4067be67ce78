"""Writing many rows at once, the fastest way each database offers, inside the caller's
transaction: PostgreSQL's ``COPY`` (asyncpg's binary copy, through the session's own
connection) and SQLite's ``executemany``. A staging table is a temporary table of the same
connection: it disappears at commit or rollback on PostgreSQL, and is dropped by the caller
on SQLite (where a temporary table lives as long as the connection).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, insert, text
from sqlalchemy.ext.asyncio import AsyncSession


def is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def create_stage(session: AsyncSession, table: Table) -> None:
    """Create the temporary ``table`` (built with ``prefixes=["TEMPORARY"]``) on the
    session's connection, replacing one a failed earlier import left on a SQLite
    connection."""
    connection = await session.connection()
    if not is_postgresql(session):
        await connection.execute(text(f"DROP TABLE IF EXISTS temp.{table.name}"))
    await connection.run_sync(lambda sync: table.create(sync))


async def drop_stage(session: AsyncSession, table: Table) -> None:
    if not is_postgresql(session):
        connection = await session.connection()
        await connection.execute(text(f"DROP TABLE IF EXISTS temp.{table.name}"))


async def insert_rows(
    session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert ``rows`` (dicts by column name) into ``table``: COPY on PostgreSQL,
    executemany on SQLite; values of JSON columns are dicts or lists."""
    if not rows:
        return
    connection = await session.connection()
    if not is_postgresql(session):
        await connection.execute(insert(table), list(rows))
        return
    columns = [c for c in table.columns if c.name in rows[0]]
    json_columns = {c.name for c in columns if c.type.__class__.__name__ in ("JSON", "JSONB")}
    names = [c.name for c in columns]
    records = [
        tuple(
            json.dumps(row[name], ensure_ascii=False) if name in json_columns else row[name]
            for name in names
        )
        for row in rows
    ]
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    await driver.copy_records_to_table(table.name, records=records, columns=names)
