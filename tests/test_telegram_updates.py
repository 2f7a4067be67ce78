"""Telegram updates read as JSON (bot/channels/telegram_updates.py), polled and by webhook.

Updates of the shapes Telegram sends and aiogram's models accepted, which the bot must take
(a press on a message too old to be shown, date 0) or leave alone (a bot's message, a group,
an edited message, a kind the bot never asked for), and updates it cannot read: each against
the local fake Bot API, the channel receiving as in production.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.telegram import WEBHOOK_SECRET_HEADER, TelegramChannel
from bot.channels.telegram_updates import (
    MessageUpdate,
    PressUpdate,
    UnreadableUpdate,
    read_update,
)
from handlers.engine.flow import EngineConfig
from handlers.engine.prompt import IncomingFile
from handlers.engine.runner import Engine
from tests.fakes import DEFAULT_TOKEN, FakeBotAPI, SentMessage, TgUser
from tests.test_telegram_channel import HOME_TEXT, build_flows, start_command
from tests.waiting import patience

PUBLIC_URL = "https://bot.example.org/telegram/hook"
SECRET = "s3cret_Token-for-tests"
GROUP_CHAT = -100_123
PRIVATE_WORDS = "số nhà 12 ngõ Hoa Sữa, mật khẩu 778899"
# Update ids of the updates a test POSTs to the webhook itself, apart from the fake's own.
POSTED_IDS = itertools.count(900_000)


@dataclass
class Bot:
    server: FakeBotAPI
    channel: TelegramChannel
    receiving: asyncio.Task[None]
    url: str = ""  # the webhook route, in webhook mode

    async def stop(self) -> None:
        """Stop receiving; every update taken in hand has been handled when this returns."""
        await self.channel.stop()
        await asyncio.wait_for(self.receiving, patience(10))


@pytest.fixture(params=["polling", "webhook"])
async def bot(
    request: pytest.FixtureRequest, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Bot]:
    engine = Engine(sessionmaker, build_flows(), {"start": start_command}, EngineConfig())
    async with FakeBotAPI() as server:
        if request.param == "polling":
            channel = TelegramChannel(engine, DEFAULT_TOKEN, server.base_url, polling_timeout=5)
            await channel.start()
            running = Bot(server, channel, asyncio.create_task(channel.run()))
            try:
                yield running
            finally:
                await running.stop()
            return
        channel = TelegramChannel(
            engine,
            DEFAULT_TOKEN,
            server.base_url,
            webhook_url=PUBLIC_URL,
            webhook_secret=SECRET,
        )
        app = web.Application()
        app.add_routes(channel.webhook_routes(channel.webhook_path))
        runner = web.AppRunner(app, shutdown_timeout=2.0)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}{channel.webhook_path}"
        server.webhook_targets = [url]
        await channel.start()
        running = Bot(server, channel, asyncio.create_task(channel.run()), url)
        try:
            # Updates pushed before the webhook is set go to it once it is (as Telegram's).
            yield running
        finally:
            await runner.cleanup()
            await running.stop()


def sender(user_id: int, *, is_bot: bool = False) -> dict[str, Any]:
    return {"id": user_id, "is_bot": is_bot, "first_name": f"U{user_id}", "language_code": "vi"}


def message(user_id: int, text: str, *, chat: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "message_id": 10_000 + user_id,
        "date": int(time.time()),
        "chat": chat or {"id": user_id, "type": "private"},
        "from": sender(user_id),
        "text": text,
    }


async def post(url: str, body: Any) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=json.dumps(body), headers={WEBHOOK_SECRET_HEADER: SECRET}) as answer,
    ):
        return answer.status


async def deliver(bot: Bot, kind: str, payload: dict[str, Any], chat_id: int) -> int:
    """Hand the bot an update as Telegram would: in a getUpdates answer, or POSTed to the
    webhook (by the test itself: the fake would not route a broken one, nor keep a kind the
    bot did not ask for). Returns its update_id."""
    if not bot.url:
        return await bot.server.push_update(kind, payload, chat_id=chat_id, note=kind)
    update_id = next(POSTED_IDS)
    # 200: taken, or nothing to take; anything else would have Telegram send it forever.
    assert await post(bot.url, {"update_id": update_id, kind: payload}) == 200
    return update_id


async def home(user: TgUser) -> SentMessage:
    await user.command("/start")
    return await user.wait_message(HOME_TEXT)


async def handled(bot: Bot) -> None:
    """Everything pushed so far has been taken and handled (the channel is stopped)."""
    if bot.url:
        await bot.server.wait_delivered()
    await bot.stop()


def channel_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("bot.channels") and r.levelno >= logging.ERROR
    ]


async def test_updates_not_for_the_bot_are_left_alone(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    """A bot's message, a group message, an edited message and kinds of update the bot never
    asked for get no answer and hold up nothing; the person's own /start is answered once."""
    api = bot.server
    person = TgUser(api, 6002, "Hà")
    from_bot = message(6001, "/start")
    from_bot["from"] = sender(6001, is_bot=True)
    group = message(6002, "/start", chat={"id": GROUP_CHAT, "type": "group", "title": "Tổ"})
    no_sender = message(6002, "/start", chat={"id": GROUP_CHAT, "type": "group", "title": "Tổ"})
    del no_sender["from"]  # an anonymous group admin writes as the group
    with caplog.at_level(logging.DEBUG, logger="bot.channels"):
        await deliver(bot, "message", from_bot, 6001)
        await deliver(bot, "message", group, GROUP_CHAT)
        await deliver(bot, "message", no_sender, GROUP_CHAT)
        await deliver(bot, "edited_message", message(6002, "/start"), 6002)
        await deliver(bot, "message_reaction", {"chat": {"id": 6002, "type": "private"}}, 6002)
        await deliver(bot, "channel_post", group, GROUP_CHAT)
        await home(person)
        await handled(bot)
    assert api.messages(6001) == [] and api.messages(GROUP_CHAT) == []
    assert [m.text for m in api.messages(6002)] == [HOME_TEXT]
    assert channel_errors(caplog) == []
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "ignoring a Telegram edited_message update" in logged
    assert "ignoring a Telegram message_reaction update" in logged
    if not bot.url:
        # Polled: all of them are confirmed, so a restart does not receive them again.
        last = api.calls_of("getUpdates")[-1].params
        assert int(last["offset"]) == len(api.pushed) + 1


async def test_a_press_on_a_message_too_old_to_show_is_still_taken(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    """Telegram sends a message it can no longer show as ``{chat, message_id, date: 0}``: the
    press is answered and acted on, only the mark under the old question cannot be made."""
    api = bot.server
    user = TgUser(api, 6010, "Lan")
    asked = await home(user)
    button = next(b for b in asked.inline_buttons if b["text"] == "Đăng ký danh hiệu")
    press = {
        "id": "cq-old-1",
        "from": user.as_api_user(),
        "message": {
            "message_id": asked.message_id,
            "chat": {"id": user.chat_id, "type": "private"},
            "date": 0,
        },
        "chat_instance": "ci-6010",
        "data": button["callback_data"],
    }
    with caplog.at_level(logging.INFO, logger="bot.channels"):
        await api.push_update("callback_query", press, chat_id=user.chat_id, note="old press")
        await user.wait_for("Chọn danh hiệu")
        await handled(bot)
    assert [a["callback_query_id"] for a in api.callback_answers] == ["cq-old-1"]
    assert api.calls_of("editMessageText") == api.calls_of("editMessageReplyMarkup") == []
    assert asked.edits == [] and asked.inline_buttons  # the old question is as it was
    assert "pressed message of 6010 is no longer accessible" in caplog.text
    assert channel_errors(caplog) == []


async def test_a_press_is_marked_from_the_message_it_came_with(bot: Bot) -> None:
    """The pressed choice is written under the question from the message in the update (its
    text and keyboard), a later entity or unknown field in it changing nothing."""
    api = bot.server
    user = TgUser(api, 6020, "Minh", last_name="Trần")
    asked = await home(user)
    shown = asked.to_api(api.bot_user)
    shown["entities"] = [{"type": "bold", "offset": 0, "length": 5}]
    shown["some_field_from_a_later_api"] = {"x": [1, 2]}
    button = next(b for b in asked.inline_buttons if b["text"] == "Nhận tệp")
    press = {
        "id": "cq-new-1",
        "from": user.as_api_user(),
        "message": shown,
        "chat_instance": "ci-6020",
        "data": button["callback_data"],
    }
    await api.push_update("callback_query", press, chat_id=user.chat_id, note="press")
    assert await user.wait_for("✔ Nhận tệp") == f"{HOME_TEXT}\n\n✔ Nhận tệp"
    await user.wait_until(lambda sent: any(m.kind == "document" for m in sent))
    assert asked.inline_buttons == []


async def test_an_unreadable_update_is_dropped_and_the_next_ones_answered(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    """Logged by where and what, never the person's words; by polling the updates after it
    are not held up either (aiogram's polling failed the whole batch, again and again)."""
    api = bot.server
    user = TgUser(api, 6030, "Tú")
    broken = message(6030, PRIVATE_WORDS)
    del broken["chat"]
    mistyped = message(6030, PRIVATE_WORDS)
    mistyped["from"]["id"] = "6030"
    with caplog.at_level(logging.INFO, logger="bot.channels"):
        first = await deliver(bot, "message", broken, 6030)
        second = await deliver(bot, "message", mistyped, 6030)
        await home(user)
        await handled(bot)
    assert [m.text for m in api.messages(6030)] == [HOME_TEXT]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"unreadable Telegram update {first} dropped: message.chat: missing" in logged
    assert f"unreadable Telegram update {second} dropped: message.from.id: not an integer" in (
        logged
    )
    assert "778899" not in logged and "Hoa Sữa" not in logged


@pytest.mark.parametrize("bot", ["webhook"], indirect=True)
async def test_webhook_bodies_without_an_update_id_are_dropped(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bot.channels"):
        for body in ({"message": message(6040, PRIVATE_WORDS)}, [1, 2], {"update_id": 9}):
            assert await post(bot.url, body) == 200
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "unreadable Telegram update ? dropped: update_id: missing" in logged
    assert "unreadable Telegram update ? dropped: update: not an object" in logged
    assert "778899" not in logged
    assert bot.server.all_messages() == []


# --- what is read from an update (no network) ------------------------------------------------


def test_a_photo_with_a_caption_reads_as_the_biggest_size_and_the_caption() -> None:
    photo = message(6050, "")
    del photo["text"]
    photo["from"]["last_name"] = "Nguyễn Văn"
    photo["caption"] = "ảnh bằng khen"
    photo["photo"] = [
        {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 60, "file_size": 900},
        {"file_id": "big", "file_unique_id": "b", "width": 1280, "height": 853},
    ]
    update = read_update({"update_id": 1, "message": photo}, "telegram")
    assert isinstance(update, MessageUpdate)
    incoming = update.incoming
    assert incoming.text == "ảnh bằng khen"
    assert incoming.file == IncomingFile("big", None, "image/jpeg", None)
    assert incoming.display_name == "U6050 Nguyễn Văn" and incoming.locale == "vi"
    assert incoming.event_id == f"m{photo['message_id']}"


def test_a_press_reads_its_choice_and_the_label_it_had() -> None:
    shown = message(6060, "Chọn danh hiệu:")
    shown["from"] = sender(1, is_bot=True)
    shown["reply_markup"] = {
        "inline_keyboard": [
            [{"text": "Lao động tiên tiến", "callback_data": "c:4:ldtt"}],
            [{"text": "Bằng khen", "url": "https://example.org"}],
        ]
    }
    query = {"id": "q1", "from": sender(6060), "message": shown, "data": "c:4:ldtt"}
    update = read_update({"update_id": 2, "callback_query": query}, "telegram")
    assert isinstance(update, PressUpdate)
    assert (update.incoming.choice_id, update.incoming.seq) == ("ldtt", 4)
    assert update.incoming.message_ref == str(shown["message_id"])
    assert update.pressed is not None
    assert (update.pressed.text, update.pressed.label) == ("Chọn danh hiệu:", "Lao động tiên tiến")
    # An inline-mode message has none: the press is still read, nothing to mark.
    del query["message"]
    update = read_update({"update_id": 3, "callback_query": query}, "telegram")
    assert isinstance(update, PressUpdate) and update.pressed is None
    assert update.incoming.message_ref is None


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda u: u.update({"update_id": True}), "update_id: not an integer"),
        (lambda u: u["message"].update({"chat": []}), "message.chat: not an object"),
        (lambda u: u["message"]["from"].pop("is_bot"), "message.from.is_bot: missing"),
        (lambda u: u["message"].update({"text": 5}), "message.text: not a string"),
        (lambda u: u["message"].update({"photo": [{}]}), "message.photo.0.file_id: missing"),
    ],
)
def test_a_field_the_bot_reads_must_have_its_json_type(change: Any, where: str) -> None:
    update: dict[str, Any] = {"update_id": 4, "message": message(6070, "xin chào")}
    change(update)
    with pytest.raises(UnreadableUpdate) as unreadable:
        read_update(update, "telegram")
    assert str(unreadable.value) == where
