"""`thidua run` as a real process against the local Bot API: killed mid-flow, it resumes.

This is the bot as deployed: the console script, settings from the environment, aiogram
polling over HTTP, the database on disk. Only Telegram is the local fake.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import Registration
from tests.factories import Org, make_org
from tests.fakes import DEFAULT_TOKEN, FakeBotAPI, TgUser
from tests.waiting import patience


@asynccontextmanager
async def bot_process(api: FakeBotAPI, db_url: str) -> AsyncIterator[asyncio.subprocess.Process]:
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN,
        "TELEGRAM_API_BASE": api.base_url,
        "DATABASE_URL": db_url,
        "THIDUA_LOG_LEVEL": "WARNING",
        # Its probes (/healthz …) on any free port: tests run side by side.
        "THIDUA_WEB_PORT": "0",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", env=env, stdin=asyncio.subprocess.DEVNULL
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), patience(20))
            except TimeoutError:
                proc.kill()
                await proc.wait()


@pytest.fixture
async def org(sessionmaker: async_sessionmaker[AsyncSession]) -> Org:
    return await make_org(sessionmaker)


async def test_killed_mid_flow_the_bot_resumes_at_the_same_question(
    org: Org, db_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with FakeBotAPI() as api:
        user = TgUser(api, 6001, "Hoa")
        async with bot_process(api, db_url) as first:
            await user.command("/start")
            await user.wait_for("0912 345 678", timeout=30)
            await user.share_contact("+84912345678")
            await user.wait_for("Nguyễn Thị Hoa")
            await user.press("là tôi")
            await user.press("Đăng ký danh hiệu")
            await user.press("Lao động tiên tiến")
            await user.wait_for("cam kết")
            first.kill()  # kill -9: no shutdown, no goodbye
            await first.wait()

        async with bot_process(api, db_url):
            await user.send("Hoàn thành 110% kế hoạch năm")
            summary = await user.wait_for("Hoàn thành 110% kế hoạch năm", timeout=30)
            assert "Lao động tiên tiến" in summary  # the title chosen before the kill is kept
            await user.press("Xác nhận")
            await user.wait_for("TD2027-000001")

    async with sessionmaker() as session:
        regs = list(await session.scalars(select(Registration)))
    assert [(r.title_code, r.commitment) for r in regs] == [
        ("LDTT", "Hoàn thành 110% kế hoạch năm")
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for_page(url: str, within: float = 30.0) -> str:
    deadline = asyncio.get_running_loop().time() + patience(within)
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url) as response:
                    return await response.text()
            except aiohttp.ClientConnectionError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.3)


@pytest.mark.parametrize("command", ["run", "demo"])
async def test_without_a_token_the_web_chat_is_served(command: str, sqlite_url: str) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": sqlite_url,
        "THIDUA_WEB_PORT": str(port),
        "THIDUA_LOG_LEVEL": "WARNING",
    }
    env.pop("TELEGRAM_BOT_TOKEN", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        command,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        page = await wait_for_page(f"http://127.0.0.1:{port}/")
        assert "<html" in page and 'lang="vi"' in page
        if command == "demo":
            assert "Nguyễn Thị Hoa" in page  # the demo's role picker
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), patience(20))
    out = (await proc.stdout.read()).decode() if proc.stdout else ""
    assert code == 0
    assert f"http://127.0.0.1:{port}/" in out
