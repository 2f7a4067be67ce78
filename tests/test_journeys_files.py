"""Files on every channel: attached on the web page, offered as signed links on Zalo.

Over real HTTP (the web chat's server, the fake Zalo Bot API), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import date, timedelta

import aiohttp
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.web import CSRF_HEADER, CSRF_VALUE, WebChannel
from bot.channels.zalo_bot import ZaloBotChannel
from bot.demo import load_demo
from bot.file_links import FileLinks
from handlers.engine.prompt import OutFile, Reply
from storage.models import Attachment, Initiative, SharedFile, WebMessage
from tests.factories import make_org
from tests.fakes.zalo_bot import DEFAULT_ZALO_TOKEN, FakeZaloBotAPI
from tests.test_web_chat import JAN_10, Browser, browser, start_channel
from tests.test_zalo_bot import make_engine, until

Sessions = async_sessionmaker[AsyncSession]
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40  # about 10 KB, every byte value


@pytest.fixture
async def demo_web(sessionmaker: Sessions) -> AsyncIterator[WebChannel]:
    await load_demo(sessionmaker, today=date(2027, 1, 10))
    channel = await start_channel(sessionmaker, demo=True)
    try:
        yield channel
    finally:
        await channel.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def upload(
    person: Browser, name: str, content: bytes, mime: str, *, header: bool = True
) -> aiohttp.ClientResponse:
    # As a browser sends it: the name as typed, in UTF-8, not percent-encoded.
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("file", content, filename=name, content_type=mime)
    headers = {CSRF_HEADER: CSRF_VALUE} if header else {}
    response = await person.http.post(person.base + "/api/upload", data=form, headers=headers)
    if response.status == 200:
        person.last = (await response.json())["messages"]
        person.messages += person.last
    return response


async def to_the_attachment_question(member: Browser) -> None:
    await member.say("/sangkien")
    await member.say("Cải tiến dây chuyền may cổ áo")
    await member.say("ky thuat")
    await member.say("Gắn cữ gá giúp may cổ áo nhanh gấp đôi, giảm lỗi đường may.")
    for _question in range(3):  # co-authors, date first applied, benefit
        await member.tap("Bỏ qua")
    assert "PDF" in member.text() and "20 MB" in member.text(), member.transcript()


async def test_a_member_attaches_a_file_on_the_web_page(
    demo_web: WebChannel, http: aiohttp.ClientSession, sessionmaker: Sessions
) -> None:
    member = browser(http, demo_web)
    assert (await member.signin(role="member")).status == 200
    await to_the_attachment_question(member)

    # A program is refused with what the question takes; nothing of it is kept.
    refused = await upload(member, "setup.exe", b"MZ" + PDF, "application/x-msdownload")
    assert refused.status == 200
    assert "PDF, Word" in member.text() and "không nhận" in member.text().lower()
    async with sessionmaker() as session:
        kept = select(func.count()).where(WebMessage.file_name.is_not(None))
        assert await session.scalar(kept) == 0

    # Without the page's header (a form on another site) the upload is refused.
    assert (await upload(member, "x.pdf", PDF, "application/pdf", header=False)).status == 403

    assert (await upload(member, "Báo cáo sáng kiến.pdf", PDF, "application/pdf")).status == 200
    mine = member.last[0]
    assert mine["from"] == "me" and mine["file"] == {
        "name": "Báo cáo sáng kiến.pdf",
        "image": False,
    }
    assert "Báo cáo sáng kiến.pdf" in member.text()  # the summary names the attachment
    await member.tap("Xác nhận")
    assert re.search(r"TD2027-\d{6}", member.text()), member.transcript()

    async with sessionmaker() as session:
        attachment = await session.scalar(select(Attachment))
        initiative = await session.scalar(select(Initiative))
    assert attachment is not None and initiative is not None
    assert (attachment.owner_kind, attachment.owner_id) == ("initiative", initiative.id)
    assert (attachment.channel, attachment.file_id) == ("web", str(mine["id"]))
    assert (attachment.filename, attachment.mime, attachment.size) == (
        "Báo cáo sáng kiến.pdf",
        "application/pdf",
        len(PDF),
    )
    # The file is the person's to download again, byte for byte.
    async with http.get(f"{member.base}/api/file/{mine['id']}") as response:
        assert response.status == 200
        assert await response.read() == PDF


async def test_a_file_over_the_limit_is_refused_with_the_limit(
    demo_web: WebChannel, http: aiohttp.ClientSession, sessionmaker: Sessions
) -> None:
    member = browser(http, demo_web)
    assert (await member.signin(role="member")).status == 200
    await to_the_attachment_question(member)
    big = await upload(member, "scan.pdf", b"0" * (20 * 1024 * 1024 + 1), "application/pdf")
    assert big.status == 413
    assert "20 MB" in (await big.json())["error"]
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Attachment)) == 0
    # The question is still open: a smaller file goes through.
    assert (await upload(member, "scan.pdf", PDF, "application/pdf")).status == 200
    assert "scan.pdf" in member.text()


# --- Zalo: files as signed, expiring links ------------------------------------------------------


async def test_zalo_gets_a_signed_link_that_opens_the_file_until_it_expires(
    sessionmaker: Sessions,
) -> None:
    await make_org(sessionmaker)
    engine = make_engine(sessionmaker)
    clock = [JAN_10]
    web = WebChannel(engine, sessionmaker, "127.0.0.1", 0, demo=False)
    links = FileLinks(sessionmaker, "http://placeholder", now=lambda: clock[0])
    web.app.add_routes(links.routes())
    await web.start()
    links.base_url = web.url.rstrip("/")
    report = OutFile("dang-ky-2027.xlsx", b"PK\x03\x04" + PDF, "application/vnd.ms-excel")
    async with FakeZaloBotAPI() as server, aiohttp.ClientSession() as http:
        channel = ZaloBotChannel(
            engine, DEFAULT_ZALO_TOKEN, server.base_url, polling_timeout=1, retry_delay=0.01
        )
        channel.file_links = links
        await channel.start()
        task = asyncio.create_task(channel.run())
        try:
            await channel.send("officer", Reply("Danh sách đăng ký của đơn vị.", file=report))
            await until(lambda: bool(server.messages("officer")))
        finally:
            await channel.stop()
            await asyncio.wait_for(task, 10)
        [message] = server.messages("officer")
        assert message.text.startswith("Danh sách đăng ký của đơn vị.")
        assert "không gửi được" not in message.text  # no more "cannot be sent in Zalo"
        found = re.search(r"(http://\S+/tep/\d+/\d+/[0-9a-f]{32})", message.text)
        assert found, message.text
        url = found.group(1)
        assert "17/01/2027" in message.text  # a week from 10/01/2027

        async with http.get(url) as response:
            assert response.status == 200
            assert await response.read() == report.content
            assert "dang-ky-2027.xlsx" in response.headers["Content-Disposition"]

        # Another file's id, or a later expiry, under the same signature: not a link.
        file_id, expires, _signature = url.rsplit("/", 3)[1:]
        other = url.replace(f"/tep/{file_id}/", f"/tep/{int(file_id) + 1}/")
        later = url.replace(f"/{expires}/", f"/{int(expires) + 86_400}/")
        for forged in (other, later, url[:-1] + ("0" if url[-1] != "0" else "1")):
            async with http.get(forged) as response:
                assert response.status == 404

        clock[0] = JAN_10 + timedelta(days=7, minutes=1)
        async with http.get(url) as response:
            assert response.status == 404
            assert "hết hạn" in await response.text()
    await web.stop()
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(SharedFile)) == 1
