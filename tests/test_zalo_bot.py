"""The Zalo Bot Platform channel over real HTTP, against the local fake Zalo Bot API.

The real flows and the real channel: long polling one update at a time, numbered text instead
of buttons, answers typed as a number or as a label without diacritics, duplicates ignored
(also after a restart), the webhook and its secret, long replies split under 2,000 characters,
and one person using Telegram and Zalo with the same registrations.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.telegram import TelegramChannel
from bot.channels.web import MAX_BODY
from bot.channels.zalo_bot import MAX_TEXT, ZaloBotChannel, parse_update, render_parts
from bot.delivery import DeliveryError
from bot.outbox import OutboxDispatcher
from handlers.engine.flow import EngineConfig
from handlers.engine.prompt import Choice, OutFile, Reply
from handlers.engine.runner import Engine
from handlers.flows import build_engine
from handlers.i18n import _, use_locale
from storage.models import ChannelIdentity, ProcessedUpdate, Registration
from tests.factories import make_org
from tests.fakes import DEFAULT_TOKEN, FakeBotAPI, TgUser
from tests.fakes.zalo_bot import DEFAULT_ZALO_TOKEN, FakeZaloBotAPI, ZaloUser
from tests.proof import personal_code
from tests.waiting import patience

JAN_10 = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)  # 09:00 in Hà Nội, before the deadline
WEBHOOK_SECRET = "zalo-webhook-secret-123"
LONG_WORDS = [f"chữ{i:04d}" for i in range(900)]  # about 7,000 characters
LONG_TEXT = " ".join(LONG_WORDS)


def make_engine(sessionmaker: async_sessionmaker[AsyncSession]) -> Engine:
    return build_engine(sessionmaker, EngineConfig(now=lambda: JAN_10))


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Wait for something the channel does in the background."""
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110 - a counter the channel bumps, no event to await
            await asyncio.sleep(0.01)


@dataclass
class Zalo:
    server: FakeZaloBotAPI
    channel: ZaloBotChannel
    engine: Engine

    def user(self, user_id: str = "e4ea2cd5189df1c3a88c", name: str = "Trần Văn Bình") -> ZaloUser:
        return ZaloUser(self.server, user_id, name)


async def started(
    engine: Engine, server: FakeZaloBotAPI
) -> tuple[ZaloBotChannel, asyncio.Task[None]]:
    channel = ZaloBotChannel(
        engine, DEFAULT_ZALO_TOKEN, server.base_url, polling_timeout=1, retry_delay=0.01
    )
    await channel.start()
    task = asyncio.create_task(channel.run())
    polls = len(server.calls_of("getUpdates"))
    await until(lambda: len(server.calls_of("getUpdates")) > polls)  # polling is under way
    return channel, task


async def stopped(channel: ZaloBotChannel, task: asyncio.Task[None]) -> None:
    await channel.stop()
    await asyncio.wait_for(task, patience(10))


@pytest.fixture
async def zalo(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[Zalo]:
    await make_org(sessionmaker)
    engine = make_engine(sessionmaker)
    async with FakeZaloBotAPI() as server:
        channel, task = await started(engine, server)
        try:
            yield Zalo(server, channel, engine)
        finally:
            await stopped(channel, task)


async def sign_up(user: ZaloUser, code: str, phone: str = "0987 654 321") -> str:
    """Onboard a roster member by typing only (a typed phone is proven by the personal code
    from the leader): returns the welcome text with the menu."""
    await user.say("/start", "0912 345 678")  # the phone question, with an example
    await user.say(phone, "mã cá nhân")
    return await user.say(code.lower(), "Công ty May Bắc Kạn")


async def test_a_newcomer_typing_only_waits_for_the_leader(zalo: Zalo) -> None:
    user = zalo.user()
    await user.say("/start", "0912 345 678")
    await user.say("0987 654 321", "mã cá nhân")
    await user.say("1", "công đoàn cơ sở")  # "Tôi không có mã", by number
    picks = await user.say("may bac kan", "Công ty May")
    assert re.search(r"^1\. Công đoàn cơ sở Công ty May Bắc Kạn", picks, re.M), picks
    await user.say("1", "Nguyễn Văn An")  # by number; then the full name, with an example
    waiting = await user.say("trần văn bình", "chờ")
    assert "xác nhận" in waiting


# --- the member's journey --------------------------------------------------------------------


async def test_a_members_phone_and_name_get_a_stranger_nothing(zalo: Zalo) -> None:
    """Issue 12, typed on Zalo: the same replies for a rostered and an unrostered phone, and
    the roster name typed back makes nobody that member."""
    answers = []
    for user_id, phone in (("s-roster", "0912 345 678"), ("s-none", "0987 000 111")):
        user = zalo.user(user_id, "Người lạ")
        said = [await user.say("/start", "0912 345 678")]
        said.append(await user.say(phone, "mã cá nhân"))
        said.append(await user.say("1", "công đoàn cơ sở"))
        said.append(await user.say("may bac kan", "Công ty May"))
        said.append(await user.say("1", "Nguyễn Văn An"))
        said.append(await user.say("nguyen thi hoa", "có dấu"))
        said.append(await user.say("2", "chờ"))  # kept as typed
        said.append(await user.say("/dulieucuatoi", "chờ"))
        answers.append([text.replace(phone.replace(" ", ""), "PHONE") for text in said])
    assert answers[0] == answers[1]
    assert not any("Tổ trưởng" in text for text in answers[0])


async def test_sign_up_and_register_a_title_by_typing_numbers_and_labels(
    zalo: Zalo, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    user = zalo.user()
    welcome = await sign_up(user, await personal_code(sessionmaker, now=JAN_10))
    assert "bạn Bình" in welcome  # greeted by the given name
    with use_locale("vi"):
        register = _("📝 Register a title")
    assert re.search(rf"^\d+\. {re.escape(register)}$", welcome, re.M), welcome

    # A label without diacritics, then the title's label the same way.
    titles = await user.say("dang ky danh hieu", "25/01/2027")
    assert re.search(r"^1\. Lao động tiên tiến", titles, re.M), titles
    await user.say("lao dong tien tien", "cam kết")
    summary = await user.say("Hoàn thành 110% kế hoạch", "Hoàn thành 110% kế hoạch")
    assert "Lao động tiên tiến" in summary
    await user.say("xac nhan", "TD2027-000001")
    mine = await user.say("/cuatoi", "TD2027-000001")
    assert "Lao động tiên tiến" in mine

    # Text only, every message within Zalo's limit.
    assert all(1 <= len(m.text) <= MAX_TEXT for m in zalo.server.sent)
    async with sessionmaker() as session:
        reg = await session.scalar(select(Registration))
        identity = await session.scalar(
            select(ChannelIdentity).where(ChannelIdentity.channel == "zalo")
        )
    assert reg is not None and reg.title_code == "LDTT"
    assert identity is not None and identity.external_id == user.user_id
    assert identity.person_id == reg.person_id


async def test_navigation_words_are_listed_and_typed(zalo: Zalo) -> None:
    user = zalo.user()
    await user.say("/start", "0912 345 678")
    asked = await user.say("0987654321", "mã cá nhân")
    with use_locale("vi"):
        back = _("« Back").strip("« ")
    assert back in asked  # "(Bạn cũng có thể gõ: Quay lại · Hủy)"
    again = await user.say("quay lai", "0912 345 678")  # back to the phone question
    assert "0912 345 678" in again


async def test_a_sticker_gets_a_friendly_text_only_answer(zalo: Zalo) -> None:
    user = zalo.user()
    await user.send_sticker()
    with use_locale("vi"):
        expected = _("Sorry, I can only read typed text here. Please type your answer.")
    answer = await user.wait_for(expected)
    # In the bot's voice, with the pending question (the phone number) asked again.
    assert answer.startswith(expected) and "Mình" in expected and "tôi" not in expected
    assert "số điện thoại" in answer and "0912 345 678" in answer


async def test_the_same_message_delivered_twice_is_answered_once_even_after_a_restart(
    zalo: Zalo, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    user = zalo.user()
    await user.say("/start", "0912 345 678")
    phone = user.update("message.text.received", text="0987654321")
    await user.push(phone)
    await user.wait_for("mã cá nhân")
    await zalo.server.push(phone)  # Zalo sends it again
    await until(lambda: zalo.channel.runner.duplicates == 1)
    assert len(user.since_last_action()) == 1

    # A new process on the same database does not take it either.
    await zalo.channel.stop()
    channel, task = await started(zalo.engine, zalo.server)
    try:
        await zalo.server.push(phone)
        await until(lambda: channel.runner.duplicates == 1)
        assert len(user.since_last_action()) == 1
        # ... and goes on with the conversation where it was.
        await user.say("toi khong co ma", "công đoàn cơ sở")
    finally:
        await stopped(channel, task)
    async with sessionmaker() as session:
        keys = list(await session.scalars(select(ProcessedUpdate.update_key)))
    assert keys.count(phone["message"]["message_id"]) == 1


# --- rendering and sending -------------------------------------------------------------------


async def test_a_long_reply_is_split_under_2000_characters_at_word_boundaries(zalo: Zalo) -> None:
    user = zalo.user("long-reader")
    await zalo.channel.send(user.user_id, Reply(LONG_TEXT))
    parts = [m.text for m in zalo.server.messages(user.user_id)]
    assert len(parts) == 4
    assert all(len(p) <= MAX_TEXT for p in parts)
    assert " ".join(parts).split() == LONG_WORDS


def test_replies_of_one_turn_share_a_message_and_choices_are_numbered() -> None:
    with use_locale("vi"):
        parts = render_parts(
            [
                Reply("Cảm ơn bạn!"),
                Reply(
                    "Chọn danh hiệu:",
                    choices=(
                        Choice("ldtt", "Lao động tiên tiến"),
                        Choice("cstdcs", "Chiến sĩ thi đua cơ sở"),
                        Choice("!ok:7", "Duyệt"),  # a notification action cannot be typed
                        Choice("_back", _("« Back")),
                    ),
                ),
            ]
        )
        back = _("« Back").strip("« ")
    assert len(parts) == 1
    text = parts[0]
    assert text.startswith("Cảm ơn bạn!\n\nChọn danh hiệu:")
    assert "1. Lao động tiên tiến\n2. Chiến sĩ thi đua cơ sở" in text
    assert "Duyệt" not in text
    assert back in text.splitlines()[-1]


async def test_a_file_cannot_be_sent_and_is_mentioned_in_one_line(zalo: Zalo) -> None:
    user = zalo.user("officer")
    report = OutFile("dang-ky-2027.xlsx", b"PK\x03\x04", "application/vnd.ms-excel")
    await zalo.channel.send(user.user_id, Reply("Danh sách đăng ký của đơn vị.", file=report))
    [message] = zalo.server.messages(user.user_id)
    assert message.text.startswith("Danh sách đăng ký của đơn vị.")
    assert "dang-ky-2027.xlsx" in message.text
    assert zalo.server.calls_of("sendPhoto") == []


async def test_errors_inside_http_200_are_retried_or_reported(zalo: Zalo) -> None:
    user = zalo.user("flaky")
    zalo.server.fail_next(2, 500)  # {"ok": false, "error_code": 500} with HTTP 200
    await zalo.channel.send(user.user_id, Reply("sau hai lỗi"))
    assert [m.text for m in zalo.server.messages(user.user_id)] == ["sau hai lỗi"]

    zalo.server.fail_next(1, 429, description="Too many requests")
    await zalo.channel.send(user.user_id, Reply("sau giới hạn"))
    assert zalo.server.messages(user.user_id)[-1].text == "sau giới hạn"

    zalo.server.fail_next(1, 400, description="chat not found")
    with pytest.raises(DeliveryError) as rejected:
        await zalo.channel.send(user.user_id, Reply("không tới"))
    assert not rejected.value.blocked
    with pytest.raises(DeliveryError):
        await zalo.channel.send("", Reply("không có địa chỉ"))
    assert len(zalo.server.messages(user.user_id)) == 2


async def test_polling_survives_api_errors_and_picks_up_afterwards(zalo: Zalo) -> None:
    user = zalo.user()
    # The update waits at Zalo while getUpdates fails; polling backs off and goes on.
    zalo.server.fail_polls(3)
    zalo.server.fail_next(2, 502, http_status=502)  # and the answer goes out on a retry
    await user.say("/start", "0912 345 678")
    assert len(zalo.server.calls_of("sendMessage")) == 3


def test_updates_are_read_as_text_photo_or_unreadable() -> None:
    base = {"from": {"id": "u1", "display_name": "An", "is_bot": False}}
    chat = {"chat": {"id": "u1", "chat_type": "PRIVATE"}, "message_id": "m1"}
    text = parse_update(
        {"event_name": "message.text.received", "message": {**base, **chat, "text": "1"}}
    )
    assert text is not None and text.incoming is not None and text.incoming.text == "1"
    assert text.key == "m1" and text.incoming.display_name == "An"

    photo = parse_update(
        {
            "event_name": "message.image.received",
            "message": {**base, **chat, "photo_url": "https://f.zdn.vn/a.jpg", "caption": "x"},
        }
    )
    assert photo is not None and photo.incoming is not None
    assert photo.incoming.file is not None
    assert (photo.incoming.file.file_id, photo.incoming.file.mime) == (
        "https://f.zdn.vn/a.jpg",
        "image/jpeg",
    )

    sticker = parse_update(
        {"event_name": "message.sticker.received", "message": {**base, **chat, "sticker": "s"}}
    )
    assert sticker is not None and sticker.incoming is None

    group = {"chat": {"id": "g1", "chat_type": "GROUP"}, "message_id": "m2"}
    assert (
        parse_update({"event_name": "message.text.received", "message": {**base, **group}}) is None
    )


# --- webhook mode ----------------------------------------------------------------------------


@dataclass
class Hooked:
    server: FakeZaloBotAPI
    channel: ZaloBotChannel
    url: str


@pytest.fixture
async def hooked(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[Hooked]:
    await make_org(sessionmaker)
    engine = make_engine(sessionmaker)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/zalo/webhook"
    async with FakeZaloBotAPI() as server:
        channel = ZaloBotChannel(
            engine,
            DEFAULT_ZALO_TOKEN,
            server.base_url,
            webhook_url=url,
            webhook_secret=WEBHOOK_SECRET,
            retry_delay=0.01,
        )
        # The composition root's web server: the web chat's, with its 16 KB body limit.
        root = web.Application(client_max_size=MAX_BODY)
        root.add_routes(channel.webhook_routes(channel.webhook_path))  # "/zalo/webhook"
        runner = web.AppRunner(root, handle_signals=False)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        await channel.start()
        task = asyncio.create_task(channel.run())
        try:
            yield Hooked(server, channel, url)
        finally:
            await stopped(channel, task)
            await runner.cleanup()


async def test_webhook_mode_registers_the_secret_and_answers_updates(hooked: Hooked) -> None:
    assert hooked.server.webhook == {"url": hooked.url, "secret_token": WEBHOOK_SECRET}
    user = ZaloUser(hooked.server, "webhook-user")
    await user.say("/start", "0912 345 678")  # posted wrapped in {ok, result}
    assert hooked.server.deliveries[-1][0] == 200

    hooked.server.flat_webhooks = True  # the same, without the envelope
    await user.say("0987654321", "mã cá nhân")
    # Long polling is not used while the webhook is set.
    assert hooked.server.calls_of("getUpdates") == []


async def test_webhook_takes_zalos_own_256_kb_and_refuses_deep_json_with_a_4xx(
    hooked: Hooked,
) -> None:
    """Before: a 24 KB update hit the web chat's 16 KB limit; deep JSON gave a 500."""
    user = ZaloUser(hooked.server, "long-writer")
    update = user.update("message.text.received", text="/start")
    update["padding"] = "x" * 24 * 1024
    assert await hooked.server.deliver(update) == 200
    await user.wait_for("0912 345 678")
    deep = b'{"ok": true, "result": ' + b"[" * 8000 + b"]" * 8000 + b"}"
    headers = {"X-Bot-Api-Secret-Token": WEBHOOK_SECRET, "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as client:
        async with client.post(hooked.url, data=deep, headers=headers) as resp:
            assert resp.status == 400
        headers["X-Bot-Api-Secret-Token"] = "wrong"
        async with client.post(hooked.url, data=deep, headers=headers) as resp:
            assert resp.status == 401
        update["padding"] = "x" * 300 * 1024
        headers["X-Bot-Api-Secret-Token"] = WEBHOOK_SECRET
        async with client.post(hooked.url, json=update, headers=headers) as resp:
            assert resp.status == 413


async def test_webhook_with_a_wrong_or_missing_secret_is_rejected(hooked: Hooked) -> None:
    user = ZaloUser(hooked.server, "intruder")
    update = user.update("message.text.received", text="/start")
    assert await hooked.server.deliver(update, secret="not-the-secret") == 401
    async with (
        aiohttp.ClientSession() as client,
        client.post(hooked.url, json={"ok": True, "result": update}) as resp,
    ):
        assert resp.status == 401
    await asyncio.sleep(0.2)
    assert hooked.server.messages("intruder") == []

    assert await hooked.server.deliver(update) == 200  # the same update, properly signed
    await user.wait_for("0912 345 678")


async def test_webhook_duplicates_are_answered_once(hooked: Hooked) -> None:
    user = ZaloUser(hooked.server, "retry-user")
    update = user.update("message.text.received", text="/start")
    statuses = await asyncio.gather(*(hooked.server.deliver(update) for _ in range(3)))
    assert statuses == [200, 200, 200]  # Zalo must not retry any of them
    await user.wait_for("0912 345 678")
    await until(lambda: hooked.channel.runner.duplicates == 2)
    assert len(hooked.server.messages("retry-user")) == 1


# --- one person on Telegram and Zalo ---------------------------------------------------------


@dataclass
class Both:
    tg: FakeBotAPI
    zalo: FakeZaloBotAPI
    outbox: OutboxDispatcher


@pytest.fixture
async def both(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[Both]:
    await make_org(sessionmaker)
    engine = make_engine(sessionmaker)
    async with FakeBotAPI() as tg_api, FakeZaloBotAPI() as zalo_api:
        telegram = TelegramChannel(engine, DEFAULT_TOKEN, tg_api.base_url, polling_timeout=5)
        zalo, zalo_task = await started(engine, zalo_api)
        outbox = OutboxDispatcher(sessionmaker, {"telegram": telegram, "zalo": zalo})
        await telegram.start()
        polling = asyncio.create_task(telegram.run_polling())
        try:
            yield Both(tg_api, zalo_api, outbox)
        finally:
            await telegram.stop()
            await asyncio.wait_for(polling, patience(10))
            await stopped(zalo, zalo_task)


async def register_on_telegram(tg: FakeBotAPI) -> TgUser:
    user = TgUser(tg, 5001, "Trần Văn Bình")
    await user.command("/start")
    await user.wait_for("0912 345 678")
    await user.share_contact("+84987654321")
    await user.wait_for("công đoàn cơ sở")
    await user.send("may bac kan")
    await user.press("Công ty May")
    await user.wait_for("Nguyễn Văn An")
    await user.press("Trần Văn Bình")
    await user.wait_for("Công ty May Bắc Kạn")
    await user.press("Đăng ký danh hiệu")
    await user.wait_for("25/01/2027")
    await user.send("lao dong tien tien")
    await user.wait_for("cam kết")
    await user.press("Bỏ qua")
    await user.press("Xác nhận")
    await user.wait_for("TD2027-000001")
    return user


async def see_same_registrations(zalo_user: ZaloUser) -> None:
    mine = await zalo_user.say("/cuatoi", "TD2027-000001")
    assert "Lao động tiên tiến" in mine


async def test_a_link_code_from_telegram_opens_the_same_registrations_on_zalo(
    both: Both, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    tg_user = await register_on_telegram(both.tg)
    await tg_user.command("/lienket")
    shown = await tg_user.wait_for("/lienket ")
    code = re.search(r"/lienket ([A-Z2-9]{8})", shown)
    assert code is not None, shown

    zalo_user = ZaloUser(both.zalo, "zalo-binh")
    await zalo_user.say("/start", "0912 345 678")  # a stranger to Zalo so far
    wrong = await zalo_user.say("/lienket ABCD2345", "/lienket")
    assert code.group(1) not in wrong
    done = await zalo_user.say(f"/lienket {code.group(1).lower()}", "Xong, Bình")
    assert "TD2027" not in done
    await see_same_registrations(zalo_user)

    # Telegram hears that the code was used (through the outbox).
    await both.outbox.deliver_pending()
    notice = await tg_user.wait_for("Zalo")
    assert "/lienket" not in notice
    # Used once: the same code on another Zalo account does nothing.
    other = ZaloUser(both.zalo, "zalo-thief")
    await other.say(f"/lienket {code.group(1)}", "/lienket")
    async with sessionmaker() as session:
        identities = list(
            await session.scalars(
                select(ChannelIdentity).where(ChannelIdentity.person_id.is_not(None))
            )
        )
    assert sorted(i.channel for i in identities) == ["telegram", "zalo"]


async def test_a_typed_phone_of_a_telegram_person_asks_for_a_link_code(both: Both) -> None:
    """Typing someone's number on Zalo must not hand over their Telegram account."""
    await register_on_telegram(both.tg)

    zalo_user = ZaloUser(both.zalo, "zalo-binh")
    await zalo_user.say("/start", "0912 345 678")
    refused = await zalo_user.say("0987 654 321", "/lienket")
    assert "Trần Văn Bình" not in refused


def test_link_commands_are_known() -> None:
    from handlers.flows import default_commands

    assert "lienket" in default_commands()


async def test_a_wrong_token_stops_the_start(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    engine = make_engine(sessionmaker)
    async with FakeZaloBotAPI(token="1:other") as server:
        channel = ZaloBotChannel(engine, DEFAULT_ZALO_TOKEN, server.base_url, retry_delay=0.01)
        try:
            with pytest.raises(DeliveryError):
                await channel.start()
        finally:
            await channel.stop()
