"""The Telegram channel over real HTTP, against the local fake Bot API.

A tiny flow defined here (not the real ones) exercises every kind of reply the channel has to
render: buttons, typed answers, HTML-looking text, long text, the contact keyboard, files,
messages for other people, and the Bot API failing in the ways it does.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.telegram import TelegramChannel, callback_data, parse_callback_data
from bot.delivery import DeliveryError, call_with_retry
from bot.outbox import OutboxDispatcher
from handlers.engine.flow import (
    Answer,
    Ctx,
    EngineConfig,
    Flow,
    Go,
    Next,
    Step,
    Switch,
)
from handlers.engine.prompt import (
    Address,
    Choice,
    InputKind,
    OutFile,
    Outgoing,
    Prompt,
    Reply,
)
from handlers.engine.runner import Engine
from handlers.i18n import _, use_locale
from storage.models import OutboxMessage
from tests.fakes import DEFAULT_TOKEN, FakeBotAPI, SentMessage, TgUser
from tests.waiting import patience

OFFICER_ID = 777_000
HOME_TEXT = "Trang thử nghiệm. Bạn muốn làm gì?"
LONG_WORDS = [f"chữ{i:04d}" for i in range(1500)]  # about 11,000 characters
LONG_TEXT = " ".join(LONG_WORDS)

HOME_CHOICES = (
    Choice("reg", "Đăng ký danh hiệu"),
    Choice("echo", "Nhập chữ"),
    Choice("long", "Tin nhắn dài"),
    Choice("phone", "Số điện thoại"),
    Choice("doc", "Gửi tài liệu"),
    Choice("notify", "Báo cán bộ"),
    Choice("file", "Nhận tệp"),
)
TITLE_CHOICES = (
    Choice("ldtt", "Lao động tiên tiến"),
    Choice("cstdcs", "Chiến sĩ thi đua cơ sở"),
)


def label_of(choices: tuple[Choice, ...], choice_id: str | None) -> str:
    return next(c.label for c in choices if c.id == choice_id)


# --- the test flow -------------------------------------------------------------------------


def step(
    name: str,
    prompt: Prompt,
    answer: Callable[[Ctx, Answer], Awaitable[Go]],
) -> Step:
    async def ask(ctx: Ctx) -> Prompt:
        return prompt

    return Step(name, ask, answer)


async def home_answer(ctx: Ctx, answer: Answer) -> Go:
    if answer.choice == "reg":
        return Next("title")
    if answer.choice == "echo":
        return Next("echo")
    if answer.choice == "phone":
        return Next("phone")
    if answer.choice == "doc":
        return Next("doc")
    if answer.choice == "long":
        ctx.say(LONG_TEXT)
    elif answer.choice == "notify":
        officer = Reply(f"Cán bộ ơi, {ctx.incoming.display_name} cần duyệt hồ sơ.")
        ctx.others.append(Outgoing(Address("telegram", str(OFFICER_ID)), officer))
        ctx.others.append(Outgoing(Address("zalo", "42"), Reply("Không gửi qua Telegram")))
        ctx.say("Đã báo cán bộ.")
    elif answer.choice == "file":
        ctx.say(
            "Tệp của bạn đây.", file=OutFile("bao-cao.csv", b"ten,danh_hieu\nAn,LDTT\n", "text/csv")
        )
    return Next("home")


async def title_answer(ctx: Ctx, answer: Answer) -> Go:
    ctx.say(f"Đã chọn: {label_of(TITLE_CHOICES, answer.choice)}")
    return Next("home")


async def echo_answer(ctx: Ctx, answer: Answer) -> Go:
    ctx.say(f"Bạn đã nhập: {answer.text} — và đây là <b>chữ đậm</b> &amp; <i>nghiêng</i>")
    return Next("home")


async def phone_answer(ctx: Ctx, answer: Answer) -> Go:
    if answer.skipped:
        ctx.say("Bỏ qua số điện thoại.")
    else:
        whose = "của chính bạn" if answer.contact_is_own else "không phải của bạn"
        ctx.say(f"Số {answer.contact_phone or answer.value} ({whose})")
    return Next("home")


async def doc_answer(ctx: Ctx, answer: Answer) -> Go:
    assert answer.file is not None
    f = answer.file
    ctx.say(f"Đã nhận {f.filename} ({f.mime}, {f.size} byte)")
    return Next("home")


async def menu_answer(ctx: Ctx, answer: Answer) -> Go:
    return Switch("onboarding")


def build_flows() -> dict[str, Flow]:
    onboarding = Flow(
        "onboarding",
        (
            step(
                "home",
                Prompt(HOME_TEXT, HOME_CHOICES, one_per_row=False),
                home_answer,
            ),
            step("title", Prompt("Chọn danh hiệu:", TITLE_CHOICES), title_answer),
            step("echo", Prompt("Hãy nhập một dòng chữ:", kind=InputKind.TEXT), echo_answer),
            step(
                "phone",
                Prompt(
                    "Gửi số điện thoại của bạn:",
                    kind=InputKind.PHONE,
                    request_contact=True,
                    optional=True,
                ),
                phone_answer,
            ),
            step("doc", Prompt("Gửi tài liệu minh chứng:", kind=InputKind.FILE), doc_answer),
        ),
        needs_person=False,
    )
    menu = Flow(
        "menu",
        (step("main", Prompt("Menu chính", (Choice("again", "Làm lại"),)), menu_answer),),
    )
    return {"onboarding": onboarding, "menu": menu}


async def start_command(ctx: Ctx, arg: str) -> Go:
    return Switch("onboarding")


# --- fixtures ------------------------------------------------------------------------------


@dataclass
class Harness:
    server: FakeBotAPI
    channel: TelegramChannel
    sessionmaker: async_sessionmaker[AsyncSession]

    async def outbox(self) -> list[tuple[str, str, str | None]]:
        async with self.sessionmaker() as session:
            rows = await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
            return [(r.channel, r.external_id, r.outcome) for r in rows]

    def user(self, user_id: int = 1001, first_name: str = "An") -> TgUser:
        return TgUser(self.server, user_id, first_name)


@pytest.fixture
async def tg(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[Harness]:
    engine = Engine(sessionmaker, build_flows(), {"start": start_command}, EngineConfig())
    async with FakeBotAPI() as server:
        channel = TelegramChannel(engine, DEFAULT_TOKEN, server.base_url, polling_timeout=5)
        # Messages for other people travel through the outbox, as in the running bot.
        outbox = OutboxDispatcher(sessionmaker, {"telegram": channel})
        engine.on_queued = outbox.nudge
        await channel.start()
        polling = asyncio.create_task(channel.run_polling())
        dispatching = asyncio.create_task(outbox.run())
        try:
            yield Harness(server, channel, sessionmaker)
        finally:
            outbox.stop()
            await asyncio.wait_for(dispatching, patience(10))
            await channel.stop()
            await asyncio.wait_for(polling, patience(10))


async def at_home(user: TgUser) -> SentMessage:
    await user.command("/start")
    return await back_home(user)


async def back_home(user: TgUser, wait: float = 10.0) -> SentMessage:
    """Wait for the home question to be asked again (not the old one, edited after a press)."""

    def asked(messages: list[SentMessage]) -> bool:
        return any(m.text == HOME_TEXT and m.inline_buttons for m in messages)

    messages = await user.wait_until(asked, wait)
    return next(m for m in reversed(messages) if m.text == HOME_TEXT)


# --- tests ---------------------------------------------------------------------------------


async def test_buttons_carry_short_ascii_callback_data_and_nav_goes_last(tg: Harness) -> None:
    user = tg.user()
    home = await at_home(user)

    rows = home.reply_markup["inline_keyboard"] if home.reply_markup else []
    labels = [[b["text"] for b in row] for row in rows]
    # Seven choices packed two per row (one_per_row=False), then back and cancel together.
    assert labels[0] == ["Đăng ký danh hiệu", "Nhập chữ"]
    assert labels[3] == ["Nhận tệp"]
    with use_locale("vi"):
        assert labels[4] == [_("« Back"), _("✖ Cancel")]
    assert len(rows) == 5
    for button in home.inline_buttons:
        data = button["callback_data"]
        assert data.isascii() and 1 <= len(data.encode()) <= 64
    # No parse mode was asked for: Telegram shows the text literally.
    assert all("parse_mode" not in c.params for c in tg.server.calls_of("sendMessage"))


async def test_pressing_a_button_answers_marks_it_and_moves_on(tg: Harness) -> None:
    user = tg.user()
    home = await at_home(user)

    await user.press("đăng ký")
    await user.wait_for("Chọn danh hiệu")
    marked = await user.wait_for("✔ Đăng ký danh hiệu")
    assert marked.startswith("Trang thử nghiệm")
    assert home.inline_buttons == []  # the pressed question lost its buttons
    assert len(tg.server.callback_answers) == 1  # the spinner on the button stopped


async def test_chats_leave_nothing_behind_in_the_process(tg: Harness) -> None:
    # Conversations live in the database; a process serving 10,000 people must not keep a
    # record per chat (aiogram's FSM storage would, unread): memory stays flat with the crowd.
    users = [tg.user(5000 + i, f"Người {i}") for i in range(30)]
    await asyncio.gather(*(at_home(u) for u in users))
    per_chat = [
        o for o in gc.get_objects() if type(o).__name__ in ("MemoryStorageRecord", "StorageKey")
    ]
    assert per_chat == []


async def test_typed_number_and_label_without_diacritics_select(tg: Harness) -> None:
    user = tg.user()
    await at_home(user)

    await user.send("1")
    await user.wait_for("Chọn danh hiệu")
    await user.send("chien si thi dua co so")
    assert await user.wait_for("Đã chọn") == "Đã chọn: Chiến sĩ thi đua cơ sở"


async def test_a_button_of_an_earlier_question_is_recognised(tg: Harness) -> None:
    user = tg.user()
    await at_home(user)
    await user.send("1")  # typed: the home message keeps its buttons
    await user.wait_for("Chọn danh hiệu")

    await user.press("Nhập chữ")  # only the old home question has this button
    with use_locale("vi"):
        stale = _("That button belongs to an earlier question. Here is where we are:")
    await user.wait_for(stale)
    # The current question is shown again, and answering it still works.
    await user.wait_for("Chọn danh hiệu")
    await user.press("Lao động")
    assert await user.wait_for("Đã chọn") == "Đã chọn: Lao động tiên tiến"


async def test_malformed_callback_data_counts_as_stale(tg: Harness) -> None:
    user = tg.user()
    await at_home(user)

    await user.press_data("garbage-without-colons")
    with use_locale("vi"):
        stale = _("That button belongs to an earlier question. Here is where we are:")
    await user.wait_for(stale)
    await back_home(user)


async def test_html_in_text_comes_back_literally(tg: Harness) -> None:
    user = tg.user()
    await at_home(user)
    await user.press("Nhập chữ")
    await user.wait_for("Hãy nhập")

    await user.send("<b>Nguyễn</b> & <script>")
    echoed = await user.wait_for("Bạn đã nhập")
    assert echoed.startswith("Bạn đã nhập: <b>Nguyễn</b> & <script>")
    assert "<b>chữ đậm</b> &amp; <i>nghiêng</i>" in echoed


async def test_long_reply_is_split_at_word_boundaries(tg: Harness) -> None:
    user = tg.user()
    await at_home(user)

    await user.press("Tin nhắn dài")
    await back_home(user)
    parts = [m.text or "" for m in user.since_last_action() if "chữ" in (m.text or "")]
    assert len(parts) == 3
    assert all(len(p) <= 4096 for p in parts)
    # Every part holds whole words, and together they are the text, in order.
    assert " ".join(parts).split() == LONG_WORDS


async def test_shared_contact_arrives_as_the_phone_and_the_keyboard_goes(tg: Harness) -> None:
    user = tg.user()
    await at_home(user)
    await user.press("Số điện thoại")
    ask = await user.wait_message("Gửi số điện thoại")

    keyboard = ask.reply_markup or {}
    assert keyboard.get("one_time_keyboard") and keyboard.get("resize_keyboard")
    first = keyboard["keyboard"][0][0]
    assert first["request_contact"] is True
    with use_locale("vi"):
        assert first["text"] == _("📱 Share my phone number")
    with use_locale("vi"):
        assert _("Skip »") in user.last_keyboard()

    await user.share_contact("+84912345678", own=True)
    said = await user.wait_message("Số +84912345678")
    assert said.text == "Số +84912345678 (của chính bạn)"
    assert said.removes_keyboard  # the share-contact keyboard is gone


async def test_someone_elses_contact_is_marked_as_such(tg: Harness) -> None:
    user = tg.user()
    await at_home(user)
    await user.press("Số điện thoại")
    await user.wait_for("Gửi số điện thoại")

    await user.share_contact("0987654321", own=False)
    assert "không phải của bạn" in await user.wait_for("Số 0987654321")


async def test_a_typed_nav_label_from_the_contact_keyboard_works(tg: Harness) -> None:
    user = tg.user()
    await at_home(user)
    await user.press("Số điện thoại")
    await user.wait_for("Gửi số điện thoại")
    skip = next(label for label in user.last_keyboard() if "»" in label)

    await user.press(skip)  # a reply-keyboard button: the client sends its text
    said = await user.wait_message("Bỏ qua số điện thoại")
    assert said.removes_keyboard


async def test_a_document_arrives_with_its_name_type_and_size(tg: Harness) -> None:
    user = tg.user()
    await at_home(user)
    await user.press("Gửi tài liệu")
    await user.wait_for("Gửi tài liệu minh chứng")

    await user.send_document("bang-khen.pdf", "application/pdf", 123_456)
    assert await user.wait_for("Đã nhận") == "Đã nhận bang-khen.pdf (application/pdf, 123456 byte)"


async def test_a_file_reply_is_sent_as_a_document(tg: Harness) -> None:
    user = tg.user()
    await at_home(user)

    await user.press("Nhận tệp")
    await back_home(user)
    docs = [m for m in user.since_last_action() if m.kind == "document"]
    assert len(docs) == 1 and docs[0].document is not None
    assert docs[0].document.filename == "bao-cao.csv"
    assert docs[0].document.content == b"ten,danh_hieu\nAn,LDTT\n"


async def test_messages_for_others_reach_them_once(tg: Harness) -> None:
    user = tg.user(first_name="Bình")
    officer = tg.user(OFFICER_ID, "Cán bộ")
    await at_home(user)

    await user.press("Báo cán bộ")
    await user.wait_for("Đã báo cán bộ")
    assert "cần duyệt hồ sơ" in await officer.wait_for("Bình cần duyệt")
    await asyncio.sleep(0.3)  # a second copy, if the channel sent one too, would be here
    assert len(tg.server.messages(OFFICER_ID)) == 1
    # The Zalo message waits in the outbox for a Zalo channel; Telegram's is done.
    assert await tg.outbox() == [("telegram", str(OFFICER_ID), "sent"), ("zalo", "42", None)]


async def test_rate_limit_is_waited_out_and_everything_arrives(tg: Harness) -> None:
    user = tg.user()
    await at_home(user)
    tg.server.rate_limit = 2  # messages per second: the three long parts cannot all pass

    await user.press("Tin nhắn dài")
    await back_home(user, wait=15)
    parts = [m.text or "" for m in user.since_last_action() if "chữ" in (m.text or "")]
    assert " ".join(parts).split() == LONG_WORDS
    assert tg.server.statuses[429] >= 1


def crashes(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Errors logged with a trace by the channel: an exception escaped a handler."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "bot.channels.telegram" and r.levelno >= logging.ERROR and r.exc_info
    ]


async def test_a_user_who_blocked_the_bot_breaks_nothing(
    tg: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tg.user(2002, "Chặn")
    other = tg.user(3003, "Cường")
    tg.server.blocked.add(blocker.chat_id)

    await blocker.command("/start")
    await at_home(other)  # the bot keeps answering everyone else
    await asyncio.sleep(0.2)  # let the blocked update finish, if it were still retrying
    # Given up at the first 403, not retried, and no handler blew up.
    assert tg.server.statuses[403] == 1
    assert tg.server.messages(blocker.chat_id) == []
    assert crashes(caplog) == []

    tg.server.blocked.discard(blocker.chat_id)  # unblocked: the conversation goes on
    await at_home(blocker)


async def test_an_officer_who_blocked_the_bot_does_not_stop_the_sender(
    tg: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    tg.server.blocked.add(OFFICER_ID)
    user = tg.user()
    await at_home(user)

    await user.press("Báo cán bộ")
    await user.wait_for("Đã báo cán bộ")
    await back_home(user)
    for _attempt in range(50):  # the outbox records the outcome shortly after
        if (await tg.outbox())[0][2] is not None:
            break
        await asyncio.sleep(0.1)
    assert (await tg.outbox())[0] == ("telegram", str(OFFICER_ID), "blocked")
    assert tg.server.statuses[403] == 1
    assert crashes(caplog) == []


async def test_send_reaches_a_person_or_says_why_not(tg: Harness) -> None:
    officer = tg.user(OFFICER_ID, "Cán bộ")
    tg.server.blocked.add(4004)
    choices = (Choice("!ok:7", "Duyệt"), Choice("!no:7", "Trả lại"))

    await tg.channel.send(str(OFFICER_ID), Reply("Hồ sơ số 7 chờ duyệt", choices=choices))
    sent = await officer.wait_message("Hồ sơ số 7")
    assert [b["callback_data"] for b in sent.inline_buttons] == ["c:-1:!ok:7", "c:-1:!no:7"]
    assert parse_callback_data("c:-1:!ok:7") == ("!ok:7", -1)

    with pytest.raises(DeliveryError) as blocked:
        await tg.channel.send("4004", Reply("Không tới"))
    assert blocked.value.blocked
    with pytest.raises(DeliveryError) as bad:
        await tg.channel.send("zalo:42", Reply("Không tới"))
    assert not bad.value.blocked


async def test_commands_are_registered_in_vietnamese_and_english(tg: Harness) -> None:
    await tg.channel.menu_registered()  # in the background: receiving does not wait for it
    names = [c["command"] for c in tg.server.commands[None]]
    assert names == ["start", "dangky", "cuatoi", "trogiup", "huy"]  # Vietnamese commands
    with use_locale("vi"):
        assert tg.server.commands[None][1]["description"] == _("Register a title")
    assert [c["command"] for c in tg.server.commands["en"]] == names


# --- pieces without the engine ---------------------------------------------------------------


def test_callback_data_round_trip() -> None:
    data = callback_data(12, "ldtt")
    assert data == "c:12:ldtt"
    assert parse_callback_data(data) == ("ldtt", 12)
    assert parse_callback_data("c:x:ldtt") == ("ldtt", -1)
    assert parse_callback_data("") == ("?", -1)
    with pytest.raises(ValueError):
        callback_data(1, "đ")


async def test_call_with_retry_survives_server_errors_and_gives_up_in_time() -> None:
    async with FakeBotAPI() as server:
        session = AiohttpSession(api=TelegramAPIServer.from_base(server.base_url))
        bot = Bot(DEFAULT_TOKEN, session=session)
        try:
            server.fail_next(2)
            await call_with_retry(
                lambda: bot.send_message(5, "sau hai lỗi"), what="t", base_delay=0.01
            )
            server.fail_next(1, json_body=False)  # an HTML error page from a proxy
            await call_with_retry(
                lambda: bot.send_message(5, "sau trang lỗi"), what="t", base_delay=0.01
            )
            assert [m.text for m in server.messages(5)] == ["sau hai lỗi", "sau trang lỗi"]

            server.fail_next(10)
            with pytest.raises(DeliveryError):
                await call_with_retry(
                    lambda: bot.send_message(5, "không tới"),
                    what="t",
                    base_delay=0.01,
                    max_attempts=3,
                )
            assert len(server.messages(5)) == 2
            assert server.statuses[502] == 2 + 1 + 3

            server.fail_next(0)
            server.blocked.add(6)
            with pytest.raises(DeliveryError) as blocked:
                await call_with_retry(lambda: bot.send_message(6, "x"), what="t")
            assert blocked.value.blocked
        finally:
            await bot.session.close()
