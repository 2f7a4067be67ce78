"""Registering an initiative (sáng kiến) by chat, as a member would do it on a phone."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from handlers.engine.prompt import Incoming, IncomingFile
from storage.models import (
    Attachment,
    AuditEntry,
    Campaign,
    Initiative,
    OutboxMessage,
    Person,
    SubmissionStatus,
    UnitSubmission,
)
from tests.chat import Chat
from tests.factories import Org, make_org
from tests.test_flows import make_engine, onboard_member

Sessions = async_sessionmaker[AsyncSession]
MB = 1024 * 1024


@pytest.fixture
async def org(sessionmaker: Sessions) -> Org:
    return await make_org(sessionmaker, titles=("LDTT", "CSTDCS", "BK_TINH", "LDST"))


async def onboard_hoa(chat: Chat) -> None:
    """The rostered member Nguyễn Thị Hoa, recognised by her phone."""
    await chat.say("/start")
    await chat.contact("+84912345678")
    await chat.tap("là tôi")


async def start_initiative(chat: Chat, name: str = "Cải tiến dây chuyền may cổ áo") -> None:
    await chat.say("/sangkien")
    assert "tên sáng kiến" in chat.text().lower()
    assert "25/01/2027" in chat.text()  # the deadline is shown up front
    await chat.say(name)
    await chat.tap("Kỹ thuật")
    await chat.say("Gắn cữ gá giúp may cổ áo nhanh gấp đôi, giảm lỗi đường may.")


async def skip_to_summary(chat: Chat) -> None:
    """From the co-author question on: no co-author, date, benefit or file."""
    for _question in range(4):
        await chat.tap("Bỏ qua")


async def initiatives(sessionmaker: Sessions) -> list[Initiative]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(Initiative).options(selectinload(Initiative.authors)).order_by(Initiative.id)
        )
        return list(rows)


async def set_settings(sessionmaker: Sessions, org: Org, settings: dict[str, Any]) -> None:
    async with sessionmaker() as session, session.begin():
        campaign = await session.get(Campaign, org.campaign.id)
        assert campaign is not None
        campaign.settings = settings


async def test_full_initiative_with_coauthors_file_and_ldst(sessionmaker: Sessions, org: Org):
    chat = Chat(make_engine(sessionmaker), "200")
    await onboard_member(chat, sessionmaker)
    await chat.tap("Đăng ký sáng kiến")  # the menu entry, for every member
    assert "tên sáng kiến" in chat.text().lower()
    await chat.say("Cải tiến dây chuyền may cổ áo")
    assert "Chuyển đổi số, CNTT" in chat.buttons()
    await chat.say("ky thuat")  # typed without accents
    await chat.say("Gắn cữ gá giúp may cổ áo nhanh gấp đôi.")
    assert "đồng tác giả" in chat.text()

    await chat.say("hoa")  # part of a name, accents not needed
    assert any("Nguyễn Thị Hoa" in b for b in chat.buttons())
    await chat.tap("Nguyễn Thị Hoa")
    assert "Nguyễn Thị Hoa" in chat.text()  # the list so far
    await chat.say("lê văn tám")  # not on the roster: kept as typed
    assert "Lê Văn Tám" in chat.text() and "không có trong danh sách" in chat.text()
    await chat.tap("Xong")

    assert "15/03/2026" in chat.text()  # the example date
    await chat.say("15/03/2026")
    assert "giá trị làm lợi" in chat.text().lower()
    await chat.say("1,2 tỷ")
    # Over the lowest Bằng LĐST bar: who the author is decides the bar (QĐ 999/QĐ-TLĐ).
    assert "Bạn thuộc đối tượng nào?" in chat.text()
    await chat.tap("Công nhân")
    assert "PDF" in chat.text() and "20 MB" in chat.text()
    await chat.file("bao-cao-sang-kien.pdf", "application/pdf", 2 * MB)

    summary = chat.text()
    for shown in (
        "Cải tiến dây chuyền may cổ áo",
        "Kỹ thuật",
        "Nguyễn Thị Hoa, Lê Văn Tám",
        "15/03/2026",
        "1,2 tỷ đồng",
        "bao-cao-sang-kien.pdf (2 MB)",
    ):
        assert shown in summary, shown
    await chat.tap("Xác nhận")
    done = chat.text()
    assert "TD2027-000001" in done
    assert "Bằng Lao động sáng tạo" in done and "1,2 tỷ đồng" in done
    assert "Đăng ký sáng kiến" in " ".join(chat.buttons())  # back at the menu

    [saved] = await initiatives(sessionmaker)
    assert (saved.receipt_no, saved.field, saved.benefit, saved.applied_on) == (
        "TD2027-000001",
        "tech",
        1_200_000_000,
        date(2026, 3, 15),
    )
    assert saved.author_category == "worker"
    assert [(a.person_id, a.name) for a in saved.authors] == [
        (org.rostered.id, "Nguyễn Thị Hoa"),
        (None, "Lê Văn Tám"),
    ]
    async with sessionmaker() as session:
        attachment = await session.scalar(select(Attachment))
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "initiative.create")
        )
    assert attachment is not None
    assert (attachment.owner_kind, attachment.owner_id, attachment.channel) == (
        "initiative",
        saved.id,
        "test",
    )
    assert (attachment.filename, attachment.mime, attachment.size) == (
        "bao-cao-sang-kien.pdf",
        "application/pdf",
        2 * MB,
    )
    assert entry is not None and entry.details["receipt_no"] == "TD2027-000001"


async def test_wrong_answers_are_reasked(sessionmaker: Sessions, org: Org) -> None:
    chat = Chat(make_engine(sessionmaker), "300")
    await onboard_member(chat, sessionmaker)
    await start_initiative(chat)
    await chat.tap("Bỏ qua")  # no co-author

    await chat.say("20/12/2027")  # in the future (today is 10/01/2027)
    assert "chưa tới" in chat.text()
    await chat.say("32/01/2026")
    assert "ngày/tháng/năm" in chat.text().lower() or "25/01/2027" in chat.text()
    await chat.say("15/03/2026")

    await chat.say("nhiều lắm")
    assert "80 triệu" in chat.text()  # re-asked with an example
    await chat.say("0")
    assert "lớn hơn 0" in chat.text()
    await chat.say("80 triệu")
    await chat.say("tôi là ai")  # not one of the author categories: asked again
    assert "Bạn thuộc đối tượng nào?" in chat.text()
    await chat.tap("Bỏ qua")

    await chat.file("setup.exe", "application/x-msdownload", 300_000)
    assert "không nhận được loại tệp" in chat.text()
    assert "PDF" in chat.text() and "Excel" in chat.text()
    await chat.file("so-lieu.pdf", "application/pdf", 25 * MB)
    assert "25 MB" in chat.text() and "20 MB" in chat.text()
    await chat.file("bang-tinh.xlsx", "application/octet-stream", 40_000)  # generic type
    assert "bang-tinh.xlsx" in chat.text() and "Xác nhận" in " ".join(chat.buttons())

    await chat.tap("Xác nhận")
    [saved] = await initiatives(sessionmaker)
    assert (saved.applied_on, saved.benefit) == (date(2026, 3, 15), 80_000_000)


async def test_a_photo_without_file_name_is_accepted(sessionmaker: Sessions, org: Org) -> None:
    chat = Chat(make_engine(sessionmaker), "310")
    await onboard_member(chat, sessionmaker)
    await start_initiative(chat)
    for _question in range(3):
        await chat.tap("Bỏ qua")
    # Telegram photos carry no file name, only a type.
    await chat._send(Incoming(chat.address, file=IncomingFile("ph1", None, "image/jpeg", 300_000)))
    assert "(293 KB)" in chat.text()
    await chat.tap("Xác nhận")
    async with sessionmaker() as session:
        attachment = await session.scalar(select(Attachment))
    assert attachment is not None and attachment.mime == "image/jpeg"


async def test_edit_from_summary(sessionmaker: Sessions, org: Org) -> None:
    chat = Chat(make_engine(sessionmaker), "400")
    await onboard_member(chat, sessionmaker)
    await start_initiative(chat)
    await chat.say("hoa")
    await chat.tap("Nguyễn Thị Hoa")
    await chat.say("Phạm Minh Đức")
    await chat.tap("Xong")
    await chat.tap("Bỏ qua")
    await chat.say("50 triệu")
    await chat.tap("Bỏ qua")
    assert "50 triệu đồng" in chat.text()

    await chat.tap("Sửa giá trị làm lợi")
    await chat.say("1.200.000")
    assert "1,2 triệu đồng" in chat.text() and "Xác nhận" in " ".join(chat.buttons())

    await chat.tap("Sửa lĩnh vực")
    await chat.tap("An toàn vệ sinh lao động")
    assert "An toàn vệ sinh lao động" in chat.text()
    assert "1,2 triệu đồng" in chat.text()  # the rest is kept

    await chat.tap("Sửa đồng tác giả")
    await chat.tap("Bỏ bớt tên")
    await chat.tap("Phạm Minh Đức")
    assert "Phạm Minh Đức" not in chat.text()
    await chat.tap("Xong")  # back at the summary, not at the next question
    assert "Xác nhận" in " ".join(chat.buttons())
    assert "• Đồng tác giả: Nguyễn Thị Hoa" in chat.text()

    await chat.tap("Sửa tên")
    await chat.say("Cữ gá may cổ áo")
    assert "Cữ gá may cổ áo" in chat.text()
    await chat.tap("Xác nhận")
    assert "Bằng Lao động sáng tạo" not in chat.text()  # 1,2 triệu is far below the bar
    [saved] = await initiatives(sessionmaker)
    assert (saved.name, saved.field, saved.benefit) == ("Cữ gá may cổ áo", "safety", 1_200_000)
    assert [a.name for a in saved.authors] == ["Nguyễn Thị Hoa"]


async def test_ldst_threshold_by_author_category_qd_999_tld(
    sessionmaker: Sessions, org: Org
) -> None:
    """QĐ 999/QĐ-TLĐ: Bằng Lao động sáng tạo on the TOTAL benefit of the author's
    initiatives, 80 / 150 / 200 triệu by who the author is; a campaign may set its own."""
    chat = Chat(make_engine(sessionmaker), "500")
    await onboard_member(chat, sessionmaker)

    async def initiative(name: str, benefit: str, category: str | None = None) -> str:
        await start_initiative(chat, name)
        await chat.tap("Bỏ qua")
        await chat.tap("Bỏ qua")
        await chat.say(benefit)
        if category is not None:
            assert "Bạn thuộc đối tượng nào?" in chat.text()
            await chat.tap(category)
        await chat.tap("Bỏ qua")
        await chat.tap("Xác nhận")
        return chat.text()

    done = await initiative("Cữ gá may cổ áo", "50 triệu")  # below every bar: nothing asked
    assert "Bằng Lao động sáng tạo" not in done
    # 90 triệu in total: over a worker's bar, not a professional's (150 triệu).
    done = await initiative("Tiết kiệm điện chiếu sáng", "40 triệu", "Chuyên môn")
    assert "TD2027-000002" in done and "Bằng Lao động sáng tạo" not in done

    rules = {"worker": 80_000_000, "professional": 90_000_000, "manager": 200_000_000}
    await set_settings(sessionmaker, org, {"rules": {"LDST": {"min_benefit_by_category": rules}}})
    done = await initiative("Khay đựng kim an toàn", "10 triệu")  # the category is known
    assert "Bằng Lao động sáng tạo" in done and "100 triệu đồng" in done
    assert "căn cứ: quy định riêng của phong trào" in done
    saved = await initiatives(sessionmaker)
    assert [i.author_category for i in saved] == [None, "professional", "professional"]


async def test_same_name_twice_is_caught(sessionmaker: Sessions, org: Org) -> None:
    chat = Chat(make_engine(sessionmaker), "550")
    await onboard_member(chat, sessionmaker)
    await start_initiative(chat)
    await skip_to_summary(chat)
    await chat.tap("Xác nhận")
    await chat.say("/sangkien")
    await chat.say("cải tiến dây chuyền may cổ áo")
    assert "TD2027-000001" in chat.text() and "trùng tên" in chat.text()


async def test_coauthor_is_told_and_sees_it_in_my_registrations(
    sessionmaker: Sessions, org: Org
) -> None:
    hoa = Chat(make_engine(sessionmaker), "600")
    await onboard_hoa(hoa)
    binh = Chat(make_engine(sessionmaker), "601")
    await onboard_member(binh, sessionmaker)
    await start_initiative(binh)
    await binh.say("Nguyen Thi")
    await binh.tap("Nguyễn Thị Hoa")
    await binh.tap("Xong")
    for _question in range(3):
        await binh.tap("Bỏ qua")
    await binh.tap("Xác nhận")
    assert "TD2027-000001" in binh.text()

    async with sessionmaker() as session:
        messages = list(await session.scalars(select(OutboxMessage)))
    assert [m.external_id for m in messages] == ["600"]
    assert "Trần Văn Bình" in messages[0].payload["text"]
    assert "đồng tác giả" in messages[0].payload["text"]

    await hoa.tap("Đăng ký của tôi")
    assert "Cải tiến dây chuyền may cổ áo" in hoa.text()
    assert "TD2027-000001" in hoa.text() and "đồng tác giả" in hoa.text()
    assert not any("Rút" in b for b in hoa.buttons())  # only the registrant may withdraw

    await binh.say("/cuatoi")
    assert "TD2027-000001" in binh.text()
    await binh.tap("Rút sáng kiến")
    await binh.tap("Có")
    assert "đã rút" in binh.text().lower()
    [saved] = await initiatives(sessionmaker)
    assert saved.status == "withdrawn" and saved.withdrawn_at is not None


async def test_cstdcs_counts_an_initiative_as_coauthor(sessionmaker: Sessions, org: Org) -> None:
    hoa = Chat(make_engine(sessionmaker), "700")
    await onboard_hoa(hoa)
    await hoa.say("/dangky")
    await hoa.say("CSTĐCS")
    assert "sáng kiến" in hoa.text()  # missing before
    await hoa.say("/cancel")

    binh = Chat(make_engine(sessionmaker), "701")
    await onboard_member(binh, sessionmaker)
    await start_initiative(binh)
    await binh.say("hoa")
    await binh.tap("Nguyễn Thị Hoa")
    await binh.tap("Xong")
    for _question in range(3):
        await binh.tap("Bỏ qua")
    await binh.tap("Xác nhận")

    await hoa.say("/dangky")
    await hoa.say("LĐTT")
    await hoa.tap("Bỏ qua")
    await hoa.tap("Xác nhận")
    await hoa.say("/dangky")
    await hoa.say("CSTĐCS")
    assert "sáng kiến" not in hoa.text()  # the initiative counts, LĐTT is there: no notes
    assert "cam kết" in hoa.text().lower()


async def test_receipts_continue_the_campaign_sequence(sessionmaker: Sessions, org: Org) -> None:
    chat = Chat(make_engine(sessionmaker), "800")
    await onboard_member(chat, sessionmaker)
    await chat.say("/dangky")
    await chat.say("LĐTT")
    await chat.tap("Bỏ qua")
    await chat.tap("Xác nhận")
    assert "TD2027-000001" in chat.text()
    await start_initiative(chat)
    await skip_to_summary(chat)
    assert "(chưa nêu)" in chat.text() and "(không có)" in chat.text()
    await chat.tap("Xác nhận")
    assert "TD2027-000002" in chat.text()


async def test_coauthor_search_stays_in_the_unit(sessionmaker: Sessions, org: Org) -> None:
    async with sessionmaker() as session, session.begin():
        session.add(Person(full_name="Hoàng Thị Hoa", unit_id=org.school.id, source="roster"))
    chat = Chat(make_engine(sessionmaker), "900")
    await onboard_member(chat, sessionmaker)
    await start_initiative(chat)
    await chat.say("hoa")
    assert any("Nguyễn Thị Hoa" in b for b in chat.buttons())
    assert not any("Hoàng Thị Hoa" in b for b in chat.buttons())  # another unit
    await chat.tap("Tìm lại")
    await chat.say("xyz")
    assert "Không tìm thấy" in chat.text()
    assert "đồng tác giả" in chat.text() or "Bỏ qua" in " ".join(chat.buttons())


async def test_approved_unit_list_keeps_the_initiative_out(
    sessionmaker: Sessions, org: Org
) -> None:
    chat = Chat(make_engine(sessionmaker), "950")
    await onboard_member(chat, sessionmaker)
    await start_initiative(chat)
    await skip_to_summary(chat)
    # Meanwhile the upper level approves the unit's list: changes need it reopened.
    async with sessionmaker() as session, session.begin():
        session.add(
            UnitSubmission(
                campaign_id=org.campaign.id,
                unit_id=org.garment.id,
                status=SubmissionStatus.APPROVED,
            )
        )
    await chat.tap("Xác nhận")
    assert "đã được cấp trên duyệt" in chat.text()
    assert await initiatives(sessionmaker) == []
