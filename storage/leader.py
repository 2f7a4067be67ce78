"""One scheduler for many bot processes: a PostgreSQL advisory lock on its own connection.

APScheduler 3 must not share a job store between processes, so only one process may run
the schedule. The leader holds ``pg_try_advisory_lock(key)`` on a connection kept for that
purpose alone. A session-level advisory lock lives exactly as long as that connection: when
the leader exits or crashes, or its connection is cut, PostgreSQL frees the lock and a
process standing by takes it on its next try. SQLite means one process: always the leader.
"""

from __future__ import annotations

import logging
import zlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

# A fixed 64-bit key, the same in every process of the bot (advisory keys are per database).
SCHEDULER_LOCK_KEY = zlib.crc32(b"thidua-bot:scheduler")


class LeaderLock:
    def __init__(self, engine: AsyncEngine, key: int = SCHEDULER_LOCK_KEY) -> None:
        self.engine = engine
        self.key = key
        self._conn: AsyncConnection | None = None

    @property
    def shared(self) -> bool:
        """Whether other processes can share the database (and the lock means something)."""
        return self.engine.dialect.name == "postgresql"

    @property
    def held(self) -> bool:
        return not self.shared or self._conn is not None

    async def acquire(self) -> bool:
        """Try to become the leader, without waiting; True when this process is it."""
        if not self.shared:
            return True
        if self._conn is not None:
            return True
        conn = await self.engine.connect()
        try:
            got = await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key})
            # The lock belongs to the session, not the transaction: end the transaction so the
            # connection does not sit "idle in transaction" for days.
            await conn.commit()
        except Exception:
            await self._discard(conn)
            raise
        if not got:
            await conn.close()
            return False
        self._conn = conn
        return True

    async def alive(self) -> bool:
        """Whether the lock is still ours: its connection still answers. A cut connection
        has already released the lock on the server, so leadership is lost."""
        if not self.shared:
            return True
        if self._conn is None:
            return False
        try:
            await self._conn.execute(text("SELECT 1"))
            await self._conn.commit()
        except Exception as exc:
            log.warning("scheduler lock connection lost: %s", exc.__class__.__name__)
            conn, self._conn = self._conn, None
            await self._discard(conn)
            return False
        return True

    async def release(self) -> None:
        if self._conn is None:
            return
        conn, self._conn = self._conn, None
        try:
            await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            await conn.commit()
            await conn.close()
        except Exception:
            # Dead already: the server freed the lock with the connection.
            await self._discard(conn)

    @staticmethod
    async def _discard(conn: AsyncConnection) -> None:
        """Drop a broken connection instead of handing it back to the pool."""
        try:
            await conn.invalidate()
        except Exception:
            log.debug("invalidate failed", exc_info=True)
        try:
            await conn.close()
        except Exception:
            log.debug("close failed", exc_info=True)
