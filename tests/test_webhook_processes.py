"""Two real `thidua run` processes behind a "load balancer", one PostgreSQL database.

The local Bot API sends every update to one process or the other in turn, and does not wait
for one update of a chat before sending the next (Telegram does; a retry after a timeout or
a load balancer's failover does not): one person's messages are handled by both processes at
the same moment. The end state must be one consistent conversation per person: every update
taken exactly once, every answer given, one registration each, receipt numbers unique.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.telegram import WEBHOOK_SECRET_HEADER
from storage.models import ChannelIdentity, Conversation, Person, Registration, Role, UnitRole
from tests.factories import Org, make_org
from tests.fakes import DEFAULT_TOKEN, FakeBotAPI, TgUser
from tests.test_e2e_process import free_port
from tests.waiting import patience

PUBLIC_URL = "https://bot.example.org/telegram/hook"
SECRET = "process-test_secret"
STALE_VI = "Nút đó thuộc câu hỏi trước"  # "That button belongs to an earlier question"
NOT_FIT_VI = "Xin lỗi, câu trả lời chưa đúng dạng"  # "Sorry, that does not fit."
PEOPLE = [
    ("Nguyễn Thị Hoa", "0912345678"),  # the factory's rostered member
    ("Trần Văn Bình", "0912000001"),
    ("Lê Thị Cúc", "0912000002"),
    ("Phạm Văn Dũng", "0912000003"),
]
PRESSES = 3  # "Xác nhận" pressed this many times at once
TYPED = 4  # then this many typed messages at once


async def add_members(sessionmaker: async_sessionmaker[AsyncSession], org: Org) -> None:
    async with sessionmaker() as session, session.begin():
        for name, phone in PEOPLE[1:]:
            person = Person(
                full_name=name, phone=phone, unit_id=org.garment.id, source="roster", position=None
            )
            session.add(person)
            await session.flush()
            session.add(UnitRole(person_id=person.id, unit_id=org.garment.id, role=Role.MEMBER))


@asynccontextmanager
async def bot_process(
    api: FakeBotAPI, db_url: str, **extra: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN,
        "TELEGRAM_API_BASE": api.base_url,
        "TELEGRAM_WEBHOOK_URL": PUBLIC_URL,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "DATABASE_URL": db_url,
        "THIDUA_WEB_HOST": "127.0.0.1",
        "THIDUA_LOG_LEVEL": "WARNING",
        # The bursts below are the point of the test, not a flood to slow down.
        "THIDUA_FLOOD_BURST": "100",
        **extra,
    }
    env.pop("REDIS_URL", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), patience(30))
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def wait_until_listening(url: str, within: float = 60.0) -> None:
    """The webhook route answers (401: no secret given), so the process is up."""
    deadline = asyncio.get_running_loop().time() + patience(within)
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.post(url, data=b"{}") as response:
                    assert response.status == 401
                    return
            except aiohttp.ClientConnectionError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.3)


async def post(url: str, update: dict[str, Any]) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=json.dumps(update), headers={WEBHOOK_SECRET_HEADER: SECRET}) as r,
    ):
        return r.status


async def journey(user: TgUser, phone: str, name: str, targets: list[str]) -> None:
    """Sign up and fill a registration; then confirm and type in bursts, not waiting."""
    await user.command("/start")
    await user.wait_for("0912 345 678", timeout=30)
    await user.share_contact("+84" + phone[1:])
    await user.wait_for(name, timeout=20)
    await user.press("là tôi", timeout=20)
    await user.press("Đăng ký danh hiệu", timeout=20)
    await user.press("Lao động tiên tiến", timeout=20)
    await user.wait_for("cam kết", timeout=20)
    await user.send(f"Cam kết của {name}")
    await user.wait_for(f"Cam kết của {name}", timeout=20)

    await asyncio.gather(*(user.press("Xác nhận") for _ in range(PRESSES)))
    # The first press again, delivered to both processes at once (a re-send after a timeout).
    presses = [u for u in user.server.pushed if _chat_of(u) == user.user_id]
    first_press = presses[-PRESSES]
    assert "callback_query" in first_press
    statuses = await asyncio.gather(*(post(url, first_press) for url in targets))
    assert statuses == [200] * len(targets)
    await said(user, "TD2027-", 1)

    await asyncio.gather(*(user.send(f"chữ lạ {i}") for i in range(TYPED)))
    await said(user, NOT_FIT_VI, TYPED)


async def said(user: TgUser, text: str, times: int, within: float = 30.0) -> None:
    """Wait until ``times`` bot messages in the chat contain ``text``."""
    deadline = asyncio.get_running_loop().time() + patience(within)
    while sum(text in (m.text or "") for m in user.server.messages(user.chat_id)) < times:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{text!r} not said {times} times:\n{user.transcript()}")
        await asyncio.sleep(0.05)


async def test_two_processes_one_database_one_consistent_state(
    db_url: str, backend: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    if backend != "postgresql":
        pytest.skip("several processes share a database only on PostgreSQL")
    org = await make_org(sessionmaker)
    await add_members(sessionmaker, org)
    a_web, a_hook, b_web = free_port(), free_port(), free_port()
    a_url = f"http://127.0.0.1:{a_hook}/telegram/hook"  # its own THIDUA_WEBHOOK_PORT
    b_url = f"http://127.0.0.1:{b_web}/telegram/hook"  # on the web chat's port
    async with FakeBotAPI() as api, AsyncExitStack() as stack:
        api.webhook_in_chat_order = False
        api.webhook_targets = [a_url, b_url]
        procs = [
            await stack.enter_async_context(
                bot_process(
                    api, db_url, THIDUA_WEB_PORT=str(a_web), THIDUA_WEBHOOK_PORT=str(a_hook)
                )
            ),
            await stack.enter_async_context(bot_process(api, db_url, THIDUA_WEB_PORT=str(b_web))),
        ]
        await asyncio.gather(wait_until_listening(a_url), wait_until_listening(b_url))
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{a_web}/") as r:
            assert r.status == 200  # A's web chat still on its own port

        users = [TgUser(api, 8100 + i, name.split()[-1]) for i, (name, _p) in enumerate(PEOPLE)]
        await asyncio.gather(
            *(
                journey(user, phone, name, [a_url, b_url])
                for user, (name, phone) in zip(users, PEOPLE, strict=True)
            )
        )
        await api.wait_delivered(timeout=30)
        await asyncio.sleep(1.0)  # anything doubled would arrive by now
    assert [p.returncode for p in procs] == [0, 0]  # SIGTERM: a clean stop

    # Each person's updates were taken by both processes.
    chat_of_update = {int(u["update_id"]): _chat_of(u) for u in api.pushed}
    for user in users:
        taken_by = {
            d.target
            for d in api.deliveries
            if d.status == 200 and chat_of_update[d.update_id] == user.user_id
        }
        assert taken_by == {a_url, b_url}

    async with sessionmaker() as session:
        registrations = list(await session.scalars(select(Registration)))
        conversations = {
            identity.external_id: conv
            for identity, conv in (
                await session.execute(
                    select(ChannelIdentity, Conversation).join(
                        Conversation, Conversation.identity_id == ChannelIdentity.id
                    )
                )
            ).all()
        }
    # One registration per person, receipt numbers unique.
    assert len(registrations) == len(PEOPLE)
    assert len({r.person_id for r in registrations}) == len(PEOPLE)
    receipts = {r.receipt_no for r in registrations}
    assert len(receipts) == len(PEOPLE)

    for user in users:
        chat = user.user_id
        answers = [m.text or "" for m in api.messages(chat)]
        mine = [u for u in api.pushed if _chat_of(u) == chat]
        # Every update the person made was committed exactly once: one version step each.
        conv = conversations[str(chat)]
        assert conv.version == len(mine), (conv.version, len(mine))
        assert len(set(conv.data["seen"])) == len(mine)
        # No answer lost, none doubled: one receipt, the other presses told they are stale,
        # every typed message answered.
        receipt_msgs = [t for t in answers if any(r in t for r in receipts)]
        assert len(receipt_msgs) == 1, user.transcript()
        assert sum(STALE_VI in t for t in answers) == PRESSES - 1, user.transcript()
        assert sum(NOT_FIT_VI in t for t in answers) == TYPED, user.transcript()


def _chat_of(update: dict[str, Any]) -> int:
    if "message" in update:
        return int(update["message"]["chat"]["id"])
    return int(update["callback_query"]["from"]["id"])
