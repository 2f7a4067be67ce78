"""Wording that fits the channel (issue 15, item 7): where buttons show, a prompt says
"bấm …"; on a text-only channel (Zalo Bot renders choices as numbered text) it says what to
type, and no message asks to press a button. Driven through the engine on SQLite and
PostgreSQL; the Zalo replies are also checked as the channel renders them (numbered text).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.engine.render import numbered_text
from storage.links import PERSONAL_LIFETIME, issue_link_code
from tests.chat import Chat
from tests.factories import Org, make_org
from tests.test_flows import JAN_10, make_engine

Sessions = async_sessionmaker[AsyncSession]
HOA_PHONE = "0912 345 678"  # Nguyễn Thị Hoa, on the roster of Công ty May
MB = 1024 * 1024


async def _personal_code(sessionmaker: Sessions, org: Org) -> str:
    async with sessionmaker() as session, session.begin():
        code, _expires = await issue_link_code(
            session, org.rostered.id, "cli", JAN_10, PERSONAL_LIFETIME
        )
    return code


async def _main_flows(chat: Chat, code: str) -> None:
    """Onboarding by a typed phone and the code question (a wrong code first), a title with
    its optional commitment, and an initiative through its optional steps and refusals, all
    answered by typing."""
    await chat.say("/start")
    await chat.say(HOA_PHONE)  # typed: only a claim, so the code question follows
    await chat.say("ABCD2EFG")  # a wrong code: refused, the way out named
    assert "không dùng được" in chat.text()
    await chat.say(code)
    assert "Nguyễn Thị Hoa" in chat.text() or "Hoa" in chat.text()

    await chat.say("/dangky")
    await chat.say("lao dong tien tien")
    assert "cam kết" in chat.text().lower()
    await chat.say("Hoàn thành 110% kế hoạch")
    await chat.tap("Xác nhận")
    assert "TD2027-" in chat.text()

    await chat.say("/sangkien")
    await chat.say("Cải tiến dây chuyền may cổ áo")
    await chat.say("ky thuat")
    await chat.say("Gắn cữ gá giúp may cổ áo nhanh gấp đôi, giảm lỗi đường may.")
    await chat.say("hoa")  # a co-author: then "another name, or Done"
    await chat.say("lê văn tám")
    await chat.say("Xong")
    await chat.say("20/12/2027")  # in the future (today is 10/01/2027)
    assert "chưa tới" in chat.text()
    await chat.say("Bỏ qua")
    await chat.say("0")
    assert "lớn hơn 0" in chat.text()
    await chat.say("Bỏ qua")
    await chat.file("setup.exe", "application/x-msdownload", 300_000)
    assert "không nhận được loại tệp" in chat.text()
    await chat.file("so-lieu.pdf", "application/pdf", 25 * MB)
    await chat.say("Bỏ qua")
    await chat.tap("Xác nhận")
    assert "SK2027-" in chat.text() or "sáng kiến" in chat.text().lower()


async def test_zalo_is_never_asked_to_press_a_button(sessionmaker: Sessions) -> None:
    org = await make_org(sessionmaker)
    chat = Chat(make_engine(sessionmaker), "hoa-zalo", channel="zalo")
    await _main_flows(chat, await _personal_code(sessionmaker, org))
    said = chat.transcript()
    # What to type instead, in the channel's words.
    assert "bạn vui lòng gõ số điện thoại" in said and "bên dưới" not in said
    assert "Nếu chưa có mã, bạn gõ số 1" in said
    assert "hoặc gõ “Tôi không có mã”" in said
    assert "Nếu không, bạn gõ “Bỏ qua”" in said
    assert "hoặc gõ số 1." in said  # "Type another name, or Done" (Xong is choice 1)
    assert "hoặc gõ “Bỏ qua”" in said
    rendered = [numbered_text(reply) for reply in chat.replies]
    pressing = [text for text in rendered if "bấm" in text.lower()]
    assert pressing == [], pressing


async def test_telegram_names_its_buttons(sessionmaker: Sessions) -> None:
    org = await make_org(sessionmaker)
    chat = Chat(make_engine(sessionmaker), "hoa-telegram", channel="telegram")
    await _main_flows(chat, await _personal_code(sessionmaker, org))
    said = chat.transcript()
    assert "bấm nút “Chia sẻ số điện thoại” bên dưới hoặc gõ số điện thoại" in said
    assert "Nếu chưa có mã, bạn bấm “Tôi không có mã”" in said
    assert "Nếu không, bạn bấm “Bỏ qua”" in said
    assert "hoặc bấm “Xong”." in said
    assert "hoặc bấm “Bỏ qua”" in said


async def test_buttons_without_a_contact_button_ask_to_type_the_phone(
    sessionmaker: Sessions,
) -> None:
    await make_org(sessionmaker)
    chat = Chat(make_engine(sessionmaker), "web-1", channel="web")
    await chat.say("/start")
    assert "bạn vui lòng gõ số điện thoại" in chat.text() and "bên dưới" not in chat.text()
    await chat.say(HOA_PHONE)
    assert "bấm “Tôi không có mã”" in chat.text()  # the web page shows that button
