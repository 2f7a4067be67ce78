"""What the operator's probes read: the outbox's backlog (bot.health, /metrics)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import OutboxMessage


async def outbox_backlog(session: AsyncSession) -> tuple[int, datetime | None]:
    """How many messages wait to be delivered (no outcome yet), and since when the oldest."""
    row = (
        await session.execute(
            select(func.count(), func.min(OutboxMessage.created_at)).where(
                OutboxMessage.outcome.is_(None)
            )
        )
    ).one()
    return int(row[0]), row[1]
