"""Telegram by webhook: the secret, taking an update exactly once, and the API misbehaving.

Real HTTP both ways: the local fake Bot API POSTs updates to the channel's webhook route (and
re-sends them until a 2xx answers, as Telegram does), and the channel calls the fake back.
"Two processes" here are two channels with engines of their own on one database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiogram.exceptions import TelegramBadRequest
from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.telegram import (
    REPLY_GRACE,
    TAKE_WITHIN,
    WEBHOOK_SECRET_HEADER,
    TelegramChannel,
)
from bot.config import Settings
from handlers.engine.flow import EngineConfig
from handlers.flows import build_engine
from storage.db import make_engine, make_sessionmaker
from storage.models import ChannelIdentity, Conversation, Registration
from tests.conftest import PG_ADMIN_URL
from tests.factories import Org, make_org
from tests.fakes import DEFAULT_TOKEN, FakeBotAPI, TgUser
from tests.waiting import patience

JAN_10 = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)  # 09:00 in Hà Nội, before the deadline
PUBLIC_URL = "https://bot.example.org/telegram/hook"
SECRET = "s3cret_Token-for-tests"
PHONE_HINT = "0912 345 678"  # in the first question to a newcomer
BUSY_VI = "Hệ thống đang bận"


@dataclass
class Hooked:
    """One "process": a channel in webhook mode with its own engine and web server."""

    channel: TelegramChannel
    url: str  # where its route really listens


@asynccontextmanager
async def webhook_bot(
    api: FakeBotAPI,
    db_url: str,
    *,
    take_within: float = TAKE_WITHIN,
    reply_grace: float = REPLY_GRACE,
    request_timeout: float = 60.0,
    public_url: str = PUBLIC_URL,
    target: bool = True,
    before_run: Callable[[], None] | None = None,
) -> AsyncIterator[Hooked]:
    """A channel answering its webhook on a free local port; ``target``: the fake sends there."""
    db = make_engine(db_url)
    engine = build_engine(make_sessionmaker(db), EngineConfig(now=lambda: JAN_10))
    channel = TelegramChannel(
        engine,
        DEFAULT_TOKEN,
        api.base_url,
        webhook_url=public_url,
        webhook_secret=SECRET,
        take_within=take_within,
        reply_grace=reply_grace,
        request_timeout=request_timeout,
    )
    app = web.Application()
    app.add_routes(channel.webhook_routes(channel.webhook_path))
    runner = web.AppRunner(app, shutdown_timeout=2.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = int(runner.addresses[0][1])
    hooked = Hooked(channel, f"http://127.0.0.1:{port}{channel.webhook_path}")
    if target:
        api.webhook_targets = [*(api.webhook_targets or []), hooked.url]
    await channel.start()
    if before_run is not None:
        before_run()
    receiving = asyncio.create_task(channel.run())
    try:
        yield hooked
    finally:
        if api.webhook_targets and hooked.url in api.webhook_targets:
            api.webhook_targets.remove(hooked.url)
        await runner.cleanup()
        await channel.stop()
        await asyncio.wait_for(receiving, patience(10))
        await db.dispose()


async def until(predicate: Any, within: float = 10.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + patience(within)
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {within}s for {what}")
        await asyncio.sleep(0.02)


async def post_update(
    url: str, update: dict[str, Any], secret: str | None = SECRET
) -> tuple[int, dict[str, Any]]:
    headers = {WEBHOOK_SECRET_HEADER: secret} if secret is not None else {}
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=json.dumps(update), headers=headers) as response,
    ):
        return response.status, await response.json()


def text_update(update_id: int, user_id: int, message_id: int, text: str) -> dict[str, Any]:
    user = {"id": user_id, "is_bot": False, "first_name": f"U{user_id}", "language_code": "vi"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private"},
            "from": user,
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}]
            if text.startswith("/start")
            else [],
        },
    }


def texts(api: FakeBotAPI, chat_id: int) -> list[str]:
    return [m.text or "" for m in api.messages(chat_id)]


@pytest.fixture
async def org(sessionmaker: async_sessionmaker[AsyncSession]) -> Org:
    return await make_org(sessionmaker)


# --- settings --------------------------------------------------------------------------------


def test_webhook_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TELEGRAM_WEBHOOK_URL", "TELEGRAM_WEBHOOK_SECRET", "THIDUA_WEBHOOK_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert Settings(_env_file=None).telegram_webhook is None  # type: ignore[call-arg]

    monkeypatch.setenv("TELEGRAM_WEBHOOK_URL", PUBLIC_URL)
    with pytest.raises(ValueError, match="TELEGRAM_WEBHOOK_SECRET is required"):
        Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "has spaces and ünicode")
    with pytest.raises(ValueError, match="1-256 characters") as bad:
        Settings(_env_file=None)  # type: ignore[call-arg]
    assert "ünicode" not in str(bad.value)  # a secret never shows in the error
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("THIDUA_WEB_HOST", "127.0.0.1")
    monkeypatch.setenv("THIDUA_WEB_PORT", "8080")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.telegram_webhook == (PUBLIC_URL, SECRET)
    assert settings.webhook_address == ("127.0.0.1", 8080)  # the web chat's server
    monkeypatch.setenv("THIDUA_WEBHOOK_PORT", "8443")
    assert Settings(_env_file=None).webhook_address == ("127.0.0.1", 8443)  # type: ignore[call-arg]
    monkeypatch.setenv("TELEGRAM_WEBHOOK_URL", "bot.example.org/hook")
    with pytest.raises(ValueError, match="full URL"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_a_webhook_without_a_proper_secret_is_refused() -> None:
    engine = build_engine(async_sessionmaker(), EngineConfig())  # never used: no database
    for secret in (None, "", "white space", "x" * 257):
        with pytest.raises(ValueError, match="TELEGRAM_WEBHOOK_SECRET"):
            TelegramChannel(
                engine,
                DEFAULT_TOKEN,
                "http://127.0.0.1:1",
                webhook_url=PUBLIC_URL,
                webhook_secret=secret,
            )


# --- the journey and the secret -------------------------------------------------------------


async def test_member_registers_by_webhook(
    org: Org, db_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with FakeBotAPI() as api, webhook_bot(api, db_url):
        await until(lambda: api.webhook_url is not None, what="setWebhook")
        user = TgUser(api, 7001, "Hoa")
        await user.command("/start")
        await user.wait_for(PHONE_HINT)
        await user.share_contact("+84912345678")
        await user.wait_for("Nguyễn Thị Hoa")
        await user.press("là tôi")
        await user.press("Đăng ký danh hiệu")
        await user.press("Lao động tiên tiến")
        await user.wait_for("cam kết")
        await user.send("Hoàn thành 110% kế hoạch năm")
        await user.wait_for("Hoàn thành 110% kế hoạch năm")
        await user.press("Xác nhận")
        await user.wait_for("TD2027-000001")
        await api.wait_delivered()

    (registration,) = api.calls_of("setWebhook")
    assert registration.params["url"] == PUBLIC_URL
    assert registration.params["secret_token"] == SECRET
    assert registration.params["allowed_updates"] == ["message", "callback_query"]
    assert str(registration.params["drop_pending_updates"]).lower() == "false"
    assert not api.calls_of("getUpdates")
    assert not api.calls_of("deleteWebhook")  # stopping leaves it for the other processes
    assert {d.status for d in api.deliveries} == {200}
    async with sessionmaker() as session:
        count = await session.scalar(select(func.count()).select_from(Registration))
    assert count == 1


async def test_a_wrong_or_missing_secret_is_refused_and_nothing_happens(
    org: Org, db_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with FakeBotAPI() as api, webhook_bot(api, db_url, target=False) as bot:
        update = text_update(1, 7002, 1, "/start")
        for secret in (None, "", "wrong", SECRET + "x", SECRET[:-1]):
            status, _body = await post_update(bot.url, update, secret)
            assert status == 401
        async with (
            aiohttp.ClientSession() as http,
            http.post(bot.url, data="{not json", headers={WEBHOOK_SECRET_HEADER: SECRET}) as r,
        ):
            assert r.status == 400
        assert api.messages(7002) == []
        async with sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(ChannelIdentity)) == 0

        status, body = await post_update(bot.url, update)
        assert (status, body) == (200, {"ok": True})
        assert PHONE_HINT in " ".join(texts(api, 7002))  # answered before the 200


async def test_updates_not_for_the_bot_are_acknowledged(org: Org, db_url: str) -> None:
    """A group message or an update aiogram cannot read is taken (200): re-sending it would
    only hold up the chat's later updates."""
    async with FakeBotAPI() as api, webhook_bot(api, db_url, target=False) as bot:
        group = text_update(1, 7003, 1, "hello")
        group["message"]["chat"] = {"id": -100, "type": "group", "title": "Tổ may"}
        assert (await post_update(bot.url, group))[0] == 200
        assert (await post_update(bot.url, {"update_id": 2, "message": {"x": 1}}))[0] == 200
        assert (await post_update(bot.url, {"update_id": 3, "poll": {"id": "p"}}))[0] == 200
        assert api.all_messages() == []


async def test_a_malformed_update_is_logged_without_the_persons_text(
    org: Org, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 12: the log of an unreadable update held the tail of the person's message."""
    secret_words = "nhà tôi ở số 12 ngõ Hoa Sữa, mật khẩu ngân hàng 778899"
    async with FakeBotAPI() as api, webhook_bot(api, db_url, target=False) as bot:
        broken = text_update(40, 7004, 1, secret_words)
        del broken["message"]["chat"]  # pydantic would quote the message, text and all
        with caplog.at_level("INFO"):
            assert (await post_update(bot.url, broken))[0] == 200
            async with (
                aiohttp.ClientSession() as http,
                http.post(
                    bot.url,
                    data=b'{"update_id": 41, "x": ' + b"[" * 8000 + b"]" * 8000 + b"}",
                    headers={WEBHOOK_SECRET_HEADER: SECRET},
                ) as response,
            ):
                assert response.status == 400  # not a 500 with a traceback
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "update 40 dropped" in logged and "message.chat" in logged
    assert "778899" not in logged and "Hoa Sữa" not in logged


# --- exactly once ---------------------------------------------------------------------------


async def test_the_same_update_at_two_processes_at_once_is_answered_once(
    org: Org,
    db_url: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Telegram re-sends an update it thinks was lost; behind a load balancer the copies can
    reach two processes at the same moment. Newcomers too: their identity is created once."""
    caplog.set_level(logging.DEBUG, logger="handlers.engine.runner")
    async with (
        FakeBotAPI() as api,
        webhook_bot(api, db_url, target=False) as first,
        webhook_bot(api, db_url, target=False) as second,
    ):
        people = range(7100, 7110)
        for round_ in range(2):  # a newcomer's /start, then a typed answer
            sends = []
            for i, user_id in enumerate(people):
                text = "/start" if round_ == 0 else "0987 000 111"
                update = text_update(1000 * round_ + i, user_id, 10 + round_, text)
                sends += [post_update(first.url, update), post_update(second.url, update)]
            statuses = [status for status, _body in await asyncio.gather(*sends)]
            assert statuses == [200] * len(sends)

    for user_id in people:
        answers = texts(api, user_id)
        assert sum(PHONE_HINT in t for t in answers) == 1, answers  # /start answered once
        assert len(answers) == 2, answers  # and the phone number once
    async with sessionmaker() as session:
        identities = await session.scalar(select(func.count()).select_from(ChannelIdentity))
        conversations = list(await session.scalars(select(Conversation)))
    assert identities == len(people)
    assert {c.version for c in conversations} == {2}  # two updates each, each committed once
    assert all(len(c.data["seen"]) == 2 for c in conversations)
    # The copies really met: some lost the race to commit and were redone as duplicates.
    assert any("lost a race" in r.getMessage() for r in caplog.records)


async def test_a_slow_answer_is_sent_again_and_still_answered_once(org: Org, db_url: str) -> None:
    """Telegram gave up waiting for the answer and sends the update again, while the first
    copy is still being answered: the copy is taken at once, and nothing is said twice."""
    async with FakeBotAPI(latency=0.4) as api, webhook_bot(api, db_url):
        await until(lambda: api.webhook_url is not None, what="setWebhook")
        api.webhook_timeout = 0.3
        user = TgUser(api, 7004, "Lan")
        await user.command("/start")
        await user.wait_for(PHONE_HINT)
        await api.wait_delivered()
        await asyncio.sleep(1.0)  # anything doubled would have arrived by now
    statuses = [d.status for d in api.deliveries]
    assert statuses[0] is None and statuses[-1] == 200  # timed out, then taken
    assert len(api.messages(7004)) == 1


# --- shutdown and database trouble: not taken, so sent again ----------------------------------


async def test_during_shutdown_updates_are_refused_and_taken_after_the_restart(
    org: Org, db_url: str
) -> None:
    async with FakeBotAPI() as api:
        async with webhook_bot(api, db_url, target=False) as old:
            await old.channel.stop()  # what SIGTERM does first
            status, _body = await post_update(old.url, text_update(1, 7005, 1, "/start"))
            assert status == 503
        assert api.messages(7005) == []
        async with webhook_bot(api, db_url) as new:
            # Telegram sends the refused update again, to the restarted process.
            status, _body = await post_update(new.url, text_update(1, 7005, 1, "/start"))
            assert status == 200
        assert PHONE_HINT in " ".join(texts(api, 7005))


def _database_name(db_url: str) -> str:
    return db_url.rsplit("/", 1)[1]


async def _allow_connections(db_url: str, allowed: bool) -> None:
    admin = await asyncpg.connect(PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://"))
    name = _database_name(db_url)
    try:
        await admin.execute(
            f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {"true" if allowed else "false"}'
        )
        if not allowed:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
    finally:
        await admin.close()


async def test_database_down_the_webhook_answers_503_until_it_is_back(
    org: Org, db_url: str, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("a database server to stop is PostgreSQL's")
    async with FakeBotAPI() as api, webhook_bot(api, db_url, take_within=1.0):
        await until(lambda: api.webhook_url is not None, what="setWebhook")
        user = TgUser(api, 7006, "Mai")
        await _allow_connections(db_url, False)
        try:
            await user.command("/start")
            busy = await user.wait_for(BUSY_VI)  # told once, at once
            await until(
                lambda: sum(d.status == 503 for d in api.deliveries) >= 2,
                what="two deliveries refused with 503",
            )
        finally:
            await _allow_connections(db_url, True)
        await user.wait_for(PHONE_HINT, timeout=20)  # the re-sent update, answered
        await api.wait_delivered()
    answers = texts(api, 7006)
    assert sum(BUSY_VI in t for t in answers) == 1, answers  # not once per re-send
    assert sum(PHONE_HINT in t for t in answers) == 1, answers
    assert busy
    assert api.deliveries[-1].status == 200


# --- the API misbehaving ----------------------------------------------------------------------


async def test_server_errors_on_sends_are_retried_and_every_update_answered(
    org: Org, db_url: str
) -> None:
    async with FakeBotAPI() as api, webhook_bot(api, db_url):
        await until(lambda: api.webhook_url is not None, what="setWebhook")
        user = TgUser(api, 7007, "Nam")
        api.fail_next(3, 502)
        await user.command("/start")
        await user.wait_for(PHONE_HINT, timeout=20)
        api.fail_next(2, 502, json_body=False)  # a proxy's HTML error page
        await user.send("0987 000 222")
        await user.wait_for("mã cá nhân", timeout=20)
        await api.wait_delivered()
    assert api.statuses[502] == 5
    assert {d.status for d in api.deliveries} == {200}


async def test_a_429_storm_is_waited_out_and_nobody_is_left_unanswered(
    org: Org, db_url: str
) -> None:
    async with FakeBotAPI(rate_limit=3) as api, webhook_bot(api, db_url):
        await until(lambda: api.webhook_url is not None, what="setWebhook")
        people = [TgUser(api, 7200 + i, f"P{i}") for i in range(12)]
        await asyncio.gather(*(p.command("/start") for p in people))
        await asyncio.gather(*(p.wait_for(PHONE_HINT, timeout=60) for p in people))
        await api.wait_delivered(timeout=30)
    assert api.statuses[429] > 0
    for person in people:
        assert len(api.messages(person.user_id)) == 1


async def test_timeouts_of_the_api_are_retried(org: Org, db_url: str) -> None:
    async with FakeBotAPI() as api, webhook_bot(api, db_url, request_timeout=0.5):
        await until(lambda: api.webhook_url is not None, what="setWebhook")
        api.stall_next(2, 1.5)
        user = TgUser(api, 7008, "Đào")
        await user.command("/start")
        await user.wait_for(PHONE_HINT, timeout=20)
    assert len(api.messages(7008)) == 1


async def test_set_webhook_is_retried_until_the_api_answers(org: Org, db_url: str) -> None:
    api = FakeBotAPI()
    async with (
        api,
        webhook_bot(api, db_url, before_run=lambda: api.fail_next(3, 502, method="setWebhook")),
    ):
        await until(lambda: api.webhook_url is not None, within=30, what="setWebhook")
        user = TgUser(api, 7009, "Hà")
        await user.command("/start")
        await user.wait_for(PHONE_HINT)
    assert [c.status for c in api.calls_of("setWebhook")] == [502, 502, 502, 200]


async def test_a_rejected_webhook_url_stops_the_channel(org: Org, db_url: str) -> None:
    async with FakeBotAPI() as api:
        db = make_engine(db_url)
        engine = build_engine(make_sessionmaker(db), EngineConfig())
        channel = TelegramChannel(
            engine,
            DEFAULT_TOKEN,
            api.base_url,
            webhook_url="http://insecure",
            webhook_secret=SECRET,
        )
        try:
            with pytest.raises(TelegramBadRequest, match="HTTPS"):
                await asyncio.wait_for(channel.run(), patience(10))
        finally:
            await channel.stop()
            await db.dispose()


async def test_polling_survives_get_updates_failures(
    org: Org, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    engine = build_engine(sessionmaker, EngineConfig(now=lambda: JAN_10))
    async with FakeBotAPI() as api:
        channel = TelegramChannel(engine, DEFAULT_TOKEN, api.base_url, polling_timeout=1)
        await channel.start()
        api.fail_polls(3, 502)
        polling = asyncio.create_task(channel.run())
        try:
            user = TgUser(api, 7010, "Tú")
            await user.command("/start")
            await user.wait_for(PHONE_HINT, timeout=30)
            await user.send("0987 000 333")
            await user.wait_for("mã cá nhân")
        finally:
            await channel.stop()
            await asyncio.wait_for(polling, patience(10))
    assert api.statuses[502] == 3
    assert len(api.messages(7010)) == 2
