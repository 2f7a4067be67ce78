"""SQLite through aiosqlite with one trip to its thread per statement.

aiosqlite runs a connection's calls in a thread of its own; each call is a future, a
``call_soon_threadsafe`` and a wake-up of the event loop. SQLAlchemy's adapter for it makes a
call per DBAPI step: a cursor, the statement, the rows, closing the cursor, so a statement is
three or four trips (bench/steps.py counts them). Here a statement is one function run in
that thread (cursor, execute, every row, close) and the adapted cursor hands out the rows
it brought back; ``commit`` and ``rollback`` go to the thread only when SQLite has a
transaction open (a unit of work that only read has nothing to end).

Everything else is SQLAlchemy's own adapter, which these classes extend: connecting, the
``isolation_level`` setter, ``create_function``, closing and terminating, the mapping of a
closed connection to ``OperationalError``, and server-side cursors (``stream``/``yield_per``,
which must fetch a batch at a time, use its cursor unchanged). Errors are sqlite3's own,
raised from the thread, so SQLAlchemy wraps them as before (``IntegrityError``,
``OperationalError``, ...). Wired in by :func:`storage.db.make_engine` through
``create_async_engine(module=...)``, SQLAlchemy's documented way to hand a dialect its DBAPI.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Sequence
from threading import Thread
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import await_only

# What a statement brings back from the thread: description, rows, rowcount, lastrowid.
_Outcome = tuple[Any, list[Any], int, int | None]


def _execute(connection: sqlite3.Connection, operation: str, parameters: Any | None) -> _Outcome:
    """Run in aiosqlite's thread: the whole statement, as the stock adapter's steps do it."""
    cursor = connection.cursor()
    try:
        if parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


def _executemany(
    connection: sqlite3.Connection, operation: str, seq_of_parameters: Any
) -> _Outcome:
    """Run in aiosqlite's thread: one statement for many parameter sets (DML only)."""
    cursor = connection.cursor()
    try:
        cursor.executemany(operation, seq_of_parameters)
        return None, [], cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor:
    """A DBAPI cursor over rows already fetched: nothing left to do in the thread."""

    server_side = False
    __slots__ = ("_adapt_connection", "_rows", "arraysize", "description", "lastrowid", "rowcount")

    def __init__(self, adapt_connection: OneTripConnection) -> None:
        self._adapt_connection = adapt_connection
        self._rows: deque[Any] = deque()
        self.arraysize = 1  # sqlite3's default, used by fetchmany() without a size
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None

    def _run(self, function: Any, operation: str, parameters: Any) -> None:
        adapted = self._adapt_connection
        try:
            driver = adapted._connection
            # ``_conn`` raises "no active connection" on a closed connection, which the
            # adapter's _handle_exception reports as OperationalError, as for any call.
            outcome: _Outcome = await_only(
                driver._execute(function, driver._conn, operation, parameters)
            )
        except Exception as error:
            adapted._handle_exception(error)
        self.description, rows, self.rowcount, self.lastrowid = outcome
        self._rows = deque(rows)

    def execute(self, operation: str, parameters: Any | None = None) -> None:
        self._run(_execute, operation, parameters)

    def executemany(self, operation: str, seq_of_parameters: Any) -> None:
        self._run(_executemany, operation, seq_of_parameters)

    async def _async_soft_close(self) -> None:
        """SQLAlchemy's asyncio results call this to close the cursor early: already closed."""

    def close(self) -> None:
        self._rows.clear()

    def setinputsizes(self, *_sizes: Any) -> None:
        pass

    def __iter__(self) -> Any:
        while self._rows:
            yield self._rows.popleft()

    def fetchone(self) -> Any | None:
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        rows = self._rows
        count = min(self.arraysize if size is None else size, len(rows))
        return [rows.popleft() for _ in range(count)]

    def fetchall(self) -> Sequence[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's adapted aiosqlite connection, with one-trip cursors."""

    __slots__ = ()

    def cursor(self, server_side: bool = False) -> Any:
        if server_side:  # streamed results fetch a batch at a time: the stock cursor
            return super().cursor(server_side=True)
        return OneTripCursor(self)

    def _transaction_open(self) -> bool:
        # sqlite3 reads SQLite's autocommit flag here (no thread check, no I/O); its commit
        # and rollback do nothing when it is set. A closed connection goes the stock way,
        # which reports it.
        driver = self._connection._connection
        return driver is None or driver.in_transaction

    def commit(self) -> None:
        if self._transaction_open():
            super().commit()

    def rollback(self) -> None:
        if self._transaction_open():
            super().rollback()


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite DBAPI module, whose connections are :class:`OneTripConnection`."""

    def connect(self, *args: Any, **kwargs: Any) -> OneTripConnection:
        creator = kwargs.pop("async_creator_fn", None)  # create_async_engine(async_creator=)
        if creator is not None:
            return OneTripConnection(self, await_only(creator(*args, **kwargs)))
        connection = self.aiosqlite.connect(*args, **kwargs)
        # As SQLAlchemy does: the connection's thread must not keep the process alive. Before
        # aiosqlite 0.22 the connection was itself the thread.
        thread = connection if isinstance(connection, Thread) else connection._thread
        thread.daemon = True
        return OneTripConnection(self, await_only(connection))


def one_trip_dbapi() -> OneTripDBAPI:
    return OneTripDBAPI(aiosqlite, sqlite3)
