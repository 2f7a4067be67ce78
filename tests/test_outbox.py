"""Messages for other people survive a crash: queued with the change, sent by the dispatcher."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.delivery import DeliveryError
from bot.outbox import OutboxDispatcher
from handlers.engine.prompt import Address, Choice, OutFile, Outgoing, Reply
from handlers.engine.runner import queue_outgoing
from storage.models import OutboxMessage
from storage.types import utcnow


class RecordingChannel:
    """A platform that accepts messages, after failing the first ``fail_first`` sends."""

    name = "rec"

    def __init__(self, fail_first: int = 0, blocked: set[str] | None = None) -> None:
        self.sent: list[tuple[str, Reply]] = []
        self.fail_first = fail_first
        self.blocked = blocked or set()

    async def send(self, address_external_id: str, reply: Reply) -> None:
        if address_external_id in self.blocked:
            raise DeliveryError("send", "bot was blocked by the user", blocked=True)
        if self.fail_first:
            self.fail_first -= 1
            raise DeliveryError("send", "502 Bad Gateway")
        self.sent.append((address_external_id, reply))

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


async def queue(sessionmaker: async_sessionmaker[AsyncSession], *outs: Outgoing) -> None:
    async with sessionmaker() as session, session.begin():
        queue_outgoing(session, list(outs))


def msg(to: str, text: str, **kw: object) -> Outgoing:
    return Outgoing(Address("rec", to), Reply(text, **kw))  # type: ignore[arg-type]


async def test_queued_messages_are_delivered_once_with_buttons_and_files(sessionmaker) -> None:
    channel = RecordingChannel()
    await queue(
        sessionmaker,
        msg("1", "Đơn vị May đã gửi danh sách", choices=(Choice("!approve:3", "✅ Duyệt"),)),
        msg("2", "Báo cáo", file=OutFile("bc.xlsx", b"PK\x03\x04", "application/vnd.ms-excel")),
    )
    dispatcher = OutboxDispatcher(sessionmaker, {"rec": channel})
    assert await dispatcher.deliver_pending() == 2
    assert await dispatcher.deliver_pending() == 0  # nothing twice
    (to1, r1), (_to2, r2) = channel.sent
    assert (to1, r1.text, r1.choices[0].id) == ("1", "Đơn vị May đã gửi danh sách", "!approve:3")
    assert r2.file is not None and r2.file.content == b"PK\x03\x04"


async def test_platform_failure_is_retried_later_and_blocked_is_final(sessionmaker) -> None:
    channel = RecordingChannel(fail_first=1, blocked={"9"})
    await queue(sessionmaker, msg("1", "nhắc hạn"), msg("9", "nhắc hạn"))
    dispatcher = OutboxDispatcher(sessionmaker, {"rec": channel})
    assert await dispatcher.deliver_pending() == 0
    async with sessionmaker() as session:
        rows = {r.external_id: r for r in await session.scalars(select(OutboxMessage))}
    assert rows["9"].outcome == "blocked"
    assert rows["1"].outcome is None and rows["1"].attempts == 1
    # Due again after the back-off.
    async with sessionmaker() as session, session.begin():
        await session.execute(update(OutboxMessage).values(next_attempt_at=utcnow()))
    assert await dispatcher.deliver_pending() == 1
    assert [to for to, _r in channel.sent] == ["1"]


async def test_a_message_claimed_by_a_dead_process_is_sent_after_the_lease(sessionmaker) -> None:
    await queue(sessionmaker, msg("1", "thông báo"))
    async with sessionmaker() as session, session.begin():
        # Claimed by a process that died right after claiming.
        await session.execute(
            update(OutboxMessage).values(claimed_until=utcnow() + timedelta(seconds=30))
        )
    channel = RecordingChannel()
    dispatcher = OutboxDispatcher(sessionmaker, {"rec": channel})
    assert await dispatcher.deliver_pending() == 0
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(OutboxMessage).values(claimed_until=utcnow() - timedelta(seconds=1))
        )
    assert await dispatcher.deliver_pending() == 1
    assert channel.sent[0][1].text == "thông báo"
