"""Engine, sessions and schema upgrades."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, InvalidatePoolError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Alembic (with Mako and Pygments) is about 11 MB resident: imported only when there is a
# migration to run, not by every bot process starting on an up-to-date database.
_REVISION = re.compile(r"^revision(?:\s*:\s*str)?\s*=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\b[^=]*=(.*)$", re.MULTILINE)


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for SQLite (aiosqlite) or PostgreSQL (asyncpg), same code for both."""
    if url.startswith("sqlite"):
        parsed = make_url(url)
        if parsed.database and parsed.database != ":memory:" and "mode=memory" not in url:
            # A pool of connections to a file, kept open between units of work (SQLAlchemy
            # does so itself from 2.0.38; before, a file got a NullPool: a new connection,
            # its thread and its pragmas for every unit of work).
            kwargs.setdefault("poolclass", AsyncAdaptedQueuePool)
        if parsed.get_driver_name() == "aiosqlite":
            # One trip to aiosqlite's thread per statement instead of three or four; its
            # rollback goes there only when a transaction is open, so the pool's reset of a
            # connection back after a commit (every unit of work) costs no trip.
            from storage.sqlite_adapter import one_trip_dbapi

            kwargs.setdefault("module", one_trip_dbapi())
        # SQLite waits this long for another connection's write lock before "database is
        # locked" (its busy handler); connect_args may say otherwise.
        connect_args = {"timeout": 30, **kwargs.pop("connect_args", {})}
        engine = create_async_engine(url, connect_args=connect_args, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # WAL lets readers work while one writer commits; foreign keys are off by
            # default in SQLite and we rely on them.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    # No pool_pre_ping: through asyncpg it is BEGIN, a ping and ROLLBACK, three round trips on
    # every checkout, i.e. on every update (bench/conversation.py). asyncpg already knows when
    # the server closed a connection (a restart, an idle timeout): such a one is replaced on
    # checkout, and the pool with it, at no cost. A connection that dies unnoticed fails its
    # first statement, which invalidates the pool; the engine redoes the unit of work.
    engine = create_async_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        event.listen(engine.sync_engine, "checkout", _closed_by_the_server)
    return engine


def _closed_by_the_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    driver = getattr(dbapi_connection, "driver_connection", None)
    is_closed = getattr(driver, "is_closed", None)
    if is_closed is not None and is_closed():
        raise InvalidatePoolError("the server closed this connection")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def script_heads() -> set[str]:
    """The head revisions, read from the migration files without importing Alembic.

    Empty when a file does not read as expected: the caller then asks Alembic.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN_REVISION.search(source)
        if revision is None or down is None:
            return set()
        revisions.add(revision.group(1))
        parents.update(re.findall(r"[\"']([^\"']+)[\"']", down.group(1)))
    return revisions - parents


async def at_head(engine: AsyncEngine) -> bool:
    """Whether the database is already at the newest revision (no migration to run)."""
    heads = script_heads()
    if not heads:
        return False
    try:
        async with engine.connect() as conn:
            current = set(await conn.scalars(text("SELECT version_num FROM alembic_version")))
    except DBAPIError:  # a new database: no version table yet
        return False
    return current == heads


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` over the given engine."""
    if revision == "head" and await at_head(engine):
        return
    from alembic import command

    def _run(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(_run)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    from alembic import command

    def _run(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(_run)
