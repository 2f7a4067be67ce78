"""Sending announcements over real HTTP: the local Bot API, the real Telegram channel and
sender, the real database (SQLite and PostgreSQL).

Covered: an officer's whole journey on Telegram (preview, send, progress edited into the
confirmation, final report, a blocked member, "📝 Đăng ký ngay" opening the registration);
429 answers waited out without losing or doubling anything; a scheduled broadcast going out
when due; the file and the text a second apart; a sending process killed with SIGKILL and
started again (nothing missed, at most the in-flight window doubled, and those named).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.broadcast import BroadcastSender, BroadcastService, build_report, run_due_broadcasts
from bot.channels.telegram import TelegramChannel
from bot.outbox import OutboxDispatcher
from bot.ratelimit import LocalRateLimiter
from handlers.broadcasts import report_text
from handlers.engine.flow import EngineConfig
from handlers.flows import build_engine
from handlers.i18n import use_locale
from storage.models import (
    Broadcast,
    BroadcastDelivery,
    BroadcastStatus,
    ChannelIdentity,
    DeliveryState,
    OutboxMessage,
    Person,
    Role,
    UnitRole,
)
from tests.factories import Org, make_org
from tests.fakes import DEFAULT_TOKEN, FakeBotAPI, TgUser
from tests.waiting import patience, until

ROOT = Path(__file__).resolve().parent.parent
JAN_10 = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)  # 09:00 in Hà Nội, registration open
OFFICER = 9001
FIRST_MEMBER = 7001
TEXT = "Kính gửi các đồng chí đoàn viên: Công đoàn phát động phong trào thi đua năm 2027."


def moving_clock(start: datetime) -> Callable[[], datetime]:
    """``start`` now, then running at the real pace (leases and pauses behave as in life)."""
    t0 = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - t0)


async def add_members(
    sessionmaker: async_sessionmaker[AsyncSession], org: Org, count: int
) -> list[int]:
    """``count`` members of the garment union on Telegram; returns their chat ids."""
    chats = [FIRST_MEMBER + i for i in range(count)]
    async with sessionmaker() as session, session.begin():
        for chat in chats:
            person = Person(full_name=f"Đoàn viên {chat}", unit_id=org.garment.id)
            session.add(person)
            await session.flush()
            session.add(
                ChannelIdentity(channel="telegram", external_id=str(chat), person_id=person.id)
            )
    return chats


async def add_officer(sessionmaker: async_sessionmaker[AsyncSession], org: Org) -> int:
    async with sessionmaker() as session, session.begin():
        person = Person(full_name="Lê Văn Cán", unit_id=org.upper.id, source="chat")
        session.add(person)
        await session.flush()
        session.add(UnitRole(person_id=person.id, unit_id=org.upper.id, role=Role.OFFICER))
        session.add(
            ChannelIdentity(channel="telegram", external_id=str(OFFICER), person_id=person.id)
        )
        return person.id


async def add_broadcast(
    sessionmaker: async_sessionmaker[AsyncSession],
    org: Org,
    *,
    scheduled_at: datetime,
    **values: object,
) -> int:
    async with sessionmaker() as session, session.begin():
        broadcast = Broadcast(
            source="cli",
            unit_id=org.upper.id,
            text=TEXT,
            audience={"unit_ids": [], "role": "all", "unregistered": False},
            status=BroadcastStatus.SCHEDULED,
            scheduled_at=scheduled_at,
            **values,
        )
        session.add(broadcast)
        await session.flush()
        return broadcast.id


async def eventually(condition: Callable[[], bool], within: float = 30, step: float = 0.05) -> None:
    """Poll ``condition`` (something another task makes true) while it makes progress;
    ``within`` is how long it may stand still on an idle machine (tests.waiting)."""
    await until(condition, what="condition", stalled_after=within, step=step)


def received(api: FakeBotAPI, chats: list[int]) -> dict[int, int]:
    return {chat: len(api.messages(chat)) for chat in chats}


async def states(sessionmaker: async_sessionmaker[AsyncSession], broadcast_id: int) -> dict:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(BroadcastDelivery.external_id, BroadcastDelivery.state).where(
                BroadcastDelivery.broadcast_id == broadcast_id
            )
        )
        return {int(ext): state for ext, state in rows}


@pytest.fixture
async def org(sessionmaker: async_sessionmaker[AsyncSession]) -> Org:
    return await make_org(sessionmaker)


# --- the officer's journey on Telegram -------------------------------------------------------


@pytest.fixture
async def running(
    sessionmaker: async_sessionmaker[AsyncSession], org: Org
) -> AsyncIterator[tuple[FakeBotAPI, BroadcastService]]:
    """The bot as deployed, Telegram only: polling, outbox dispatcher, broadcast service."""
    clock = moving_clock(JAN_10)
    engine = build_engine(sessionmaker, EngineConfig(now=clock))
    async with FakeBotAPI(blocked={FIRST_MEMBER + 2}) as api:
        channel = TelegramChannel(engine, DEFAULT_TOKEN, api.base_url, polling_timeout=5)
        outbox = OutboxDispatcher(sessionmaker, {"telegram": channel})
        service = BroadcastService(
            sessionmaker,
            {"telegram": channel},
            LocalRateLimiter(30),
            poll_seconds=0.3,
            clock=clock,
            progress_seconds=0.0,
            on_queued=outbox.nudge,
        )
        engine.on_queued = outbox.nudge
        await channel.start()
        tasks = [
            asyncio.create_task(channel.run_polling()),
            asyncio.create_task(outbox.run()),
            asyncio.create_task(service.run()),
        ]
        try:
            yield api, service
        finally:
            service.stop()
            outbox.stop()
            await asyncio.wait_for(asyncio.gather(tasks[1], tasks[2]), patience(15))
            await channel.stop()
            await asyncio.wait_for(tasks[0], patience(10))


async def test_officer_announces_on_telegram_members_receive_it_and_register(
    running: tuple[FakeBotAPI, BroadcastService],
    sessionmaker: async_sessionmaker[AsyncSession],
    org: Org,
) -> None:
    api, _service = running
    await add_officer(sessionmaker, org)
    chats = await add_members(sessionmaker, org, 5)
    blocked = FIRST_MEMBER + 2
    officer = TgUser(api, OFFICER, "Cán")

    await officer.command("/thongbao")
    await officer.wait_for("nội dung thông báo")
    await officer.send(TEXT)
    await officer.wait_for("đính kèm")
    await officer.send_document("ke-hoach-thi-dua-2027.pdf", "application/pdf", 120_000)
    await officer.press("Toàn bộ")
    await officer.press("Tất cả đoàn viên")
    await officer.press("Phong trào thi đua năm 2027")
    await officer.press("Tất cả người đã chọn")
    counts = await officer.wait_for("Người nhận:")
    # Hoa (make_org's roster) has no chat; the officer is in the subtree and gets it too.
    assert "Người nhận: 7 người" in counts and "qua Telegram: 6" in counts
    assert "chưa từng nhắn với bot (sẽ không nhận được): 1" in counts
    preview = [m for m in officer.since_last_action() if TEXT in (m.text or "")]
    assert preview and preview[0].labels == ["📝 Đăng ký ngay"]
    assert any(m.kind == "document" for m in officer.since_last_action())

    await officer.press("Gửi ngay")
    confirm = await officer.wait_message("Gửi thông báo cho 6 người ngay bây giờ?")
    await officer.press("Xác nhận gửi")
    await officer.wait_for("đang được gửi")

    # The confirmation becomes the progress bar, then the final state; the report arrives.
    report = await officer.wait_for("đã gửi xong", timeout=30)
    # Four members and the officer (in the subtree too) have it; one member blocked the bot.
    assert "✅ Đã nhận: 5" in report and "🚫 Đã chặn bot: 1" in report
    assert "Có thể đã nhận hai lần" not in report
    edited = next(m for m in api.messages(OFFICER) if m.message_id == confirm.message_id)
    assert edited.edits and "đã gửi xong" in (edited.text or "")

    # Every member: the plan (by Telegram file id, no upload), then the text with the button.
    for chat in chats:
        if chat == blocked:
            assert api.messages(chat) == []
            continue
        document, text = api.messages(chat)
        assert document.kind == "document" and document.document is not None
        assert document.document.content == b""  # sent by file_id
        assert text.text and text.text.endswith(TEXT) and text.labels == ["📝 Đăng ký ngay"]
        assert text.sent_at - document.sent_at >= 1.0  # Telegram's pace for one chat
    # One upload-free sendDocument each: the preview, the officer, every member.
    assert len(api.calls_of("sendDocument")) == len(chats) + 2
    sent = await states(sessionmaker, 1)
    assert sent[blocked] == DeliveryState.BLOCKED

    # A member taps "Đăng ký ngay": the registration for that campaign, at the title.
    member = TgUser(api, FIRST_MEMBER, "A")
    await member.press("Đăng ký ngay")
    question = await member.wait_for("hình thức khen thưởng nào")
    assert "Phong trào thi đua năm 2027" in question
    assert any("Lao động tiên tiến" in label for label in member.last_keyboard())


# --- 429, blocked, scheduled ---------------------------------------------------------------------


async def test_429_is_waited_out_and_a_blocked_member_is_reported(
    sessionmaker: async_sessionmaker[AsyncSession], org: Org
) -> None:
    chats = await add_members(sessionmaker, org, 24)
    blocked = FIRST_MEMBER + 5
    broadcast_id = await add_broadcast(sessionmaker, org, scheduled_at=JAN_10)
    engine = build_engine(sessionmaker, EngineConfig())
    # The platform allows 6 messages a second; the bot believes 20: it must be told (429).
    async with FakeBotAPI(rate_limit=6, blocked={blocked}) as api:
        channel = TelegramChannel(engine, DEFAULT_TOKEN, api.base_url)
        sender = BroadcastSender(
            sessionmaker,
            {"telegram": channel},
            LocalRateLimiter(20),
            clock=moving_clock(JAN_10),
        )
        try:
            assert await sender.run(broadcast_id) == BroadcastStatus.DONE
        finally:
            await channel.bot.session.close()
        got = received(api, chats)
        assert api.statuses[429] > 0 and sender.stats.rate_limited == api.statuses[429]
        assert got[blocked] == 0
        assert {chat: n for chat, n in got.items() if chat != blocked} == {
            chat: 1 for chat in chats if chat != blocked
        }
        # 403 is final: the blocked member was asked once, never again.
        # (chat_id as the body carried it: a string in form data, a number in JSON)
        asked = [str(c.params["chat_id"]) for c in api.calls_of("sendMessage")]
        assert asked.count(str(blocked)) == 1
    async with sessionmaker() as session:
        data = await build_report(session, broadcast_id)
    assert data.counts[DeliveryState.SENT] == 23 and data.counts[DeliveryState.BLOCKED] == 1
    with use_locale("vi"):
        text = report_text(data)
    assert "✅ Đã nhận: 23" in text and "🚫 Đã chặn bot: 1" in text and "đã gửi xong" in text


async def test_a_scheduled_broadcast_goes_out_when_due(
    sessionmaker: async_sessionmaker[AsyncSession], org: Org
) -> None:
    chats = await add_members(sessionmaker, org, 3)
    officer_id = await add_officer(sessionmaker, org)
    at = JAN_10 + timedelta(hours=2)
    broadcast_id = await add_broadcast(
        sessionmaker,
        org,
        scheduled_at=at,
        created_by_id=officer_id,
        progress_channel="telegram",
        progress_external_id=str(OFFICER),
    )
    engine = build_engine(sessionmaker, EngineConfig())
    async with FakeBotAPI() as api:
        channel = TelegramChannel(engine, DEFAULT_TOKEN, api.base_url)
        channels = {"telegram": channel}
        try:
            early = await run_due_broadcasts(
                sessionmaker, channels, at - timedelta(minutes=1), clock=lambda: at
            )
            assert early == {} and received(api, chats) == {chat: 0 for chat in chats}
            due = await run_due_broadcasts(
                sessionmaker, channels, at, clock=moving_clock(at + timedelta(seconds=1))
            )
            assert due == {broadcast_id: BroadcastStatus.DONE}
            # A fresh progress message for a scheduled one, edited to the final state.
            progress = [m for m in api.messages(OFFICER) if "Thông báo #" in (m.text or "")]
            assert len(progress) == 1 and "đã gửi xong" in (progress[0].text or "")
        finally:
            await channel.bot.session.close()
        assert received(api, chats) == {chat: 1 for chat in chats}
    async with sessionmaker() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
        report = await session.scalar(select(OutboxMessage))
    assert broadcast is not None and broadcast.status == BroadcastStatus.DONE
    assert broadcast.finished_at is not None and broadcast.counts["sent"] == 4
    # The report waits in the outbox, queued with the status change.
    assert report is not None and report.external_id == str(OFFICER)
    assert "✅ Đã nhận: 4" in report.payload["text"]


async def test_a_cancelled_broadcast_stops(
    sessionmaker: async_sessionmaker[AsyncSession], org: Org
) -> None:
    chats = await add_members(sessionmaker, org, 30)
    broadcast_id = await add_broadcast(sessionmaker, org, scheduled_at=JAN_10)
    engine = build_engine(sessionmaker, EngineConfig())
    async with FakeBotAPI(rate_limit=10) as api:
        channel = TelegramChannel(engine, DEFAULT_TOKEN, api.base_url)
        sender = BroadcastSender(
            sessionmaker,
            {"telegram": channel},
            LocalRateLimiter(10),
            clock=moving_clock(JAN_10),
            heartbeat_seconds=0.2,
        )
        run = asyncio.create_task(sender.run(broadcast_id))
        await eventually(lambda: sum(received(api, chats).values()) >= 5)
        async with sessionmaker() as session, session.begin():
            broadcast = await session.get(Broadcast, broadcast_id)
            assert broadcast is not None
            broadcast.status = BroadcastStatus.CANCELLED
        try:
            assert await asyncio.wait_for(run, patience(15)) == BroadcastStatus.CANCELLED
        finally:
            await channel.bot.session.close()
        got = sum(received(api, chats).values())
    assert 5 <= got < 30
    assert list((await states(sessionmaker, broadcast_id)).values()).count("sent") == got


# --- kill -9 and restart -------------------------------------------------------------------------


async def start_sender(
    api: FakeBotAPI, db_url: str, broadcast_id: int
) -> asyncio.subprocess.Process:
    """`thidua broadcast send ID`: the real sender in a process of its own."""
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN,
        "TELEGRAM_API_BASE": api.base_url,
        "DATABASE_URL": db_url,
        "THIDUA_LOG_LEVEL": "WARNING",
        "THIDUA_BROADCAST_RATE": "20",
    }
    env.pop("REDIS_URL", None)
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bot", "broadcast", "send", str(broadcast_id)),
        env=env,
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
    )


async def test_killed_mid_broadcast_the_restart_misses_nobody(
    sessionmaker: async_sessionmaker[AsyncSession], org: Org, db_url: str
) -> None:
    chats = await add_members(sessionmaker, org, 80)
    broadcast_id = await add_broadcast(sessionmaker, org, scheduled_at=JAN_10)
    async with FakeBotAPI(rate_limit=20) as api:
        first = await start_sender(api, db_url, broadcast_id)
        # As long as the sender lives and keeps sending: a loaded machine is slow, not stuck.
        await until(
            lambda: sum(received(api, chats).values()) >= 30,
            what="the first sender's first 30 messages",
            progress=lambda: sum(received(api, chats).values()),
            alive=lambda: first.returncode is None,
            step=0.01,
        )
        assert first.returncode is None
        first.kill()  # kill -9 in the middle of sending: no goodbye
        await first.wait()
        async with sessionmaker() as session:
            in_flight = set(
                await session.scalars(
                    select(BroadcastDelivery.external_id).where(
                        BroadcastDelivery.broadcast_id == broadcast_id,
                        BroadcastDelivery.state == DeliveryState.IN_FLIGHT,
                    )
                )
            )
        assert len(in_flight) <= 3  # the window

        second = await start_sender(api, db_url, broadcast_id)
        talking = asyncio.create_task(second.communicate())
        await until(
            talking.done,
            what="the second sender finishing the broadcast",
            progress=lambda: sum(received(api, chats).values()),
        )
        out, _err = talking.result()
        assert second.returncode == 0, out
        got = received(api, chats)

    assert all(n >= 1 for n in got.values())  # nobody missed
    doubled = {str(chat) for chat, n in got.items() if n > 1}
    assert all(n <= 2 for n in got.values()) and len(doubled) <= 3
    async with sessionmaker() as session:
        twice = set(
            await session.scalars(
                select(BroadcastDelivery.external_id).where(
                    BroadcastDelivery.broadcast_id == broadcast_id, BroadcastDelivery.maybe_twice
                )
            )
        )
        data = await build_report(session, broadcast_id)
    # Exactly the ones in flight at the kill were sent again, and the report names them.
    assert twice == in_flight and doubled <= twice
    assert data.status == BroadcastStatus.DONE and data.counts[DeliveryState.SENT] == 80
    assert data.counts.maybe_twice == len(twice)
    with use_locale("vi"):
        report = report_text(data)
    if twice:
        assert "Có thể đã nhận hai lần" in report
        assert all(p.full_name in report for p in data.twice)
    assert "Có thể đã nhận hai lần" in out.decode() or not twice


async def test_a_restarted_bot_resumes_a_killed_senders_broadcast_at_once(
    sessionmaker: async_sessionmaker[AsyncSession], org: Org
) -> None:
    """The killed sender's lease has most of its 30 s left: the restarted bot's service sees
    its process is gone and takes the broadcast over on its first look, not after the lease.
    A sender that is still alive keeps its broadcast."""
    chats = await add_members(sessionmaker, org, 5)
    gone = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await gone.wait()  # a process of this host that no longer exists, as after kill -9
    host = socket.gethostname()
    now = datetime.now(UTC)
    killed = await add_broadcast(sessionmaker, org, scheduled_at=now)
    alive = await add_broadcast(sessionmaker, org, scheduled_at=now)
    async with sessionmaker() as session, session.begin():
        for broadcast_id, pid in ((killed, gone.pid), (alive, os.getppid())):
            broadcast = await session.get(Broadcast, broadcast_id)
            assert broadcast is not None
            broadcast.status = BroadcastStatus.SENDING
            broadcast.owner = f"{host}:{pid}:abc123"
            broadcast.lease_until = now + timedelta(seconds=29)
    engine = build_engine(sessionmaker, EngineConfig())
    async with FakeBotAPI() as api:
        channel = TelegramChannel(engine, DEFAULT_TOKEN, api.base_url)
        service = BroadcastService(sessionmaker, {"telegram": channel}, LocalRateLimiter(30))
        try:
            assert await service.start_due() == [killed]
            _sender, task = service.running[killed]
            assert await asyncio.wait_for(task, 60) == BroadcastStatus.DONE
        finally:
            await channel.bot.session.close()
        assert received(api, chats) == {chat: 1 for chat in chats}
    async with sessionmaker() as session:
        still = await session.get(Broadcast, alive)
    assert still is not None and still.status == BroadcastStatus.SENDING
    assert still.owner == f"{host}:{os.getppid()}:abc123"
