"""The outbox dispatcher: delivers messages queued for other people, surviving restarts.

The engine writes each message for someone other than the sender into the ``outbox`` table
in the same transaction as the change that caused it. This loop claims pending rows, sends
them through the channel named in the row, and records the outcome. A row stays claimed for
a lease; when a process dies mid-send another (or the restarted one) takes it over after the
lease, so a message is never lost and is doubled only if the process died between the
platform accepting it and the row being marked sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import metrics
from bot.channels.base import Channel
from bot.delivery import DeliveryError
from bot.ratelimit import RateLimiter
from handlers.engine.prompt import OutFile, reply_from_payload
from storage.models import OutboxMessage
from storage.types import utcnow

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
BATCH = 50
MAX_ATTEMPTS = 8
IDLE_POLL_SECONDS = 5.0


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(2**attempts, 600))


class OutboxDispatcher:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        channels: Mapping[str, Channel],
        *,
        owner: str | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.channels = channels
        # The broadcasts' limiter, when given: reminders and reports then share the
        # platform's budget with announcements instead of pushing them into 429s.
        self.limiter = limiter
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self._wake = asyncio.Event()
        self._stopping = False

    def nudge(self) -> None:
        """Something was queued: look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            try:
                sent = await self.deliver_pending()
            except Exception:  # the database may be restarting: try again shortly
                log.exception("outbox pass failed")
                sent = 0
            if sent:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), IDLE_POLL_SECONDS)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def _claim(self, now: datetime) -> list[OutboxMessage]:
        async with self.sessionmaker() as session, session.begin():
            query = (
                select(OutboxMessage)
                .where(
                    OutboxMessage.sent_at.is_(None),
                    OutboxMessage.outcome.is_(None),
                    OutboxMessage.next_attempt_at <= now,
                    (OutboxMessage.claimed_until.is_(None)) | (OutboxMessage.claimed_until < now),
                    OutboxMessage.channel.in_(list(self.channels)),
                )
                .order_by(OutboxMessage.id)
                .limit(BATCH)
            )
            if session.get_bind().dialect.name == "postgresql":
                # Several processes: each takes different rows, none waits for another.
                query = query.with_for_update(skip_locked=True)
            rows = list(await session.scalars(query))
            if rows:
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_([r.id for r in rows]))
                    .values(claimed_until=now + LEASE)
                )
            return rows

    async def deliver_pending(self) -> int:
        """One pass: send what is due; returns how many were sent."""
        now = utcnow()
        rows = await self._claim(now)
        sent = 0
        for row in rows:
            file = (
                OutFile(row.file_name or "file", row.file_content, row.file_mime or "")
                if row.file_content is not None
                else None
            )
            reply = reply_from_payload(row.payload, file)
            values: dict[str, object]
            try:
                if self.limiter is not None:
                    await self.limiter.acquire(row.channel)
                await self.channels[row.channel].send(row.external_id, reply)
            except DeliveryError as exc:
                attempts = row.attempts + 1
                # Blocked, or outside Zalo OA's interaction window: retrying cannot help.
                final = exc.blocked or exc.unreachable or attempts >= MAX_ATTEMPTS
                values = {
                    "attempts": attempts,
                    "last_error": str(exc)[:500],
                    "claimed_until": None,
                    "next_attempt_at": utcnow() + _backoff(attempts),
                    "outcome": exc.kind if final else None,
                }
                log.warning("outbox %s to %s:%s: %s", row.id, row.channel, row.external_id, exc)
                metrics.outbox_delivered(row.channel, exc.kind if final else "retry")
            else:
                values = {"sent_at": utcnow(), "outcome": "sent", "claimed_until": None}
                sent += 1
                metrics.outbox_delivered(row.channel, "sent")
            async with self.sessionmaker() as session, session.begin():
                await session.execute(
                    update(OutboxMessage).where(OutboxMessage.id == row.id).values(**values)
                )
        return sent
