"""On PostgreSQL, a conversation's unit of work sends BEGIN just before its first write.

asyncpg opens a transaction with a round trip of its own (BEGIN) before the first statement
and closes it with another (COMMIT): an ordinary answer, which reads the identity and writes
the conversation's new state, made four round trips for its two statements. Neither of the
extra two buys anything there:

* under READ COMMITTED (PostgreSQL's default, the bot's) every statement of a transaction
  sees what was committed when that statement began, exactly as a statement outside one
  does, and a plain SELECT takes no lock that outlives it either way;
* the conversation's new state is one UPDATE guarded by the version read (the optimistic
  check): one statement, all or nothing by itself.

So a unit of work started with :func:`start` runs in autocommit until a statement other than
a plain SELECT is about to run: a write (an ORM flush, an insert, an update, a delete), a
SELECT ... FOR UPDATE, or SQL given as text. Just before it the connection leaves autocommit,
so the driver sends BEGIN with it, and everything from there on is one transaction, committed
(or rolled back) at the end as before. An answer that writes more than its conversation is
therefore still all or nothing; only a statement marked with :data:`SINGLE_WRITE` (the
conversation's own update, run last, when nothing else was written) may run without one.

The connection goes back to the pool as it came: :func:`start` marks it, and the pool's
check-in puts it back out of autocommit, however the unit of work ended.

SQLite needs none of this: its driver already begins a transaction at the first write.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, ExecutionContext
from sqlalchemy.sql.selectable import GenerativeSelect

# An execution option: this statement may run in autocommit if nothing was written before it.
SINGLE_WRITE = "thidua_single_write"
# In the connection record's info while its connection is in autocommit by start().
_LATE = "thidua_late_begin"


def start(connection: Connection) -> bool:
    """Run this connection's statements in autocommit until the first write (see above).

    Only on PostgreSQL through asyncpg at READ COMMITTED, with no transaction open yet;
    anywhere else it does nothing and returns False.
    """
    dialect = connection.dialect
    if dialect.name != "postgresql" or dialect.driver != "asyncpg":
        return False
    # Another level (REPEATABLE READ, SERIALIZABLE: the server's default, create_engine's
    # isolation_level, an execution option) gives a transaction one snapshot: its reads
    # must stay inside it.
    if dialect.default_isolation_level != "READ COMMITTED":
        return False
    if getattr(dialect, "_on_connect_isolation_level", None) is not None:
        return False
    if "isolation_level" in connection.get_execution_options():
        return False
    driver = connection.connection.dbapi_connection
    if driver is None or driver.autocommit or getattr(driver, "_transaction", None) is not None:
        return False
    _install(connection.engine)
    driver.autocommit = True
    connection.info[_LATE] = True
    return True


def _install(engine: Engine) -> None:
    if not event.contains(engine, "before_cursor_execute", _before_statement):
        event.listen(engine, "before_cursor_execute", _before_statement)
        event.listen(engine.pool, "checkin", _checked_in)


def _before_statement(
    connection: Connection,
    _cursor: Any,
    _statement: str,
    _parameters: Any,
    context: ExecutionContext | None,
    _executemany: bool,
) -> None:
    if not connection.info.get(_LATE):
        return
    if context is not None and (
        _plain_select(context) or context.execution_options.get(SINGLE_WRITE)
    ):
        return
    # From this statement on, one transaction: the driver sends BEGIN before it.
    _leave_autocommit(connection.connection.dbapi_connection, connection.info)


def _plain_select(context: ExecutionContext) -> bool:
    """A SELECT built with SQLAlchemy that locks nothing (SQL given as text is not known to
    be one)."""
    compiled = getattr(context, "compiled", None)
    statement = getattr(compiled, "statement", None)
    return isinstance(statement, GenerativeSelect) and statement._for_update_arg is None


def _checked_in(driver: Any, record: Any) -> None:
    _leave_autocommit(driver, record.info)


def _leave_autocommit(driver: Any, info: dict[Any, Any]) -> None:
    if info.pop(_LATE, None) and driver is not None:
        driver.autocommit = False
