"""The journeys of issue 15 in a real headless Chromium on a phone-sized screen."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from playwright.async_api import Browser, expect
from sqlalchemy import select

from bot.demo import load_demo
from handlers.engine.prompt import OutFile, Reply
from handlers.flows.invite import qr_png
from storage.models import Attachment, WebSession
from tests.test_web_browser import (
    answer,
    browser,
    idle,
    no_sideways_scroll,
    phone_page,
    pytestmark,
    screenshot,
    serve,
    sessionmaker,
    tap,
)

__all__ = ["browser", "pytestmark", "sessionmaker"]  # fixtures and the skip, shared


async def test_a_member_attaches_a_file_with_the_paperclip(
    browser: Browser, sessionmaker, tmp_path: Path
) -> None:
    await load_demo(sessionmaker, today=date(2027, 1, 10))
    web = await serve(sessionmaker, demo=True)
    problems: list[str] = []
    report = tmp_path / "Báo cáo sáng kiến.pdf"
    report.write_bytes(b"%PDF-1.4\n" + b"x" * 5000)
    program = tmp_path / "setup.exe"
    program.write_bytes(b"MZ" + b"x" * 100)
    try:
        page = await phone_page(browser, problems)
        await page.goto(web.url)
        await page.locator(".role", has_text="Đoàn viên").click()
        log = page.locator("#log")
        await expect(log).to_contain_text("Đăng ký sáng kiến")
        await answer(page, "/sangkien")
        await answer(page, "Cải tiến dây chuyền may cổ áo")
        await tap(page, "Kỹ thuật")
        await answer(page, "Gắn cữ gá giúp may cổ áo nhanh gấp đôi.")
        for _question in range(3):
            await tap(page, "Bỏ qua")
        await expect(page.locator(".msg.bot").last).to_contain_text("20 MB")

        attach = page.locator("#composer .attach")
        await expect(attach).to_be_visible()
        await no_sideways_scroll(page)
        await page.locator("#file").set_input_files(str(program))
        await idle(page)
        await expect(page.locator(".msg.me").last).to_contain_text("setup.exe")
        await expect(page.locator(".msg.bot").nth(-2)).to_contain_text("không nhận")

        await page.locator("#file").set_input_files(str(report))
        await idle(page)
        mine = page.locator(".msg.me").last
        await expect(mine).to_contain_text("Báo cáo sáng kiến.pdf")
        await expect(mine.locator("a.file")).to_have_count(1)
        await expect(page.locator(".msg.bot").last).to_contain_text("Báo cáo sáng kiến.pdf")
        await screenshot(page, tmp_path, "web-attach.png")
        await tap(page, "Xác nhận")
        await expect(log).to_contain_text("TD2027-")

        # A picture (the leader's QR code, a receipt card, a chart) is shown in the bubble.
        async with sessionmaker() as session:
            address = await session.scalar(select(WebSession.external_id))
        assert address is not None
        qr = OutFile("moi.png", qr_png("https://t.me/ThiDuaBot?start=abc"), "image/png", "photo")
        await web.send(address, Reply("Mã QR của đơn vị", file=qr))
        picture = page.locator(".msg.bot img.picture").last
        await expect(picture).to_be_visible(timeout=10_000)
        assert await picture.evaluate("img => img.naturalWidth") > 100
        await no_sideways_scroll(page)
    finally:
        await web.stop()
    assert problems == []
    async with sessionmaker() as session:
        attachment = await session.scalar(select(Attachment))
    assert attachment is not None
    assert (attachment.channel, attachment.filename) == ("web", "Báo cáo sáng kiến.pdf")


async def test_a_leader_gets_the_qr_code_to_print_on_the_page(
    browser: Browser, sessionmaker, tmp_path: Path
) -> None:
    await load_demo(sessionmaker, today=date(2027, 1, 10))
    web = await serve(sessionmaker, demo=True)
    problems: list[str] = []
    try:
        page = await phone_page(browser, problems)
        await page.goto(web.url)
        await page.locator(".role", has_text="Chủ tịch công đoàn").click()
        await expect(page.locator("#log")).to_contain_text("Mời đoàn viên")
        await tap(page, "Mời đoàn viên")
        await expect(page.locator("#log")).to_contain_text("Mã đăng nhập")
        picture = page.locator(".msg.bot img.picture").last
        await expect(picture).to_be_visible()
        assert await picture.evaluate("img => img.naturalWidth") >= 200
        await no_sideways_scroll(page)
        await screenshot(page, tmp_path, "web-invite-qr.png")
    finally:
        await web.stop()
    assert problems == []
