"""What the chat channels themselves must remember across restarts.

Two small things, neither of them conversation state: which platform updates were already
taken (Zalo re-sends webhooks and has no update offsets, so a restart must not answer the same
message twice), and platform credentials that change while the bot runs (the Zalo OA refresh
token is single use and rotates: losing the newest one locks the bot out of the OA).

No commits here: the caller owns the transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ChannelSecret, ProcessedUpdate

MAX_KEY = 100


async def claim_update(session: AsyncSession, channel: str, key: str, now: datetime) -> bool:
    """Record that ``channel``'s update ``key`` is being handled; False when it already was.

    An ``INSERT .. ON CONFLICT DO NOTHING`` rather than catching the unique violation: two
    deliveries of one update racing each other get a plain answer and no aborted transaction.
    """
    values = {"channel": channel, "update_key": key[:MAX_KEY], "received_at": now}
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(ProcessedUpdate).values(**values).on_conflict_do_nothing()
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def forget_updates_before(session: AsyncSession, channel: str, before: datetime) -> int:
    """Drop receipts older than any re-delivery the platform would still make."""
    result = await session.execute(
        delete(ProcessedUpdate).where(
            ProcessedUpdate.channel == channel, ProcessedUpdate.received_at < before
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def read_secret(session: AsyncSession, name: str) -> dict[str, Any] | None:
    row = await session.scalar(
        select(ChannelSecret)
        .where(ChannelSecret.name == name)
        .execution_options(populate_existing=True)
    )
    return dict(row.value) if row is not None else None


async def lock_secret(session: AsyncSession, name: str) -> dict[str, Any] | None:
    """Read a secret for rewriting, holding it against other processes until commit.

    PostgreSQL locks the row (``FOR UPDATE``); SQLite has no row locks, so a no-op write takes
    the database write lock instead. Either way a second process refreshing the same token
    waits here and then sees the rotated value instead of spending the old one again.
    """
    if session.get_bind().dialect.name == "postgresql":
        row = await session.scalar(
            select(ChannelSecret)
            .where(ChannelSecret.name == name)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return dict(row.value) if row is not None else None
    await session.execute(
        update(ChannelSecret)
        .where(ChannelSecret.name == name)
        .values(name=ChannelSecret.name)
        .execution_options(synchronize_session=False)
    )
    return await read_secret(session, name)


async def write_secret(
    session: AsyncSession, name: str, value: dict[str, Any], now: datetime
) -> None:
    row = await session.get(ChannelSecret, name)
    if row is None:
        session.add(ChannelSecret(name=name, value=value, updated_at=now))
    else:
        row.value = value
        row.updated_at = now
    await session.flush()
