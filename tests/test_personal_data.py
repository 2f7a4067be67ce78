"""Personal data (Nghị định 13/2023): /dulieucuatoi shows what is kept, the erasure request
reaches the officers, `thidua person erase` anonymises and keeps the statistics.
"""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cli import main
from handlers.engine.flow import EngineConfig
from handlers.engine.runner import Engine
from handlers.flows import build_engine
from storage.exporters import registration_rows
from storage.models import (
    AuditEntry,
    Broadcast,
    BroadcastDelivery,
    ChannelIdentity,
    Conversation,
    IdentityClaim,
    Initiative,
    InitiativeAuthor,
    LinkCode,
    OutboxMessage,
    Person,
    Registration,
    Role,
    UnitRole,
    WebMessage,
)
from storage.personal import ERASED_NAME, erase_person, mask_id
from storage.registration_forms import build_form, write_form_xlsx, write_sheet_csv
from tests.chat import Chat
from tests.factories import Org, make_org
from tests.proof import personal_code

JAN_10 = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)
HOA_CHAT = "5550001234"  # a Telegram-like id: long enough that masking shows

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def org(sessionmaker: Sessions) -> Org:
    return await make_org(sessionmaker)


@pytest.fixture
def bot(sessionmaker: Sessions) -> Engine:
    return build_engine(sessionmaker, EngineConfig(now=lambda: JAN_10))


async def add_officer(sessionmaker: Sessions, org: Org, chat: str) -> int:
    async with sessionmaker() as session, session.begin():
        officer = Person(full_name="Phạm Quang", phone="0977000111", unit_id=org.upper.id)
        session.add(officer)
        await session.flush()
        session.add(UnitRole(person_id=officer.id, unit_id=org.upper.id, role=Role.OFFICER))
        session.add(ChannelIdentity(channel="test", external_id=chat, person_id=officer.id))
        return officer.id


async def hoa_with_records(bot: Engine) -> Chat:
    """Nguyễn Thị Hoa (on the roster) signs up, registers LĐTT and an initiative."""
    hoa = Chat(bot, HOA_CHAT)
    await hoa.say("/start")
    await hoa.contact("+84912345678")
    await hoa.tap("là tôi")
    await hoa.say("/dangky")
    await hoa.tap("Lao động tiên tiến")
    await hoa.say("Hoàn thành 110% kế hoạch năm")
    await hoa.tap("Xác nhận")
    assert "TD2027-000001" in hoa.text()
    await hoa.say("/lienket")  # a link code issued for her other app
    return hoa


async def test_my_data_shows_what_is_kept_with_masked_chat_ids(
    sessionmaker: Sessions, bot: Engine, org: Org
) -> None:
    hoa = await hoa_with_records(bot)
    await hoa.say("/dulieucuatoi")
    text = hoa.text()
    for expected in (
        "Nguyễn Thị Hoa",
        "0912345678",
        "Công ty May Bắc Kạn",
        "LĐLĐ tỉnh Bắc Kạn",  # the unit's place in the tree
        "Tổ trưởng tổ may 1",
        "đoàn viên",
        mask_id(HOA_CHAT),
        "Lao động tiên tiến",
        "TD2027-000001",
        "Nhật ký hoạt động",
    ):
        assert expected in text, expected
    assert HOA_CHAT not in text  # the chat id itself is never shown in full
    assert "Yêu cầu xóa dữ liệu" in " ".join(hoa.buttons())
    await hoa.tap("Menu chính")
    assert "bạn muốn làm gì" in hoa.text().lower()


async def test_erasure_request_reaches_the_officers_once(
    sessionmaker: Sessions, bot: Engine, org: Org
) -> None:
    await add_officer(sessionmaker, org, "officer-1")
    hoa = await hoa_with_records(bot)
    await hoa.say("/dulieucuatoi")
    await hoa.tap("Yêu cầu xóa dữ liệu")
    assert "không thể dùng bot" in hoa.text()  # says what erasure means first
    await hoa.tap("Không")
    assert "Yêu cầu xóa dữ liệu" in " ".join(hoa.buttons())  # nothing recorded
    await hoa.tap("Yêu cầu xóa dữ liệu")
    await hoa.tap("Có, xóa")
    assert "đã được ghi nhận" in hoa.text()
    to_officer = [out for out in hoa.last_others if out.to.external_id == "officer-1"]
    assert len(to_officer) == 1
    message = to_officer[0].reply.text
    assert "Nguyễn Thị Hoa" in message and "Nghị định 13/2023" in message
    assert "thidua person erase --yes --phone 0912345678" in message

    await hoa.say("/dulieucuatoi")  # asked already: said so, no second button
    assert "Bạn đã yêu cầu xóa" in hoa.text()
    assert not any("Yêu cầu xóa" in b for b in hoa.buttons())
    async with sessionmaker() as session:
        requests = await session.scalar(
            select(func.count()).where(AuditEntry.action == "person.erase_request")
        )
    assert requests == 1


async def test_without_an_officer_the_request_is_still_recorded(
    sessionmaker: Sessions, bot: Engine, org: Org
) -> None:
    hoa = await hoa_with_records(bot)
    await hoa.say("/dulieucuatoi")
    await hoa.tap("Yêu cầu xóa dữ liệu")
    await hoa.tap("Có, xóa")
    assert "quản trị" in hoa.text()
    assert hoa.last_others == []


async def test_a_stranger_is_told_nothing_is_kept(bot: Engine, org: Org) -> None:
    stranger = Chat(bot, "nobody")
    await stranger.say("/dulieucuatoi")
    assert "chưa đăng ký" in stranger.text()


def cli(*args: str) -> int:
    return main(list(args))


async def test_erase_anonymises_and_keeps_the_statistics(
    sessionmaker: Sessions,
    bot: Engine,
    org: Org,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    officer_id = await add_officer(sessionmaker, org, "officer-1")
    hoa = await hoa_with_records(bot)
    await hoa.say("/dulieucuatoi")
    await hoa.tap("Yêu cầu xóa dữ liệu")
    await hoa.tap("Có, xóa")
    async with sessionmaker() as session, session.begin():
        # Named as a co-author somewhere, and a message waiting for her in the outbox.
        hoa_id = org.rostered.id
        initiative = Initiative(
            receipt_no="SK-1",
            campaign_id=org.campaign.id,
            unit_id=org.garment.id,
            name="Cải tiến bàn cắt vải",
            field="ky_thuat",
        )
        initiative.authors = [InitiativeAuthor(person_id=hoa_id, name="Nguyễn Thị Hoa")]
        session.add(initiative)
        # An announcement still on its way to her.
        broadcast = Broadcast(unit_id=org.garment.id, text="Thông báo", status="sending")
        session.add(broadcast)
        await session.flush()
        session.add(
            BroadcastDelivery(
                broadcast_id=broadcast.id, person_id=hoa_id, channel="test", external_id=HOA_CHAT
            )
        )
        session.add(OutboxMessage(channel="test", external_id=HOA_CHAT, payload={"text": "x"}))
        session.add(
            AuditEntry(
                via="import",
                action="person.import",
                entity="person",
                entity_id=hoa_id,
                details={"row": 2, "full_name": "Nguyễn Thị Hoa", "phone": "0912345678"},
            )
        )
    async with sessionmaker() as session:
        before = list(await session.execute(select(Registration.title_code, Registration.unit_id)))

    monkeypatch.chdir(tmp_path)  # no .env of the project
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("THIDUA_LOG_LEVEL", raising=False)
    # The command runs its own event loop: in a thread, beside this test's loop.
    assert await asyncio.to_thread(cli, "person", "requests") == 0
    assert "Nguyễn Thị Hoa" in capsys.readouterr().out
    assert await asyncio.to_thread(cli, "person", "erase", "--phone", "0912 345 678") == 0
    assert "Nothing was changed" in capsys.readouterr().out  # without --yes: a dry run
    async with sessionmaker() as session:
        assert (await session.get(Person, hoa_id)).full_name == "Nguyễn Thị Hoa"  # type: ignore[union-attr]

    assert await asyncio.to_thread(cli, "person", "erase", "--phone", "0912345678", "--yes") == 0
    out = capsys.readouterr().out
    assert f"Erased person #{hoa_id}" in out and "1 registration(s) kept" in out

    async with sessionmaker() as session:
        person = await session.get(Person, hoa_id)
        assert person is not None
        assert (person.full_name, person.phone, person.position) == (ERASED_NAME, None, None)
        assert (
            await session.scalar(select(func.count()).where(ChannelIdentity.person_id == hoa_id))
            == 0
        )
        assert (
            await session.scalar(
                select(func.count())
                .select_from(Conversation)
                .join(ChannelIdentity, ChannelIdentity.id == Conversation.identity_id)
                .where(ChannelIdentity.external_id == HOA_CHAT)
            )
            == 0
        )
        assert await session.scalar(select(func.count()).where(LinkCode.person_id == hoa_id)) == 0
        assert (
            await session.scalar(select(func.count()).where(OutboxMessage.external_id == HOA_CHAT))
            == 0
        )
        # The registration stays, counted for the unit, without her words.
        after = list(await session.execute(select(Registration.title_code, Registration.unit_id)))
        assert after == before
        assert list(await session.scalars(select(Registration.commitment))) == [None]
        assert list(await session.scalars(select(InitiativeAuthor.name))) == [ERASED_NAME]
        delivery = await session.scalar(select(BroadcastDelivery))
        assert delivery is not None and (delivery.state, delivery.external_id) == ("failed", "")
        for details in await session.scalars(
            select(AuditEntry.details).where(AuditEntry.entity_id == hoa_id)
        ):
            assert "0912345678" not in str(details) and "Nguyễn Thị Hoa" not in str(details)
        assert (
            await session.scalar(select(func.count()).where(AuditEntry.action == "person.erase"))
            == 1
        )
        # The officer is untouched.
        officer = await session.get(Person, officer_id)
        assert officer is not None and officer.full_name == "Phạm Quang"
        rows = await registration_rows(session, "TD2027")
    assert [(r.name, r.phone) for r in rows] == [(ERASED_NAME, None)]

    # Nothing waits any more; erasing again is harmless.
    assert await asyncio.to_thread(cli, "person", "requests") == 0
    assert "No erasure request is waiting" in capsys.readouterr().out
    assert await asyncio.to_thread(cli, "person", "erase", "--id", str(hoa_id), "--yes") == 0
    assert "erased already" in capsys.readouterr().out
    assert await asyncio.to_thread(cli, "person", "erase", "--phone", "0912345678") == 1
    assert "nobody has the phone" in capsys.readouterr().err

    # Her old chat is a stranger now: writing again starts a new sign-up.
    again = Chat(bot, HOA_CHAT)
    await again.say("xin chào")
    assert "số điện thoại" in again.text()


async def test_officers_files_carry_no_phone_and_no_chat_id(
    sessionmaker: Sessions, bot: Engine, org: Org
) -> None:
    """What officers receive (the /tonghop files, the familiar form) holds what the form needs:
    names, positions, units, titles, receipts; never a phone number or a chat id."""
    await add_officer(sessionmaker, org, "officer-1")
    await hoa_with_records(bot)
    officer = Chat(bot, "officer-1")
    await officer.say("/tonghop")
    files = [r.file for r in officer.replies if r.file is not None]
    assert any(f.filename.endswith(".xlsx") for f in files), officer.transcript()
    async with sessionmaker() as session:
        form = await build_form(session, "TD2027", None, "all")
    buffer = io.BytesIO()
    write_form_xlsx(form, buffer)
    texts = [_cells(buffer.getvalue())]
    for sheet in form.sheets:
        out = io.StringIO()
        write_sheet_csv(sheet, out)
        texts.append(out.getvalue())
    for file in files:
        if file.filename.endswith(".xlsx"):
            texts.append(_cells(file.content))
        elif file.mime.startswith("text/"):
            texts.append(file.content.decode("utf-8-sig"))
    everything = "\n".join(texts)
    assert "Nguyễn Thị Hoa" in everything and "TD2027-000001" in everything
    for secret in ("0912345678", "912345678", HOA_CHAT, "officer-1", "0977000111"):
        assert secret not in everything, secret


def _cells(xlsx: bytes) -> str:
    workbook = load_workbook(io.BytesIO(xlsx))
    return "\n".join(
        str(cell.value)
        for sheet in workbook.worksheets
        for row in sheet.iter_rows()
        for cell in row
        if cell.value is not None
    )


async def test_erasure_removes_the_name_from_others_messages(
    sessionmaker: Sessions, bot: Engine, org: Org
) -> None:
    """Issue 12: the name stayed in the outbox and in a co-author's chat history."""
    await personal_code(sessionmaker, now=JAN_10)  # Trần Văn Bình on the roster
    binh = Chat(bot, "binh-chat")
    await binh.say("/start")
    await binh.contact("+84987654321")
    await binh.tap("là tôi")
    hoa = Chat(bot, HOA_CHAT)
    await hoa.say("/start")
    await hoa.contact("+84912345678")
    await hoa.tap("là tôi")
    await hoa.say("/sangkien")
    await hoa.say("Cải tiến bàn cắt vải")
    await hoa.say("ky thuat")
    await hoa.say("Gắn cữ gá giúp cắt nhanh gấp đôi.")
    await hoa.say("binh")
    await hoa.tap("Trần Văn Bình")
    await hoa.tap("Xong")
    for _step in range(3):
        await hoa.tap("Bỏ qua")
    await hoa.tap("Xác nhận")
    async with sessionmaker() as session, session.begin():
        told = list(await session.scalars(select(OutboxMessage)))
        assert any("Nguyễn Thị Hoa" in str(m.payload.get("text")) for m in told), told
        # What a co-author's web chat keeps once the message reached the page.
        session.add(
            WebMessage(
                external_id="w-binh",
                sender="bot",
                payload={"text": told[-1].payload["text"], "choices": []},
            )
        )
    # Someone else claimed her phone and typed her name (a claim waiting for a leader).
    stranger = Chat(bot, "stranger", channel="zalo")
    await stranger.say("/start")
    await stranger.say("0912 345 678")
    await stranger.tap("không có mã")
    await stranger.say("may bac kan")
    await stranger.tap("Công ty May")
    await stranger.say("Nguyễn Thị Hoa")
    async with sessionmaker() as session, session.begin():
        person = await session.get(Person, org.rostered.id)
        assert person is not None
        report = await erase_person(session, person, JAN_10)
        assert await session.scalar(select(func.count()).select_from(IdentityClaim)) == 0
    assert report.others_messages >= 2
    async with sessionmaker() as session:
        texts = [str(m.payload) for m in await session.scalars(select(OutboxMessage))]
        texts += [str(m.payload) for m in await session.scalars(select(WebMessage))]
    assert texts and not any("Hoa" in t or "0912345678" in t for t in texts), texts
    assert any(ERASED_NAME in t for t in texts)
