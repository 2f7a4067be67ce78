"""PostgreSQL restarted while people are chatting: they are told it is busy, their answers are
kept and stored once the server is back, nothing twice, and the bot keeps serving.

A private PostgreSQL cluster (tests.pgcluster) is stopped and started under the bot, first
under the engine itself, then under `thidua run` talking to the local Telegram.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import aiohttp
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.engine.flow import EngineConfig
from handlers.engine.prompt import Incoming, Reply, Result
from handlers.engine.runner import Engine
from handlers.flows import build_engine
from storage.db import make_engine, make_sessionmaker
from storage.models import ChannelIdentity, Person, Registration, Role, UnitRole
from storage.seed import prepare_database
from tests.chat import Chat
from tests.factories import Org, make_org
from tests.fakes import DEFAULT_TOKEN, FakeBotAPI, TgUser
from tests.pgcluster import PrivateCluster, missing_reason
from tests.waiting import patience

JAN_10 = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)
BUSY = "Hệ thống đang bận"
PEOPLE = 6


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    reason = missing_reason()
    if reason is not None:
        pytest.skip(reason)
    server = PrivateCluster()
    try:
        server.start_sync()
        yield server
    finally:
        server.destroy()


async def setup(url: str) -> tuple[async_sessionmaker[AsyncSession], Org, list[str]]:
    db = make_engine(url)
    await prepare_database(db)
    sessionmaker = make_sessionmaker(db)
    org = await make_org(sessionmaker)
    users = [f"p{i}" for i in range(PEOPLE)]
    async with sessionmaker() as session, session.begin():
        for i, user in enumerate(users):
            person = Person(full_name=f"Đoàn Viên {i}", unit_id=org.garment.id, source="roster")
            session.add(person)
            await session.flush()
            session.add(UnitRole(person_id=person.id, unit_id=org.garment.id, role=Role.MEMBER))
            session.add(ChannelIdentity(channel="test", external_id=user, person_id=person.id))
    return sessionmaker, org, users


async def at_commitment(engine: Engine, user: str) -> Chat:
    chat = Chat(engine, user)
    await chat.say("/start")
    await chat.say("/dangky")
    await chat.tap("Lao động tiên tiến")
    assert "cam kết" in chat.text()
    return chat


def received(chat: Chat, result: Result) -> None:
    chat.last = result.replies
    chat.replies.extend(result.replies)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_answers_sent_while_the_server_is_down_are_kept(
    cluster: PrivateCluster, mode: str
) -> None:
    sessionmaker, _org, users = await setup(cluster.url)
    engine = build_engine(sessionmaker, EngineConfig(now=lambda: JAN_10, busy_patience=60))
    try:
        chats = [await at_commitment(engine, user) for user in users]
        await cluster.stop(mode)  # "immediate" is a crash: recovery on the next start
        notices: dict[str, list[Reply]] = {user: [] for user in users}

        async def answer(chat: Chat, i: int) -> Result:
            async def tell(reply: Reply) -> None:
                notices[chat.user_id].append(reply)

            incoming = Incoming(chat.address, text=f"Cam kết của người thứ {i}")
            return await engine.handle(incoming, on_busy=tell)

        tasks = [asyncio.create_task(answer(chat, i)) for i, chat in enumerate(chats)]
        await asyncio.sleep(2.5)
        assert not any(t.done() for t in tasks), "an answer was given up while waiting"
        # Each person in flight was told once that it takes a moment.
        assert all(len(n) == 1 and BUSY in n[0].text for n in notices.values()), notices
        await cluster.start()
        results = await asyncio.wait_for(asyncio.gather(*tasks), patience(90))
        for i, (chat, result) in enumerate(zip(chats, results, strict=True)):
            received(chat, result)
            assert f"Cam kết của người thứ {i}" in chat.text(), chat.transcript()
            assert BUSY not in chat.text()
            assert len(notices[chat.user_id]) == 1  # told once, not on every retry
            await chat.tap("Xác nhận")
            assert "TD2027-" in chat.text()

        # The bot keeps serving: someone new after the restart is answered as usual.
        newcomer = Chat(engine, "after-restart")
        await newcomer.say("/start")
        assert "0912 345 678" in newcomer.text()
        async with sessionmaker() as session:
            stored = sorted(str(c) for c in await session.scalars(select(Registration.commitment)))
        assert stored == sorted(f"Cam kết của người thứ {i}" for i in range(PEOPLE))
    finally:
        await sessionmaker.kw["bind"].dispose()


async def test_journeys_across_a_restart_each_register_exactly_once(
    cluster: PrivateCluster,
) -> None:
    """People keep chatting (not waiting for anyone) while the server goes down and comes
    back in the middle of their journeys."""
    sessionmaker, _org, users = await setup(cluster.url)
    engine = build_engine(sessionmaker, EngineConfig(now=lambda: JAN_10, busy_patience=60))
    try:

        async def journey(user: str) -> Chat:
            chat = await at_commitment(engine, user)
            await chat.say(f"Hoàn thành kế hoạch của {user}")
            await chat.tap("Xác nhận")
            await chat.say("/cuatoi")
            return chat

        async def restart() -> None:
            await asyncio.sleep(0.3)
            await cluster.stop("fast")
            await asyncio.sleep(1.5)
            await cluster.start()

        restarting = asyncio.create_task(restart())

        chats = await asyncio.wait_for(
            asyncio.gather(*(journey(user) for user in users)), patience(120)
        )
        await restarting
        for chat in chats:
            assert "TD2027-" in chat.text(), chat.transcript()
        async with sessionmaker() as session:
            per_person = list(
                await session.execute(
                    select(Registration.person_id, func.count()).group_by(Registration.person_id)
                )
            )
        assert len(per_person) == PEOPLE and all(count == 1 for _p, count in per_person)
    finally:
        await sessionmaker.kw["bind"].dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_the_bot_process_rides_out_a_restart(cluster: PrivateCluster) -> None:
    """`thidua run` as deployed: a person mid-registration on Telegram while the database
    restarts gets the busy notice, then the answer; the process neither exits nor loops."""
    sessionmaker, _org, _users = await setup(cluster.url)
    await sessionmaker.kw["bind"].dispose()
    port = free_port()
    async with FakeBotAPI() as api, aiohttp.ClientSession() as http:

        async def ready() -> int:
            async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                return response.status

        env = {
            **os.environ,
            "TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN,
            "TELEGRAM_API_BASE": api.base_url,
            "DATABASE_URL": cluster.url,
            "THIDUA_LOG_LEVEL": "WARNING",
            # Its probes (/healthz, /readyz): watched while the database is down.
            "THIDUA_WEB_PORT": str(port),
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            hoa = TgUser(api, 8001, "Hoa")
            await hoa.command("/start")
            await hoa.wait_for("0912 345 678", timeout=30)
            await hoa.share_contact("+84912345678")
            await hoa.wait_for("Nguyễn Thị Hoa")
            await hoa.press("là tôi")
            await hoa.wait_for("bạn muốn làm gì")
            await hoa.press("Đăng ký danh hiệu")
            await hoa.wait_for("khen thưởng nào")
            await hoa.press("Lao động tiên tiến")
            await hoa.wait_for("cam kết")
            assert await ready() == 200

            await cluster.stop("fast")
            await hoa.send("Hoàn thành 110% kế hoạch năm")
            await hoa.wait_for(BUSY, timeout=20)
            await asyncio.sleep(3)  # down for a while: the scheduler and the outbox try too
            assert proc.returncode is None, "the bot exited while the database was down"
            assert await ready() == 503  # a proxy or orchestrator sees it, the process lives
            async with http.get(f"http://127.0.0.1:{port}/healthz") as alive:
                assert alive.status == 200
            await cluster.start()
            summary = await hoa.wait_for("Hoàn thành 110% kế hoạch năm", timeout=60)
            assert "Lao động tiên tiến" in summary
            await hoa.press("Xác nhận")
            await hoa.wait_for("TD2027-000001", timeout=30)

            binh = TgUser(api, 8002, "Bình")  # and it keeps serving
            await binh.command("/start")
            await binh.wait_for("0912 345 678", timeout=30)
            assert proc.returncode is None
            assert await ready() == 200
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            try:
                code = await asyncio.wait_for(proc.wait(), patience(30))
            except TimeoutError:
                proc.kill()
                code = await proc.wait()
            errors = (await proc.stderr.read()).decode(errors="replace") if proc.stderr else ""
    assert code == 0, errors[-3000:]
    assert hoa.transcript().count(BUSY) == 1  # told once
    db = make_engine(cluster.url)
    try:
        async with make_sessionmaker(db)() as session:
            commitments = list(await session.scalars(select(Registration.commitment)))
    finally:
        await db.dispose()
    assert commitments == ["Hoàn thành 110% kế hoạch năm"]
