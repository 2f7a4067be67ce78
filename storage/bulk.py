"""Writing many rows at once, the fastest way each database offers, inside the caller's
transaction: PostgreSQL's ``COPY`` (asyncpg's binary copy, through the session's own
connection) and SQLite's ``executemany``. A staging table is a temporary table of the same
connection: it disappears at commit or rollback on PostgreSQL, and is dropped by the caller
on SQLite (where a temporary table lives as long as the connection).
"""

from __future__ import annotations

import json
import operator
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Table, insert, text
from sqlalchemy.ext.asyncio import AsyncSession


def is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def create_stage(session: AsyncSession, table: Table) -> None:
    """Create the temporary ``table`` (built with ``prefixes=["TEMPORARY"]``) on the
    session's connection, replacing one an earlier import left (see :func:`drop_temp`)."""
    await drop_temp(session, table.name)
    connection = await session.connection()
    await connection.run_sync(lambda sync: table.create(sync))


async def drop_temp(session: AsyncSession, name: str) -> None:
    """Drop the connection's temporary table ``name`` if it has one (left by a failed
    import on a SQLite connection, or by an earlier import in the same transaction on
    PostgreSQL); schema-qualified, so never a table of the database with that name."""
    schema = "pg_temp" if is_postgresql(session) else "temp"
    connection = await session.connection()
    await connection.execute(text(f"DROP TABLE IF EXISTS {schema}.{name}"))


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
    if json_columns:
        records = [
            tuple(
                json.dumps(row[name], ensure_ascii=False) if name in json_columns else row[name]
                for name in names
            )
            for row in rows
        ]
    else:
        # A million staged rows: itemgetter builds each tuple in C.
        values = operator.itemgetter(*names)
        records = [values(row) if len(names) > 1 else (values(row),) for row in rows]
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    await driver.copy_records_to_table(table.name, records=records, columns=names)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@asynccontextmanager
async def indexes_set_aside(session: AsyncSession, tables: Sequence[str]) -> AsyncIterator[None]:
    """PostgreSQL: the secondary indexes, unique and foreign-key constraints of ``tables``
    dropped for the block and rebuilt after it, from their own definitions, in the caller's
    transaction (a failure anywhere rolls the drop back too: all or nothing).

    For loading many more rows than a table holds: building an index from sorted rows, and
    checking a foreign key with one join, cost a fraction of maintaining them row by row.
    The tables are locked (ACCESS EXCLUSIVE) until the transaction ends. Primary keys stay.
    Elsewhere (SQLite) the block just runs.
    """
    if not is_postgresql(session):
        yield
        return
    connection = await session.connection()
    constraints: list[tuple[str, str, str, str]] = []
    indexes: list[tuple[str, str]] = []
    for table in tables:
        for name, kind, definition in await connection.execute(
            text(
                "SELECT conname, CAST(contype AS text), pg_get_constraintdef(oid) "
                "FROM pg_constraint WHERE conrelid = CAST(:t AS regclass) "
                "AND contype IN ('u', 'f') ORDER BY conname"
            ),
            {"t": table},
        ):
            constraints.append((table, name, kind, definition))
        for name, definition in await connection.execute(
            text(
                "SELECT CAST(indexrelid AS regclass)::text, pg_get_indexdef(indexrelid) "
                "FROM pg_index WHERE indrelid = CAST(:t AS regclass) AND NOT indisprimary AND "
                "indexrelid NOT IN (SELECT conindid FROM pg_constraint WHERE conrelid = "
                "CAST(:t AS regclass)) ORDER BY 1"
            ),
            {"t": table},
        ):
            indexes.append((name, definition))
    for table, name, _kind, _definition in constraints:
        await connection.execute(
            text(f"ALTER TABLE {_quoted(table)} DROP CONSTRAINT {_quoted(name)}")
        )
    for name, _definition in indexes:
        await connection.execute(text(f"DROP INDEX {name}"))
    yield
    # Index builds sort in memory when they can (the default 64 MB spills a million keys).
    await connection.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
    for _name, definition in indexes:
        await connection.execute(text(definition))
    # Unique constraints (their indexes) before the foreign keys that may rely on them.
    for table, name, _kind, definition in sorted(constraints, key=lambda c: c[2] != "u"):
        await connection.execute(
            text(f"ALTER TABLE {_quoted(table)} ADD CONSTRAINT {_quoted(name)} {definition}")
        )


async def plan_for_bulk(session: AsyncSession) -> None:
    """PostgreSQL: no JIT compilation for the rest of the transaction. The set-based
    statements of an import (recursive walks of a tree especially) are estimated at
    millions of rows, which makes PostgreSQL compile them first: 0.6 s of compiling for
    a statement that runs in 30 ms."""
    if is_postgresql(session):
        connection = await session.connection()
        await connection.execute(text("SET LOCAL jit = off"))
