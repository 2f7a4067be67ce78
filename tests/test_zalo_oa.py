"""The Zalo OA channel over real HTTP, against the local fake OA platform.

The real flows and the real channel behind a real web server: follow → onboarding, query
buttons (at most five, tapped back as text) or numbered text, the webhook signature, duplicate
events, the rotating token pair persisted before use and after a restart, and the 7-day
interaction window reported as unreachable through the outbox.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
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

from bot.channels.zalo_oa import (
    ZaloOAChannel,
    oa_messages,
    parse_event,
    signature,
    signature_matches,
)
from bot.delivery import DeliveryError
from bot.outbox import OutboxDispatcher
from handlers.engine.flow import EngineConfig
from handlers.engine.prompt import Address, Choice, OutFile, Outgoing, Reply
from handlers.engine.runner import Engine, queue_outgoing
from handlers.flows import build_engine
from handlers.i18n import _, use_locale
from storage.channel_state import read_secret
from storage.models import OutboxMessage, Registration
from tests.factories import make_org
from tests.fakes.zalo_oa import (
    APP_ID,
    OA_SECRET,
    SEED_ACCESS,
    SEED_REFRESH,
    FakeZaloOA,
    OASent,
    OAUser,
)
from tests.proof import personal_code

JAN_10 = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)
TOKENS = "zalo_oa.tokens"


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110 - a counter the channel bumps, no event to await
            await asyncio.sleep(0.01)


def new_channel(engine: Engine, oa: FakeZaloOA) -> ZaloOAChannel:
    """The channel as the settings would make it: seed tokens from ZALO_OA_* variables."""
    return ZaloOAChannel(
        engine,
        APP_ID,
        OA_SECRET,
        access_token=SEED_ACCESS,
        refresh_token=SEED_REFRESH,
        api_base=oa.base_url,
        oauth_base=oa.base_url,
        retry_delay=0.01,
        rate_limit_wait=0.01,
    )


@dataclass
class Harness:
    oa: FakeZaloOA
    channel: ZaloOAChannel
    engine: Engine
    sessionmaker: async_sessionmaker[AsyncSession]
    url: str

    def user(self, user_id: str = "246845883529197922") -> OAUser:
        return OAUser(self.oa, user_id)

    async def restart(self) -> None:
        """A new process: a new channel on the same database and the same settings."""
        await self.channel.stop()
        self.channel = new_channel(self.engine, self.oa)
        await self.channel.start()


@pytest.fixture
async def oa(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[Harness]:
    await make_org(sessionmaker)
    engine = build_engine(sessionmaker, EngineConfig(now=lambda: JAN_10))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/zalo-oa/webhook"
    async with FakeZaloOA() as fake:
        harness = Harness(fake, new_channel(engine, fake), engine, sessionmaker, url)

        async def webhook(request: web.Request) -> web.Response:
            # Through the harness, so a restarted channel takes the next events.
            return await harness.channel.handle_webhook(request)

        root = web.Application()  # the composition root's web server, say
        root.router.add_post("/zalo-oa/webhook", webhook)
        runner = web.AppRunner(root, handle_signals=False)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        fake.webhook_url = url
        await harness.channel.start()
        try:
            yield harness
        finally:
            await harness.channel.stop()
            await runner.cleanup()


def assert_buttons_or_numbers(messages: list[OASent]) -> None:
    """Every question shows at most five buttons; a longer list comes as numbered text."""
    for msg in messages:
        assert len(msg.buttons) <= 5
        assert len(msg.text) <= 2000
        for button in msg.buttons:
            assert button["type"] in ("oa.query.show", "oa.query.hide")


# --- the member's journey --------------------------------------------------------------------


async def test_follow_starts_onboarding_and_buttons_register_a_title(
    oa: Harness, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    user = oa.user()
    assert await user.follow() == 200
    await user.wait_for("0912 345 678")  # following the OA opens onboarding
    code = await user.say("0987 654 321", "mã cá nhân")
    with use_locale("vi"):
        no_code, back, cancel = _("I have no code"), _("« Back"), _("✖ Cancel")
    assert code.titles == [no_code, back, cancel]
    # A typed phone is proven by the personal code from the leader (issue 12).
    await user.send((await personal_code(sessionmaker, now=JAN_10)).lower())
    menu = await user.wait_for("Công ty May Bắc Kạn")

    if menu.buttons:
        await user.tap("Đăng ký danh hiệu")
    else:  # more than five entries: numbered, answered by the label
        assert re.search(r"^1\. ", menu.text, re.M), menu.text
        await user.send("dang ky danh hieu")
    titles = await user.wait_for("25/01/2027")
    if titles.buttons:
        await user.tap("Lao động tiên tiến")
    else:
        await user.send("1")
    await user.wait_for("cam kết")
    await user.tap("Bỏ qua")
    await user.wait_for("Xác nhận")
    await user.tap("Xác nhận")
    await user.wait_for("TD2027-000001")

    assert_buttons_or_numbers(oa.oa.sent)
    async with sessionmaker() as session:
        reg = await session.scalar(select(Registration))
    assert reg is not None and reg.title_code == "LDTT"


async def test_a_known_person_who_follows_again_is_greeted(
    oa: Harness, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    user = oa.user()
    await user.follow()
    await user.wait_for("0912 345 678")
    await user.send("0912345678")  # the rostered member of the factory, typed
    await user.wait_for("mã cá nhân")  # a typed number is proven by her personal code
    await user.send(await personal_code(sessionmaker, phone="0912345678", now=JAN_10))
    await user.wait_for("Công ty May Bắc Kạn")
    assert await user.unfollow() == 200  # only logged
    await user.follow()
    await user.wait_for("Chào bạn Hoa")


async def test_unreadable_messages_get_a_friendly_answer(oa: Harness) -> None:
    user = oa.user()
    await user.send_sticker()
    with use_locale("vi"):
        expected = _("Sorry, I can only read typed text here. Please type your answer.")
    answer = (await user.wait_for(expected)).text
    assert answer.startswith(expected) and "số điện thoại" in answer  # the question again


# --- rendering -------------------------------------------------------------------------------


def _choices(n: int) -> tuple[Choice, ...]:
    return tuple(Choice(f"c{i}", f"Lựa chọn số {i}") for i in range(1, n + 1))


async def test_up_to_five_choices_are_query_buttons_carrying_their_label(oa: Harness) -> None:
    nav = (Choice("_back", "« Quay lại"), Choice("_cancel", "✖ Hủy"))
    await oa.channel.send("u5", Reply("Chọn một:", choices=_choices(3) + nav))
    [sent] = oa.oa.messages("u5")
    assert sent.text == "Chọn một:"
    assert sent.buttons == [
        {"title": c.label, "type": "oa.query.show", "payload": c.label} for c in _choices(3) + nav
    ]


async def test_more_than_five_choices_fall_back_to_numbered_text(oa: Harness) -> None:
    await oa.channel.send("u6", Reply("Chọn một:", choices=_choices(6)))
    [sent] = oa.oa.messages("u6")
    assert sent.buttons == []
    assert "1. Lựa chọn số 1" in sent.text and "6. Lựa chọn số 6" in sent.text


def test_plain_replies_join_the_question_and_long_ones_are_split() -> None:
    long_text = " ".join(f"từ{i:04d}" for i in range(700))
    with use_locale("vi"):
        messages = oa_messages(
            [
                Reply("Cảm ơn bạn!"),
                Reply(long_text),
                Reply("Tiếp tục?", choices=(Choice("yes", "Có"), Choice("!ok:3", "Duyệt"))),
                Reply("Báo cáo", file=OutFile("bao-cao.xlsx", b"x", "application/xlsx")),
            ]
        )
    assert all(len(m["text"]) <= 2000 for m in messages)
    assert messages[0]["text"] == "Cảm ơn bạn!"  # split at the paragraph first
    with_buttons = [m for m in messages if "attachment" in m]
    assert len(with_buttons) == 1 and with_buttons[0]["text"].endswith("Tiếp tục?")
    buttons = with_buttons[0]["attachment"]["payload"]["buttons"]
    # A notification action travels hidden, by its id, and comes back as one.
    assert buttons[1] == {"title": "Duyệt", "type": "oa.query.hide", "payload": "!ok:3"}
    assert "bao-cao.xlsx" in messages[-1]["text"]
    words = " ".join(m["text"] for m in messages).split()
    assert [w for w in words if w.startswith("từ")] == long_text.split()


def test_events_are_read_as_text_actions_files_or_unreadable() -> None:
    def event(name: str, **message: object) -> dict[str, object]:
        return {"event_name": name, "sender": {"id": "u1"}, "timestamp": "1", "message": message}

    text = parse_event(event("user_send_text", text="Có", msg_id="m1"))
    assert text is not None and text.incoming is not None and text.incoming.text == "Có"
    action = parse_event(event("user_send_text", text="!ok:3", msg_id="m2"))
    assert action is not None and action.incoming is not None
    assert action.incoming.choice_id == "!ok:3" and action.incoming.text is None
    image = parse_event(
        event(
            "user_send_image",
            msg_id="m3",
            attachments=[{"type": "image", "payload": {"url": "https://f/a.jpg"}}],
        )
    )
    assert image is not None and image.incoming is not None and image.incoming.file is not None
    assert (image.incoming.file.file_id, image.incoming.file.mime) == (
        "https://f/a.jpg",
        "image/jpeg",
    )
    doc = parse_event(
        event(
            "user_send_file",
            msg_id="m4",
            attachments=[
                {"type": "file", "payload": {"url": "https://f/b", "name": "sk.pdf", "size": "42"}}
            ],
        )
    )
    assert doc is not None and doc.incoming is not None and doc.incoming.file is not None
    assert (doc.incoming.file.filename, doc.incoming.file.mime, doc.incoming.file.size) == (
        "sk.pdf",
        "application/pdf",
        42,
    )
    assert parse_event({"event_name": "user_seen_message", "sender": {"id": "u1"}}) is None
    follow = parse_event({"event_name": "follow", "follower": {"id": "u9"}, "timestamp": "5"})
    assert follow is not None and follow.incoming is not None
    assert follow.incoming.text == "/start" and follow.key == "follow:u9:5"


# --- the webhook -----------------------------------------------------------------------------


def test_the_signature_is_plain_sha256_of_app_id_body_timestamp_and_secret() -> None:
    body = b'{"event_name":"user_send_text"}'
    mac = signature("123", body, "1700000000000", "key")
    assert mac == hashlib.sha256(b"123" + body + b"1700000000000key").hexdigest()
    assert signature_matches(f"mac={mac}", "123", body, "1700000000000", "key")
    assert not signature_matches(f"mac={mac}", "123", body + b" ", "1700000000000", "key")
    assert not signature_matches("mac=", "123", body, "1700000000000", "key")


async def test_a_wrong_or_missing_signature_is_rejected(oa: Harness) -> None:
    user = oa.user("intruder")
    event = user.text_event("/start")
    raw = json.dumps(event).encode()
    forged = oa.oa.sign(raw, event["timestamp"], secret="guessed-secret")
    assert await oa.oa.post_event(event, signature=forged, body=raw) == 403
    tampered = raw.replace(b"/start", b"/help!")
    good_mac = oa.oa.sign(raw, event["timestamp"])
    assert await oa.oa.post_event(event, signature=good_mac, body=tampered) == 403
    async with (
        aiohttp.ClientSession() as client,
        client.post(oa.url, data=raw, headers={"Content-Type": "application/json"}) as resp,
    ):
        assert resp.status == 401
    await asyncio.sleep(0.2)
    assert oa.oa.messages("intruder") == []

    assert await oa.oa.post_event(event, signature=good_mac, body=raw) == 200
    await user.wait_for("0912 345 678")


async def test_an_event_delivered_again_is_answered_once(oa: Harness) -> None:
    user = oa.user()
    event = user.text_event("/start")
    statuses = await asyncio.gather(*(oa.oa.post_event(event) for _ in range(3)))
    assert statuses == [200, 200, 200]
    await user.wait_for("0912 345 678")
    await until(lambda: oa.channel.runner.duplicates == 2)
    assert len(oa.oa.messages(user.user_id)) == 1

    await oa.restart()  # a restarted process remembers it too
    assert await oa.oa.post_event(event) == 200
    await until(lambda: oa.channel.runner.duplicates == 1)
    assert len(oa.oa.messages(user.user_id)) == 1


# --- tokens ----------------------------------------------------------------------------------


async def test_an_expired_token_is_refreshed_and_the_new_pair_saved_before_use(
    oa: Harness, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    stored_when_used: dict[str, str | None] = {}

    async def check_store(token: str) -> None:
        if token not in stored_when_used:
            async with sessionmaker() as session:
                stored = await read_secret(session, TOKENS)
            stored_when_used[token] = (stored or {}).get("refresh_token")

    oa.oa.on_accept = check_store
    await oa.channel.send("u1", Reply("trước khi hết hạn"))
    oa.oa.expire_access_token()
    await oa.channel.send("u1", Reply("sau khi làm mới"))

    assert [m.access_token for m in oa.oa.messages("u1")] == ["access-1", "access-2"]
    [call] = oa.oa.refresh_calls
    assert call.accepted and call.secret_key == OA_SECRET
    assert call.form == {
        "refresh_token": "refresh-1",
        "app_id": APP_ID,
        "grant_type": "refresh_token",
    }
    # When access-2 was first used, refresh-2 was already in the database.
    assert stored_when_used["access-2"] == "refresh-2"

    # A restart with the same (now spent) settings takes the pair from the database ...
    await oa.restart()
    await oa.channel.send("u1", Reply("sau khi khởi động lại"))
    assert oa.oa.messages("u1")[-1].access_token == "access-2"
    # ... and refreshes with the rotated refresh token, not the one in the settings.
    oa.oa.expire_access_token()
    await oa.channel.send("u1", Reply("lần làm mới thứ hai"))
    assert [c.form["refresh_token"] for c in oa.oa.refresh_calls] == ["refresh-1", "refresh-2"]
    assert all(c.accepted for c in oa.oa.refresh_calls)
    assert oa.oa.messages("u1")[-1].access_token == "access-3"
    assert await oa.channel.tokens.stored_refresh_token() == "refresh-3"


async def test_concurrent_sends_refresh_once(oa: Harness) -> None:
    oa.oa.expire_access_token()
    await asyncio.gather(*(oa.channel.send(f"u{i}", Reply(f"tin {i}")) for i in range(5)))
    assert len(oa.oa.refresh_calls) == 1
    assert len(oa.oa.sent) == 5


async def test_new_tokens_in_the_settings_replace_a_lost_chain(
    oa: Harness, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    oa.oa.expire_access_token()
    await oa.channel.send("u1", Reply("xoay vòng"))  # the database now holds refresh-2
    # The operator issues a new pair by hand and puts it in the settings.
    oa.oa.access_token, oa.oa.refresh_token = "access-manual", "refresh-manual"
    await oa.channel.stop()
    oa.channel = ZaloOAChannel(
        oa.engine,
        APP_ID,
        OA_SECRET,
        access_token="access-manual",
        refresh_token="refresh-manual",
        api_base=oa.oa.base_url,
        oauth_base=oa.oa.base_url,
        retry_delay=0.01,
    )
    await oa.channel.start()
    await oa.channel.send("u1", Reply("bằng cặp mới"))
    assert oa.oa.messages("u1")[-1].access_token == "access-manual"


async def test_a_refused_refresh_is_a_delivery_error(oa: Harness) -> None:
    oa.oa.refresh_token = "someone-else-used-it"
    oa.oa.expire_access_token()
    with pytest.raises(DeliveryError):
        await oa.channel.send("u1", Reply("không tới"))


# --- delivery errors -------------------------------------------------------------------------


async def test_rate_limits_and_server_errors_are_retried(oa: Harness) -> None:
    oa.oa.rate_limited_next = 2
    oa.oa.server_errors_next = 1
    await oa.channel.send("u1", Reply("vẫn tới"))
    assert [m.text for m in oa.oa.messages("u1")] == ["vẫn tới"]
    assert oa.oa.errors.count(-32) == 2


async def test_outside_the_interaction_window_is_reported_as_unreachable(
    oa: Harness, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    oa.oa.out_of_window.add("silent")
    with pytest.raises(DeliveryError) as error:
        await oa.channel.send("silent", Reply("Nhắc hạn đăng ký"))
    assert error.value.unreachable and not error.value.blocked
    assert error.value.kind == "unreachable"

    # A reminder queued for that person: the outbox settles it as such, without retrying.
    async with sessionmaker() as session, session.begin():
        queue_outgoing(session, [Outgoing(Address("zalo_oa", "silent"), Reply("Nhắc hạn"))])
    dispatcher = OutboxDispatcher(sessionmaker, {"zalo_oa": oa.channel})
    assert await dispatcher.deliver_pending() == 0
    async with sessionmaker() as session:
        row = await session.scalar(select(OutboxMessage))
    assert row is not None and row.outcome == "unreachable" and row.attempts == 1


# --- hostile webhook calls (issue 12) ---------------------------------------------------------


async def test_an_old_event_is_refused_even_with_a_good_signature(oa: Harness) -> None:
    """Before: an event dated 2020 was processed, and signed bytes again after 7 days."""
    user = oa.user("replayer")
    old = user.text_event("/start")
    old["timestamp"] = "1577836800000"  # 2020-01-01
    assert await oa.oa.post_event(old) == 400
    eleven_minutes = str(int(datetime.now(UTC).timestamp() * 1000) - 11 * 60 * 1000)
    late = user.text_event("/start")
    late["timestamp"] = eleven_minutes
    assert await oa.oa.post_event(late) == 400
    await asyncio.sleep(0.3)
    assert oa.oa.messages("replayer") == []
    # A fresh one goes through.
    assert await oa.oa.post_event(user.text_event("/start")) == 200
    await user.wait_for("0912 345 678")


async def test_a_deeply_nested_body_gets_a_4xx_not_a_500(oa: Harness) -> None:
    """Before: 8,000 nested arrays gave a 500 with a traceback, before the signature check."""
    user = oa.user("nester")
    event = user.text_event("/start")
    deep = b"[" * 8000 + b"]" * 8000
    raw = json.dumps(event).encode()[:-1] + b', "x": ' + deep + b"}"
    unsigned = "mac=" + "0" * 64
    assert await oa.oa.post_event(event, signature=unsigned, body=raw) == 403
    signed = oa.oa.sign(raw, event["timestamp"])
    assert await oa.oa.post_event(event, signature=signed, body=raw) == 400
    await asyncio.sleep(0.3)
    assert oa.oa.messages("nester") == []


async def test_a_signed_24_kb_message_passes_the_web_chats_server(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Before: the OA route sat behind the web chat's 16 KB limit and refused it."""
    from bot.channels.web import MAX_BODY

    await make_org(sessionmaker)
    engine = build_engine(sessionmaker, EngineConfig(now=lambda: JAN_10))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/zalo-oa/webhook"
    async with FakeZaloOA() as fake:
        channel = new_channel(engine, fake)
        app = web.Application(client_max_size=MAX_BODY)  # the web chat's server
        app.add_routes(channel.webhook_routes("/zalo-oa/webhook"))
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        fake.webhook_url = url
        await channel.start()
        try:
            user = OAUser(fake, "long-writer")
            event = user.text_event("/start")
            event["padding"] = "x" * 24 * 1024
            assert await fake.post_event(event) == 200
            await user.wait_for("0912 345 678")
            event = user.text_event("/start")
            event["padding"] = "x" * 300 * 1024  # above Zalo's own 256 KB
            assert await fake.post_event(event) == 413
        finally:
            await channel.stop()
            await runner.cleanup()
