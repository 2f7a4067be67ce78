"""The web chat over real HTTP: a WebChannel on a free port, driven with an aiohttp client.

Runs on SQLite and PostgreSQL (the ``sessionmaker`` fixture), like the engine's own tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Core
from bot.channels.web import (
    COOKIE,
    CSRF_HEADER,
    CSRF_VALUE,
    MAX_BODY,
    SESSION_LIFETIME,
    SIGNIN_FAILURES,
    SIGNIN_PER_CODE,
    WebChannel,
    render_page,
    serve_web,
)
from bot.config import Settings
from bot.demo import DemoRefused, load_demo
from bot.outbox import OutboxDispatcher
from handlers.engine.flow import EngineConfig
from handlers.engine.prompt import Choice, OutFile, Reply
from handlers.flows import build_engine
from handlers.i18n import use_locale
from handlers.text import fold
from storage.invites import create_invite
from storage.models import (
    ChannelIdentity,
    OutboxMessage,
    Person,
    Registration,
    UnitRole,
    WebMessage,
    WebSession,
)
from storage.types import utcnow
from tests.factories import Org, make_org
from tests.proof import personal_code

JAN_10 = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)


async def start_channel(
    sessionmaker: async_sessionmaker[AsyncSession], *, demo: bool
) -> WebChannel:
    engine = build_engine(sessionmaker, EngineConfig(now=lambda: JAN_10))
    channel = WebChannel(engine, sessionmaker, "127.0.0.1", 0, demo=demo)
    await channel.start()
    return channel


@pytest.fixture
async def org(sessionmaker: async_sessionmaker[AsyncSession]) -> Org:
    return await make_org(sessionmaker)


@pytest.fixture
async def web(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[WebChannel]:
    channel = await start_channel(sessionmaker, demo=False)
    try:
        yield channel
    finally:
        await channel.stop()


@pytest.fixture
async def demo_web(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[WebChannel]:
    await load_demo(sessionmaker, today=date(2027, 1, 10))
    channel = await start_channel(sessionmaker, demo=True)
    try:
        yield channel
    finally:
        await channel.stop()


async def new_invite(sessionmaker: async_sessionmaker[AsyncSession], role: str, unit: str) -> str:
    async with sessionmaker() as session, session.begin():
        return (await create_invite(session, role, unit)).code


@dataclass
class Browser:
    """A person at the page, seen through its JSON API: signs in, types, taps buttons."""

    http: aiohttp.ClientSession
    base: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    last: list[dict[str, Any]] = field(default_factory=list)

    async def post(self, path: str, body: dict[str, Any]) -> aiohttp.ClientResponse:
        return await self.http.post(self.base + path, json=body, headers={CSRF_HEADER: CSRF_VALUE})

    async def signin(self, **body: str) -> aiohttp.ClientResponse:
        response = await self.post("/api/signin", body)
        if response.status == 200:
            await self.inbox(after=0)
        return response

    async def inbox(self, after: int | None = None) -> list[dict[str, Any]]:
        if after is None:
            after = max((m["id"] for m in self.messages), default=0)
        async with self.http.get(f"{self.base}/api/inbox?after={after}") as response:
            assert response.status == 200, await response.text()
            new = [m for m in (await response.json())["messages"] if m not in self.messages]
        self.messages += new
        self.last = new
        return new

    async def _send(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        response = await self.post("/api/send", body)
        assert response.status == 200, await response.text()
        self.last = (await response.json())["messages"]
        self.messages += self.last
        return self.last

    async def say(self, text: str) -> list[dict[str, Any]]:
        return await self._send({"text": text})

    async def tap(self, label: str) -> list[dict[str, Any]]:
        for message in reversed(self.messages):
            for choice in message["choices"]:
                if fold(label) in fold(choice["label"]):
                    return await self._send({"choice_id": choice["id"], "seq": message["seq"]})
        raise AssertionError(f"no button {label!r}:\n{self.transcript()}")

    def text(self) -> str:
        return "\n".join(m["text"] for m in self.last if m["from"] == "bot")

    def transcript(self) -> str:
        return "\n---\n".join(f"[{m['from']}] {m['text']}" for m in self.messages)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # unsafe=True: aiohttp's jar otherwise refuses cookies from an IP address like 127.0.0.1.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


def browser(http: aiohttp.ClientSession, channel: WebChannel) -> Browser:
    return Browser(http, channel.url.rstrip("/"))


# --- the page --------------------------------------------------------------------------------


async def test_page_is_self_contained_vietnamese_and_locked_down(web: WebChannel, http) -> None:
    async with http.get(web.url) as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        page = await response.text()
        headers = response.headers
    assert '<html lang="vi">' in page
    assert "Đăng nhập" in page and "Mã đăng nhập" in page
    # Nothing from elsewhere: no external scripts, styles, fonts or images.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "@import" not in page and "url(" not in page
    nonce = re.search(r"script-src 'nonce-([^']+)'", headers["Content-Security-Policy"])
    assert nonce is not None
    assert f'<script nonce="{nonce.group(1)}">' in page
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    # The role picker is for the demo only.
    assert 'data-role="leader"' not in page
    async with http.get(web.url) as again:
        assert nonce.group(1) not in again.headers["Content-Security-Policy"]  # fresh each time


def test_page_texts_are_escaped() -> None:
    with use_locale("vi"):
        page = render_page("n0nce", demo=True)
    # The demo names are inserted as text; the script data cannot close its <script> element.
    assert "Lương Văn Tuấn" in page
    data = page.split('<script type="application/json" id="texts">', 1)[1].split("</script>")[0]
    assert "<" not in data
    from bot.channels.web import _script_json

    assert _script_json({"x": "</script><b>"}) == '{"x": "\\u003c/script\\u003e\\u003cb\\u003e"}'


# --- signing in ----------------------------------------------------------------------------


async def test_invite_code_signs_in_then_onboarding_and_registration(
    web: WebChannel, http, org: Org, sessionmaker
) -> None:
    code = await new_invite(sessionmaker, "member", "CDCS-MAY")
    person = browser(http, web)
    response = await person.signin(code=code)
    assert response.status == 200
    assert "số điện thoại" in person.text()  # onboarding asks the phone first
    assert person.messages[-1]["phone"] is True
    await person.say("0987 654 321")
    assert "mã cá nhân" in person.text()  # a typed phone is only a claim (issue 12)
    await person.say(await personal_code(sessionmaker, now=JAN_10))
    assert "Cảm ơn bạn Bình!" in person.text()
    async with http.get(web.url + "api/me") as me:
        assert (await me.json())["name"] == "Trần Văn Bình"

    await person.tap("Đăng ký danh hiệu")
    assert "25/01/2027" in person.text()
    await person.say("lao dong tien tien")
    await person.say("Hoàn thành 110% kế hoạch")
    await person.tap("Xác nhận")
    assert "TD2027-000001" in person.text()
    # The person's own bubbles are kept too: a tap shows the button's label.
    assert {"from": "me", "text": "✅ Xác nhận"} in [
        {"from": m["from"], "text": m["text"]} for m in person.messages
    ]
    async with sessionmaker() as session:
        reg = await session.scalar(select(Registration))
        assert reg is not None and (reg.title_code, reg.status) == ("LDTT", "submitted")
        identity = await session.scalar(
            select(ChannelIdentity).where(ChannelIdentity.channel == "web")
        )
        assert identity is not None and identity.person_id == reg.person_id

    # A reload shows the same conversation, in order.
    reloaded = browser(http, web)
    await reloaded.inbox(after=0)
    assert [m["id"] for m in reloaded.messages] == sorted(m["id"] for m in person.messages)


async def test_bad_or_used_up_code_is_refused(
    web: WebChannel, http, org: Org, sessionmaker
) -> None:
    person = browser(http, web)
    response = await person.signin(code="not-a-real-code")
    assert response.status == 403
    assert "không hợp lệ" in (await response.json())["error"]
    assert COOKIE not in response.cookies
    async with sessionmaker() as session, session.begin():
        invite = await create_invite(session, "member", "CDCS-MAY", max_uses=1)
        invite.uses = 1
        code = invite.code
    assert (await person.signin(code=code)).status == 403
    # Without demo mode there is no role picker to fall back on.
    assert (await person.signin(role="member")).status == 400
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(WebSession)) == 0


async def test_demo_roles_sign_in_as_demo_people(demo_web: WebChannel, http, sessionmaker) -> None:
    leader = browser(http, demo_web)
    assert (await leader.signin(role="leader")).status == 200
    assert "Chào bạn Tuấn" in leader.text()
    async with http.get(demo_web.url + "api/me") as me:
        assert await me.json() == {"signed_in": True, "name": "Lương Văn Tuấn", "demo": True}
    async with http.get(demo_web.url) as page:
        text = await page.text()
        assert 'data-role="officer"' in text and "Bế Thị Hạnh" in text

    # Signing in as the same role again (another phone) continues the same conversation.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        second = browser(other, demo_web)
        assert (await second.signin(role="leader")).status == 200
        assert {m["id"] for m in leader.messages} <= {m["id"] for m in second.messages}

    async with sessionmaker() as session:
        roles = {
            (r.role, r.person_id)
            for r in await session.scalars(select(UnitRole).where(UnitRole.role != "member"))
        }
        web_people = set(
            await session.scalars(
                select(ChannelIdentity.person_id).where(ChannelIdentity.channel == "web")
            )
        )
    assert {role for role, _pid in roles} == {"leader", "officer"}
    assert len(web_people) == 1

    newcomer = browser(http, demo_web)
    assert (await newcomer.signin(role="new")).status == 200
    assert "số điện thoại" in newcomer.text()
    assert (await newcomer.signin(role="admin")).status == 400


async def test_cookie_is_httponly_strict_and_only_its_hash_is_stored(
    web: WebChannel, http, org: Org, sessionmaker
) -> None:
    code = await new_invite(sessionmaker, "member", "CDCS-MAY")
    response = await browser(http, web).post("/api/signin", {"code": code})
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"
    assert int(cookie["max-age"]) > 30 * 24 * 3600
    token = cookie.value
    assert len(token) >= 43  # token_urlsafe(32): 256 bits
    async with sessionmaker() as session:
        row = await session.scalar(select(WebSession))
        identity = await session.scalar(select(ChannelIdentity))
    assert row is not None and identity is not None
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in (row.token_hash, row.external_id, identity.external_id)
    assert identity.external_id == row.external_id

    # Signing out forgets the session on the server, not only in the browser.
    signout = await browser(http, web).post("/api/signout", {})
    assert signout.status == 200
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(WebSession)) == 0
    http.cookie_jar.update_cookies({COOKIE: token})  # a copy of the old cookie
    async with http.get(web.url + "api/inbox") as inbox:
        assert inbox.status == 401


# --- cross-site requests, sizes, escaping ---------------------------------------------------


async def test_posts_without_the_header_or_from_elsewhere_are_refused(
    web: WebChannel, http, org: Org, sessionmaker
) -> None:
    code = await new_invite(sessionmaker, "member", "CDCS-MAY")
    person = browser(http, web)
    assert (await person.signin(code=code)).status == 200
    before = len(person.messages)
    url = web.url + "api/send"
    # A cross-site form: no custom header, a form content type.
    async with http.post(url, data={"text": "0987654321"}) as response:
        assert response.status == 403
    # A script elsewhere that copies the header still sends its own Origin.
    async with http.post(
        url,
        json={"text": "0987654321"},
        headers={CSRF_HEADER: CSRF_VALUE, "Origin": "http://evil.example"},
    ) as response:
        assert response.status == 403
    async with http.post(
        url, data="text=1", headers={CSRF_HEADER: CSRF_VALUE, "Content-Type": "text/plain"}
    ) as response:
        assert response.status == 415
    async with http.post(
        url, json={"text": "x" * (MAX_BODY + 10)}, headers={CSRF_HEADER: CSRF_VALUE}
    ) as response:
        assert response.status == 413
    async with http.post(
        url, json={"text": "x" * 4001}, headers={CSRF_HEADER: CSRF_VALUE}
    ) as response:
        assert response.status == 400
        assert "quá dài" in (await response.json())["error"]
    async with http.post(url, json=["x"], headers={CSRF_HEADER: CSRF_VALUE}) as response:
        assert response.status == 400
    async with http.post(
        url, json={"choice_id": "é" * 3, "seq": 1}, headers={CSRF_HEADER: CSRF_VALUE}
    ) as response:
        assert response.status == 400
    # The same origin is fine.
    async with http.post(
        url,
        json={"text": "0987654321"},
        headers={CSRF_HEADER: CSRF_VALUE, "Origin": web.url.rstrip("/")},
    ) as response:
        assert response.status == 200
        accepted = (await response.json())["messages"]
    # Only the accepted message (its bubble and the answers) was kept; the refused ones left
    # no trace.
    assert accepted[0]["from"] == "me"
    async with sessionmaker() as session:
        count = await session.scalar(select(func.count()).select_from(WebMessage))
    assert count == before + len(accepted)


async def test_not_signed_in_is_401(web: WebChannel, http) -> None:
    person = browser(http, web)
    assert (await person.post("/api/send", {"text": "hello"})).status == 401
    async with http.get(web.url + "api/inbox") as response:
        assert response.status == 401
        assert "đăng nhập" in (await response.json())["error"].lower()
    async with http.get(web.url + "api/me") as response:
        assert (await response.json())["signed_in"] is False


async def test_user_text_comes_back_as_data_never_as_markup(
    web: WebChannel, http, org: Org, sessionmaker
) -> None:
    code = await new_invite(sessionmaker, "member", "CDCS-MAY")
    person = browser(http, web)
    await person.signin(code=code)
    await person.say("0987654321")
    await person.tap("không có mã")
    await person.tap("tìm đơn vị khác")
    attack = "<img src=x onerror=alert(1)>"
    response = await person.post("/api/send", {"text": attack})
    assert response.content_type == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    messages = (await response.json())["messages"]
    assert messages[0] == {**messages[0], "from": "me", "text": attack}
    # The page itself never holds conversation text: it is drawn with textContent.
    async with http.get(web.url) as page:
        body = await page.text()
    assert attack not in body
    assert "innerHTML" not in body and "insertAdjacentHTML" not in body


# --- messages from others -----------------------------------------------------------------


async def test_outbox_messages_and_files_reach_the_page(
    web: WebChannel, http, org: Org, sessionmaker
) -> None:
    code = await new_invite(sessionmaker, "member", "CDCS-MAY")
    person = browser(http, web)
    await person.signin(code=code)
    async with sessionmaker() as session:
        external_id = await session.scalar(select(WebSession.external_id))
    assert external_id is not None

    # Queued by someone else's update, delivered by the dispatcher through send().
    async with sessionmaker() as session, session.begin():
        session.add(
            OutboxMessage(
                channel="web",
                external_id=external_id,
                payload={
                    "text": "Danh sách của đơn vị đã được duyệt.",
                    "choices": [["!ok:1", "Xem"]],
                },
            )
        )
    dispatcher = OutboxDispatcher(sessionmaker, {"web": web})
    assert await dispatcher.deliver_pending() == 1
    new = await person.inbox()
    assert [m["text"] for m in new] == ["Danh sách của đơn vị đã được duyệt."]
    assert new[0]["choices"] == [{"id": "!ok:1", "label": "Xem", "nav": False}]
    assert new[0]["seq"] is None
    assert await person.inbox() == []  # nothing twice

    await web.send(
        external_id,
        Reply("Báo cáo", (Choice("x", "X"),), file=OutFile("báo cáo.csv", b"a;b\n", "text/csv")),
    )
    (message,) = await person.inbox()
    assert message["file"] == {"name": "báo cáo.csv", "image": False}
    async with http.get(f"{web.url}api/file/{message['id']}") as response:
        assert response.status == 200
        assert await response.read() == b"a;b\n"
        assert response.headers["Content-Disposition"].startswith("attachment;")
        assert "%C3%A1o" in response.headers["Content-Disposition"]
    # Another person cannot fetch it.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        stranger = browser(other, web)
        await stranger.signin(code=await new_invite(sessionmaker, "member", "CDCS-MAY"))
        async with other.get(f"{web.url}api/file/{message['id']}") as response:
            assert response.status == 404
        assert await stranger.inbox(after=message["id"] - 1) == []


async def test_a_stale_button_is_answered_with_the_current_question(
    web: WebChannel, http, org: Org, sessionmaker
) -> None:
    code = await new_invite(sessionmaker, "member", "CDCS-MAY")
    person = browser(http, web)
    await person.signin(code=code)
    await person.say("0987654321")
    await person.tap("không có mã")
    old = next(m for m in reversed(person.messages) if m["choices"])
    await person.tap("Đúng")
    await person.say("Trần Văn Bình")
    await person._send({"choice_id": old["choices"][0]["id"], "seq": old["seq"]})
    assert "câu hỏi trước" in person.text()


# --- wiring ------------------------------------------------------------------------------


async def test_serve_web_runs_until_cancelled_and_delivers_the_outbox(
    sessionmaker, engine, monkeypatch, capsys
) -> None:
    """What `thidua run` (no token) and `thidua demo` call: the site and its outbox delivery."""
    await load_demo(sessionmaker, today=date(2027, 1, 10))
    monkeypatch.setenv("THIDUA_WEB_HOST", "127.0.0.1")
    monkeypatch.setenv("THIDUA_WEB_PORT", "0")
    flows = build_engine(sessionmaker, EngineConfig(now=lambda: JAN_10))
    task = asyncio.create_task(serve_web(Core(engine, sessionmaker, flows), Settings(), demo=True))
    printed = ""
    for _attempt in range(100):
        printed += capsys.readouterr().out
        if "http://" in printed:
            break
        await asyncio.sleep(0.05)
    url = re.search(r"http://\S+/", printed)
    assert url is not None, printed
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            person = Browser(http, url.group(0).rstrip("/"))
            assert (await person.signin(role="member")).status == 200
            async with sessionmaker() as session, session.begin():
                external_id = await session.scalar(select(WebSession.external_id))
                session.add(
                    OutboxMessage(channel="web", external_id=external_id, payload={"text": "Hi"})
                )
            assert flows.on_queued is not None  # serve_web wired the dispatcher's nudge
            flows.on_queued()  # as the engine does after a commit that queued messages
            for _attempt in range(100):
                if await person.inbox():
                    break
                await asyncio.sleep(0.05)
            assert person.last[-1]["text"] == "Hi"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(url.group(0))


async def test_start_drops_sessions_unused_for_too_long(sessionmaker) -> None:
    async with sessionmaker() as session, session.begin():
        session.add(WebSession(token_hash="a" * 64, external_id="w1"))
        session.add(
            WebSession(
                token_hash="b" * 64,
                external_id="w2",
                last_seen_at=utcnow() - SESSION_LIFETIME - timedelta(days=1),
            )
        )
    channel = await start_channel(sessionmaker, demo=False)
    await channel.stop()
    async with sessionmaker() as session:
        assert list(await session.scalars(select(WebSession.external_id))) == ["w1"]


# --- identities that hold (issue 12) ---------------------------------------------------------


async def test_signing_out_and_in_again_reaches_the_own_account(
    web: WebChannel, http, org: Org, sessionmaker
) -> None:
    """Before: after signing out, typing one's own phone gave "Số điện thoại này đã được dùng
    cho một tài khoản khác", a dead end; the same after a lost cookie or a new browser."""
    code = await new_invite(sessionmaker, "member", "CDCS-MAY")
    first = browser(http, web)
    await first.signin(code=code)
    await first.say("0912 345 678")
    await first.say(await personal_code(sessionmaker, phone="0912345678", now=JAN_10))
    assert "Cảm ơn bạn Hoa!" in first.text()
    assert (await first.post("/api/signout", {})).status == 200

    # Signed in again (a new cookie is a new web chat): the same proof, the same account.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        again = browser(other, web)
        await again.signin(code=code)
        await again.say("0912345678")
        assert "tài khoản khác" not in again.text()
        await again.say(await personal_code(sessionmaker, phone="0912345678", now=JAN_10))
        assert "Chào bạn Hoa!" in again.text()
        async with other.get(web.url + "api/me") as me:
            assert (await me.json())["name"] == "Nguyễn Thị Hoa"
    async with sessionmaker() as session:
        linked = list(
            await session.scalars(
                select(ChannelIdentity).where(ChannelIdentity.person_id == org.rostered.id)
            )
        )
    assert len(linked) == 1  # the old web chat was signed out, not left holding her records


async def test_sign_in_is_throttled_per_address_and_per_code(
    web: WebChannel, http, org: Org, sessionmaker
) -> None:
    """Before: sign-in codes could be tried without limit."""
    person = browser(http, web)
    for attempt in range(SIGNIN_FAILURES):
        assert (await person.signin(code=f"guess-{attempt}")).status == 403
    refused = await person.signin(code="guess-last")
    assert refused.status == 429
    assert "quá nhiều" in (await refused.json())["error"]
    # Even the right code waits: the address is throttled, in the database (any process).
    good = await new_invite(sessionmaker, "member", "CDCS-MAY")
    assert (await person.signin(code=good)).status == 429
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(WebSession)) == 0

    # Per code: one valid code signed in too often, from addresses that never failed.
    channel = WebChannel(
        web.engine, sessionmaker, "127.0.0.1", 0, demo=False, trusted_proxies="127.0.0.1"
    )
    await channel.start()
    try:
        statuses = []
        for n in range(SIGNIN_PER_CODE + 1):
            async with aiohttp.ClientSession() as fresh:
                response = await fresh.post(
                    channel.url + "api/signin",
                    json={"code": good},
                    headers={
                        CSRF_HEADER: CSRF_VALUE,
                        "X-Forwarded-For": f"10.0.{n // 250}.{n % 250}",
                    },
                )
                statuses.append(response.status)
        assert statuses[:SIGNIN_PER_CODE] == [200] * SIGNIN_PER_CODE
        assert statuses[-1] == 429
    finally:
        await channel.stop()


async def test_the_cookie_is_secure_behind_a_tls_proxy(
    http, org: Org, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Before: behind a TLS proxy the session cookie lacked Secure (forwarded headers ignored)."""
    engine = build_engine(sessionmaker, EngineConfig(now=lambda: JAN_10))

    async def cookie_of(channel: WebChannel, headers: dict[str, str]) -> str:
        await channel.start()
        try:
            code = await new_invite(sessionmaker, "member", "CDCS-MAY")
            async with aiohttp.ClientSession() as fresh:
                response = await fresh.post(
                    channel.url + "api/signin",
                    json={"code": code},
                    headers={CSRF_HEADER: CSRF_VALUE, **headers},
                )
                assert response.status == 200
                return response.headers["Set-Cookie"]
        finally:
            await channel.stop()

    https = {"X-Forwarded-Proto": "https"}
    plain = WebChannel(engine, sessionmaker, "127.0.0.1", 0, demo=False)
    assert "Secure" not in await cookie_of(plain, https)  # anyone may send that header
    proxied = WebChannel(
        engine, sessionmaker, "127.0.0.1", 0, demo=False, trusted_proxies="127.0.0.1"
    )
    assert "Secure" in await cookie_of(proxied, https)
    assert "Secure" not in await cookie_of(proxied, {})
    public = WebChannel(
        engine, sessionmaker, "127.0.0.1", 0, demo=False, public_url="https://bot.example.org/"
    )
    assert "Secure" in await cookie_of(public, {})


async def test_demo_refuses_a_database_with_an_organisation_of_its_own(
    org: Org, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Before: `thidua demo` silently added demo people and an officer login to real data."""
    with pytest.raises(DemoRefused, match="CDCS-THPT"):
        await load_demo(sessionmaker, today=date(2027, 1, 10))
    async with sessionmaker() as session:
        demo_officer = await session.scalar(select(Person).where(Person.phone == "0983444555"))
    assert demo_officer is None


async def test_demo_loads_again_on_its_own_data(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    assert "Đã nạp dữ liệu mẫu" in await load_demo(sessionmaker, today=date(2027, 1, 10))
    assert "Đã nạp dữ liệu mẫu" in await load_demo(sessionmaker, today=date(2027, 1, 10))


async def test_a_stranger_typing_a_members_phone_and_name_gets_nothing(
    web: WebChannel, org: Org, sessionmaker
) -> None:
    """Before: "Số này có trong danh sách công đoàn", then the roster name made the stranger
    that member, with her phone, unit and position in /dulieucuatoi."""
    code = await new_invite(sessionmaker, "member", "CDCS-MAY")
    seen = []
    for phone in ("0912 345 678", "0987 000 111"):  # Nguyễn Thị Hoa's, and nobody's
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as jar:
            stranger = browser(jar, web)
            await stranger.signin(code=code)
            await stranger.say(phone)
            await stranger.tap("không có mã")
            await stranger.tap("Đúng")
            await stranger.say("Nguyễn Thị Hoa")
            await stranger.say("/dulieucuatoi")
            await stranger.say("/dangky")
            async with jar.get(web.url + "api/me") as me:
                assert (await me.json())["name"] is None
            bot_said = [m["text"] for m in stranger.messages if m["from"] == "bot"]
            seen.append("\n".join(bot_said).replace(phone.replace(" ", ""), "PHONE"))
    assert seen[0] == seen[1]
    assert "Tổ trưởng" not in seen[0] and "chờ" in seen[0]
    async with sessionmaker() as session:
        linked = await session.scalar(
            select(func.count())
            .select_from(ChannelIdentity)
            .where(ChannelIdentity.channel == "web", ChannelIdentity.person_id.is_not(None))
        )
    assert linked == 0
