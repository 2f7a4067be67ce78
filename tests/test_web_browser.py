"""The web chat in a real headless Chromium on a phone-sized screen, driven by Playwright.

Debian's ``chromium`` (.ci/run installs it when missing); Playwright's own browser download
does not work on these machines. Set THIDUA_SCREENSHOTS=<dir> to keep the screenshots.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Page,
    ViewportSize,
    async_playwright,
    expect,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.web import WebChannel
from bot.demo import load_demo
from handlers.engine.flow import EngineConfig
from handlers.engine.prompt import Reply
from handlers.flows import build_engine
from storage.db import make_engine, make_sessionmaker
from storage.invites import create_invite
from storage.models import Registration, WebSession
from storage.seed import prepare_database
from tests.factories import make_org
from tests.proof import personal_code
from tests.test_web_chat import JAN_10

CHROMIUM = "/usr/bin/chromium"
# As the machine notes say: without the background-networking flags Chromium keeps trying
# to reach Google, which this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = ViewportSize(width=360, height=740)

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"{CHROMIUM} is missing: `apt-get install chromium` (.ci/run does it)",
)


@pytest.fixture
async def sessionmaker(sqlite_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    # One back-end is enough here: the HTTP tests already run on SQLite and PostgreSQL.
    engine = make_engine(sqlite_url)
    await prepare_database(engine)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


async def serve(sessionmaker: async_sessionmaker[AsyncSession], *, demo: bool) -> WebChannel:
    engine = build_engine(sessionmaker, EngineConfig(now=lambda: JAN_10))
    channel = WebChannel(engine, sessionmaker, "127.0.0.1", 0, demo=demo)
    await channel.start()
    return channel


async def phone_page(browser: Browser, problems: list[str]) -> Page:
    context = await browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="vi-VN"
    )
    page = await context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        # A CSP violation (a blocked inline script or style) shows up here as an error.
        if message.type == "error":
            problems.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return page


async def idle(page: Page) -> None:
    """Wait until the bot has answered (the "…" is shown while a message is on its way)."""
    await expect(page.locator("#log .typing")).to_have_count(0)


async def answer(page: Page, text: str) -> None:
    await idle(page)
    await page.locator("#text").fill(text)
    await page.locator("#text").press("Enter")
    await expect(page.locator(".msg.me").last).to_have_text(text.strip())
    await idle(page)


async def tap(page: Page, label: str) -> None:
    """Tap a button of the newest question (older questions' buttons are disabled)."""
    await idle(page)
    await page.locator(".choices.live .choice", has_text=label).last.click()
    await expect(page.locator(".msg.me").last).to_contain_text(label)
    await idle(page)


async def screenshot(page: Page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    await page.screenshot(path=str(path), full_page=False)
    keep = os.environ.get("THIDUA_SCREENSHOTS")
    if keep:
        await asyncio.to_thread(_keep, path, Path(keep))
    return path


def _keep(path: Path, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, directory / path.name)


async def no_sideways_scroll(page: Page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px screen"


async def test_new_member_signs_in_onboards_and_registers_by_tapping_and_typing(
    browser: Browser, sessionmaker, tmp_path: Path
) -> None:
    await make_org(sessionmaker)
    async with sessionmaker() as session, session.begin():
        code = (await create_invite(session, "member", "CDCS-MAY")).code
    web = await serve(sessionmaker, demo=False)
    problems: list[str] = []
    try:
        page = await phone_page(browser, problems)
        await page.goto(web.url)
        await expect(page.locator("#signin h2")).to_have_text("Đăng nhập")
        await no_sideways_scroll(page)
        await screenshot(page, tmp_path, "web-signin.png")

        await page.locator("#code").fill(code)
        await page.get_by_role("button", name="Tiếp tục").click()
        log = page.locator("#log")
        await expect(log).to_contain_text("số điện thoại")
        assert await page.locator("#text").get_attribute("inputmode") == "tel"
        await answer(page, "0987 654 321")
        await expect(log).to_contain_text("mã cá nhân")  # a typed phone is only a claim
        await tap(page, "không có mã")
        await expect(log).to_contain_text("Công ty May Bắc Kạn")

        # Typed text is shown as text, in the person's bubble and in the bot's answer.
        await tap(page, "tìm đơn vị khác")
        attack = "<img src=x onerror=document.title='owned'>"
        await answer(page, attack)
        await expect(page.locator(".msg.me").last).to_have_text(attack)
        await expect(page.locator(".msg.bot").nth(-2)).to_contain_text(attack[:20])
        assert await page.locator("#log img").count() == 0
        await answer(page, "may bac kan")
        await tap(page, "Công ty May")
        await answer(page, "Trần Văn Bình")
        await expect(log).to_contain_text("chờ chủ tịch")
        # The leader hands Bình his personal code; typed while waiting, it proves him.
        await answer(page, await personal_code(sessionmaker, now=JAN_10))
        await expect(log).to_contain_text("Cảm ơn bạn Bình")

        await tap(page, "Đăng ký danh hiệu")
        await expect(log).to_contain_text("25/01/2027")
        await tap(page, "Lao động tiên tiến")
        await answer(page, "Hoàn thành 110% kế hoạch năm")
        await expect(page.locator(".msg.bot").last).to_contain_text("kế hoạch năm")
        await no_sideways_scroll(page)
        await screenshot(page, tmp_path, "web-summary.png")
        await tap(page, "Xác nhận")
        await expect(log).to_contain_text("TD2027-000001")

        # A message queued by someone else appears without a reload (the page polls).
        async with sessionmaker() as session:
            external_id = await session.scalar(select(WebSession.external_id))
        assert external_id is not None
        await web.send(external_id, Reply("Cán bộ công đoàn đã nhận danh sách của đơn vị."))
        await expect(page.locator(".msg.bot").last).to_have_text(
            "Cán bộ công đoàn đã nhận danh sách của đơn vị.", timeout=10_000
        )
        await no_sideways_scroll(page)
        shot = await screenshot(page, tmp_path, "web-chat.png")
        assert shot.stat().st_size > 10_000

        # A reload keeps the person signed in and shows the conversation again.
        await page.reload()
        await expect(page.locator("#log")).to_contain_text("TD2027-000001")
        assert await page.title() != "owned"
    finally:
        await web.stop()
    assert problems == []
    async with sessionmaker() as session:
        reg = await session.scalar(select(Registration))
    assert reg is not None and reg.title_code == "LDTT" and reg.commitment is not None


async def test_demo_role_picker_and_sign_out(
    browser: Browser, sessionmaker, tmp_path: Path
) -> None:
    await load_demo(sessionmaker, today=date(2027, 1, 10))
    web = await serve(sessionmaker, demo=True)
    problems: list[str] = []
    try:
        page = await phone_page(browser, problems)
        await page.goto(web.url)
        await expect(page.locator(".role")).to_have_count(4)
        await no_sideways_scroll(page)
        await screenshot(page, tmp_path, "web-demo-signin.png")
        await page.locator(".role", has_text="Bế Thị Hạnh").click()
        await expect(page.locator("#sub")).to_have_text("Bế Thị Hạnh")
        await expect(page.locator("#log")).to_contain_text("Chào bạn Hạnh")
        await page.get_by_role("button", name="Đăng xuất").click()
        await expect(page.locator("#signin")).to_be_visible()
        await page.reload()
        await expect(page.locator("#signin")).to_be_visible()  # the server forgot the session
    finally:
        await web.stop()
    assert problems == []
