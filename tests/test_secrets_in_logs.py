"""Tokens never appear in the logs: `thidua run` at DEBUG, every channel with its secrets.

The bot runs as deployed (a process, settings from the environment) against the local fake
Telegram, Zalo Bot and Zalo OA platforms; people chat on each, the platforms fail now and
then, the OA token pair is refreshed. Everything the process writes is then searched for
every secret it was given or got. aiogram puts the token in every request URL, Zalo's bot API
too; a log line quoting a URL or an HTTP error would leak it.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import sys
from pathlib import Path

from bot.config import Settings
from bot.logsafe import protect_logs
from storage.db import make_engine, make_sessionmaker
from storage.seed import prepare_database
from tests.factories import make_org
from tests.fakes import DEFAULT_TOKEN, FakeBotAPI, TgUser
from tests.fakes.zalo_bot import DEFAULT_ZALO_TOKEN, FakeZaloBotAPI, ZaloUser
from tests.fakes.zalo_oa import APP_ID, OA_SECRET, FakeZaloOA, OAUser
from tests.test_e2e_process import free_port, wait_for_page
from tests.waiting import patience

OA_ACCESS = "oa-access-7f3c9e21d4b8a6f0"
OA_REFRESH = "oa-refresh-0b9d8c7e6f5a4b3c"


async def test_no_token_or_secret_reaches_the_logs_at_debug_level(
    sqlite_url: str, tmp_path: Path
) -> None:
    port = free_port()
    log_file = tmp_path / "bot.log"
    async with (
        FakeBotAPI() as telegram,
        FakeZaloBotAPI() as zalo,
        FakeZaloOA(access_token=OA_ACCESS, refresh_token=OA_REFRESH) as oa,
    ):
        db = make_engine(sqlite_url)
        try:
            await prepare_database(db)
            await make_org(make_sessionmaker(db))
        finally:
            await db.dispose()
        oa.webhook_url = f"http://127.0.0.1:{port}/zalo-oa/webhook"
        env = {
            **os.environ,
            "DATABASE_URL": sqlite_url,
            "THIDUA_LOG_LEVEL": "DEBUG",
            "THIDUA_WEB_PORT": str(port),
            "TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN,
            "TELEGRAM_API_BASE": telegram.base_url,
            "ZALO_BOT_TOKEN": DEFAULT_ZALO_TOKEN,
            "ZALO_API_BASE": zalo.base_url,
            "ZALO_OA_APP_ID": APP_ID,
            "ZALO_OA_SECRET": OA_SECRET,
            "ZALO_OA_ACCESS_TOKEN": OA_ACCESS,
            "ZALO_OA_REFRESH_TOKEN": OA_REFRESH,
            "ZALO_OA_API_BASE": oa.base_url,
            "ZALO_OA_OAUTH_BASE": oa.base_url,
            # Python's own warnings and asyncio's debug mode log too.
            "PYTHONASYNCIODEBUG": "1",
            "PYTHONWARNINGS": "default",
        }
        with log_file.open("wb") as sink:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "run",
                env=env,
                cwd=tmp_path,  # no .env of the project
                stdin=asyncio.subprocess.DEVNULL,
                stdout=sink,
                stderr=sink,
            )
            try:
                await wait_for_page(f"http://127.0.0.1:{port}/")
                hoa = TgUser(telegram, 7001, "Hoa")
                await hoa.command("/start")
                await hoa.wait_for("0912 345 678", timeout=30)
                telegram.fail_next(2, 502)  # the next calls fail: retried, and logged
                await hoa.share_contact("+84912345678")
                await hoa.wait_for("Nguyễn Thị Hoa", timeout=30)

                binh = ZaloUser(zalo, "e4ea2cd5189df1c3a88c")
                await binh.say("xin chào", "0912 345 678", timeout=30)

                oa.expire_access_token()  # the next send refreshes the token pair
                follower = OAUser(oa, "246845883529197922")
                await follower.send("xin chào")
                await follower.wait_for("0912 345 678", timeout=30)
                assert oa.refresh_calls, "the OA token pair was not refreshed"
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), patience(20))
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
        refreshed = (oa.access_token, oa.refresh_token)

    logged = log_file.read_text(encoding="utf-8", errors="replace")
    # It did log, verbosely, the Telegram channel too.
    assert "DEBUG" in logged and "bot.channels.telegram" in logged, logged[-2000:]
    secrets = {
        "telegram token": DEFAULT_TOKEN,
        "telegram token's secret part": DEFAULT_TOKEN.split(":", 1)[1],
        "zalo bot token": DEFAULT_ZALO_TOKEN,
        "zalo bot token's secret part": DEFAULT_ZALO_TOKEN.split(":", 1)[1],
        "OA secret": OA_SECRET,
        "OA access token": OA_ACCESS,
        "OA refresh token": OA_REFRESH,
        "refreshed OA access token": refreshed[0],
        "refreshed OA refresh token": refreshed[1],
    }
    leaks = {what: _line_with(logged, value) for what, value in secrets.items() if value in logged}
    assert not leaks, leaks


def _line_with(text: str, value: str) -> str:
    return next(line for line in text.splitlines() if value in line)[:300]


def test_the_filter_masks_secrets_and_token_shapes_in_messages_and_tracebacks() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        TELEGRAM_BOT_TOKEN=DEFAULT_TOKEN,
        ZALO_OA_SECRET=OA_SECRET,
    )
    stream = io.StringIO()
    root = logging.getLogger(f"test-logsafe-{id(stream)}")
    root.propagate = False
    root.setLevel(logging.DEBUG)
    root.addHandler(logging.StreamHandler(stream))
    protect_logs(settings, root)

    root.debug("POST %s/bot%s/sendMessage", "http://127.0.0.1:1", DEFAULT_TOKEN)
    root.info("secret part alone: %s", DEFAULT_TOKEN.split(":", 1)[1])
    root.info("saved %s", {"access_token": "runtime-access-77", "refresh_token": "runtime-r-88"})
    root.info('body {"refresh_token": "runtime-r-99", "app_id": "1"} and access_token=abc123xyz')
    root.warning("mac uses %s", OA_SECRET)
    try:
        raise RuntimeError(f"Cannot connect to http://x/bot{DEFAULT_TOKEN}/getUpdates")
    except RuntimeError:
        root.exception("polling failed")
    text = stream.getvalue()
    for secret in (
        DEFAULT_TOKEN,
        DEFAULT_TOKEN.split(":", 1)[1],
        "runtime-access-77",
        "runtime-r-88",
        "runtime-r-99",
        "abc123xyz",
        OA_SECRET,
    ):
        assert secret not in text, secret
    assert text.count("***") >= 7
    assert "sendMessage" in text and "polling failed" in text  # the rest of the line stays
    assert logging.getLogger("aiosqlite").getEffectiveLevel() >= logging.INFO
