"""A member's whole journey on Telegram: the real flows, the real channel, real HTTP.

Only Telegram itself is replaced, by the local fake Bot API; everything from the channel's polling
to the database is the code that runs in production.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.telegram import TelegramChannel
from bot.outbox import OutboxDispatcher
from handlers.engine.flow import EngineConfig
from handlers.flows import build_engine
from storage.models import ChannelIdentity, Registration
from tests.factories import make_org
from tests.fakes import DEFAULT_TOKEN, FakeBotAPI, TgUser
from tests.waiting import patience

JAN_10 = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)  # 09:00 in Hà Nội, before the deadline


@pytest.fixture
async def server(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[FakeBotAPI]:
    await make_org(sessionmaker)
    engine = build_engine(sessionmaker, EngineConfig(now=lambda: JAN_10))
    async with FakeBotAPI() as api:
        channel = TelegramChannel(engine, DEFAULT_TOKEN, api.base_url, polling_timeout=5)
        outbox = OutboxDispatcher(sessionmaker, {"telegram": channel})
        engine.on_queued = outbox.nudge
        await channel.start()
        polling = asyncio.create_task(channel.run_polling())
        dispatching = asyncio.create_task(outbox.run())
        try:
            yield api
        finally:
            outbox.stop()
            await asyncio.wait_for(dispatching, patience(10))
            await channel.stop()
            await asyncio.wait_for(polling, patience(10))


async def test_new_member_signs_up_registers_a_title_and_sees_it(
    server: FakeBotAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    user = TgUser(server, 5001, "Trần Văn Bình")

    await user.command("/start")
    await user.wait_for("0912 345 678")  # asks for the phone, with an example
    assert user.last_keyboard()[0].startswith("📱")  # the share-my-number button
    await user.share_contact("+84987654321")
    await user.wait_for("công đoàn cơ sở")
    assert user.since_last_action()[0].removes_keyboard  # the share-contact keyboard went
    await user.send("may bac kan")
    await user.press("Công ty May")
    await user.wait_for("Nguyễn Văn An")  # asks for the full name, with an example
    await user.press("Trần Văn Bình")  # offered from the Telegram profile
    welcome = await user.wait_for("Công ty May Bắc Kạn")
    assert "Cảm ơn bạn Bình!" in welcome  # thanked by the given name

    await user.press("Đăng ký danh hiệu")
    await user.wait_for("25/01/2027")
    await user.send("lao dong tien tien")  # typed, without diacritics
    await user.wait_for("cam kết")
    await user.send("Hoàn thành 110% kế hoạch <năm 2027>")
    summary = await user.wait_for("Hoàn thành 110% kế hoạch <năm 2027>")
    assert "Lao động tiên tiến" in summary
    await user.press("Xác nhận")
    await user.wait_for("TD2027-000001")

    await user.command("/cuatoi")
    mine = await user.wait_for("TD2027-000001")
    assert "Lao động tiên tiến" in mine

    async with sessionmaker() as session:
        reg = await session.scalar(select(Registration))
        identity = await session.scalar(
            select(ChannelIdentity).where(ChannelIdentity.external_id == "5001")
        )
    assert reg is not None and identity is not None
    assert (reg.title_code, reg.status) == ("LDTT", "submitted")
    assert reg.commitment == "Hoàn thành 110% kế hoạch <năm 2027>"
    assert identity.channel == "telegram" and identity.person_id is not None
    # Every prompt reached Telegram as plain text with valid buttons; nothing was refused.
    assert server.statuses[400] == 0


async def test_rostered_member_is_recognised_by_the_shared_number(
    server: FakeBotAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    user = TgUser(server, 5002, "Hoa")  # on the roster made by make_org: Nguyễn Thị Hoa

    await user.command("/start")
    await user.wait_for("0912 345 678")
    await user.share_contact("+84912345678")
    asked = await user.wait_message("Nguyễn Thị Hoa")
    assert "Tổ trưởng tổ may 1" in (asked.text or "")
    # The question has inline buttons; the share-contact keyboard went with a note before it.
    acknowledged = user.since_last_action()[0]
    assert acknowledged.text == "📱 +84912345678" and acknowledged.removes_keyboard
    await user.press("là tôi")
    menu = await user.wait_until(
        lambda sent: any("Đăng ký danh hiệu" in label for m in sent for label in m.labels)
    )
    assert any("Công ty May Bắc Kạn" in (m.text or "") for m in menu)


async def test_someone_elses_contact_is_refused(server: FakeBotAPI) -> None:
    user = TgUser(server, 5003, "Cường")

    await user.command("/start")
    await user.wait_for("0912 345 678")
    await user.share_contact("+84912345678", own=False)
    await user.wait_for("không phải")  # "your own number, not someone else's"
