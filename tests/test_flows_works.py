"""Registering a commemorative work (công trình chào mừng) by chat, as a unit leader."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import (
    AuditEntry,
    Campaign,
    Role,
    SubmissionStatus,
    UnitRole,
    UnitSubmission,
    Work,
)
from tests.chat import Chat
from tests.factories import Org, make_org
from tests.test_flows import make_engine, onboard_new

Sessions = async_sessionmaker[AsyncSession]

OCCASIONS = [
    "97 năm Ngày thành lập Công đoàn Việt Nam (28/7)",
    {"name": "Tháng Công nhân", "date": "2027-05-01"},  # the mapping form works too
]


@pytest.fixture
async def org(sessionmaker: Sessions) -> Org:
    org = await make_org(sessionmaker)
    async with sessionmaker() as session, session.begin():
        campaign = await session.get(Campaign, org.campaign.id)
        assert campaign is not None
        campaign.settings = {"occasions": OCCASIONS}
    return org


async def make_leader(sessionmaker: Sessions, org: Org, *units: int) -> Chat:
    """Nguyễn Thị Hoa (rostered) with the leader role on the given units, in the menu."""
    async with sessionmaker() as session, session.begin():
        for unit_id in units or (org.garment.id,):
            session.add(UnitRole(person_id=org.rostered.id, unit_id=unit_id, role=Role.LEADER))
    chat = Chat(make_engine(sessionmaker), "leader")
    await chat.say("/start")
    await chat.contact("+84912345678")
    await chat.tap("là tôi")
    return chat


async def works(sessionmaker: Sessions) -> list[Work]:
    async with sessionmaker() as session:
        return list(await session.scalars(select(Work).order_by(Work.id)))


async def fill_until_dates(chat: Chat, name: str = "Nhà xe cho công nhân") -> None:
    await chat.say(name)
    await chat.tap("Công đoàn Việt Nam")
    await chat.say("500 triệu")


async def test_member_who_leads_nothing_is_told_kindly(sessionmaker: Sessions, org: Org) -> None:
    chat = Chat(make_engine(sessionmaker), "member")
    await onboard_new(chat)
    assert not any("công trình" in b.lower() for b in chat.buttons())  # not in the menu
    await chat.say("/congtrinh")
    assert "Chủ tịch công đoàn" in chat.text()
    assert "Đăng ký danh hiệu" in " ".join(chat.buttons())  # back at the menu
    assert await works(sessionmaker) == []


async def test_leader_registers_a_work(sessionmaker: Sessions, org: Org) -> None:
    chat = await make_leader(sessionmaker, org)
    await chat.tap("Đăng ký công trình")  # the menu shows it to leaders
    assert "Công ty May Bắc Kạn" in chat.text()
    await chat.say("Nhà xe cho công nhân")
    # A long occasion is shortened on its button (≤ 32 characters), its whole name kept.
    assert any(b.startswith("97 năm Ngày thành lập") for b in chat.buttons())
    assert "Tháng Công nhân" in chat.buttons() and "Dịp khác" in chat.buttons()
    await chat.tap("Công đoàn Việt Nam")
    await chat.say("1,2 tỷ")
    await chat.say("01/03/2027")
    assert "01/03/2027" in chat.text()  # the finish question recalls the start
    await chat.say("28/07/2027")
    assert "gắn biển" in chat.text()
    await chat.tap("Có")

    summary = chat.text()
    for shown in (
        "Nhà xe cho công nhân",
        "Công ty May Bắc Kạn",
        "97 năm Ngày thành lập Công đoàn Việt Nam (28/7)",
        "1,2 tỷ đồng",
        "01/03/2027 – 28/07/2027",
        "Đề nghị gắn biển: Có",
    ):
        assert shown in summary, shown
    await chat.tap("Xác nhận")
    assert "TD2027-000001" in chat.text()

    [work] = await works(sessionmaker)
    assert (work.unit_id, work.occasion, work.value, work.plaque_requested) == (
        org.garment.id,
        "97 năm Ngày thành lập Công đoàn Việt Nam (28/7)",
        1_200_000_000,
        True,
    )
    assert (work.starts_on, work.ends_on, work.entered_by_id) == (
        date(2027, 3, 1),
        date(2027, 7, 28),
        org.rostered.id,
    )
    async with sessionmaker() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "work.create"))
    assert entry is not None and entry.actor_id == org.rostered.id


async def test_wrong_answers_are_reasked(sessionmaker: Sessions, org: Org) -> None:
    chat = await make_leader(sessionmaker, org)
    await chat.say("/congtrinh")
    await chat.say("Nhà xe cho công nhân")
    await chat.tap("Dịp khác")
    await chat.say("Đại hội Công đoàn tỉnh lần thứ XI")
    await chat.say("rất nhiều tiền")
    assert "1,2 tỷ" in chat.text()  # re-asked with an example
    await chat.say("0 đồng")
    assert "lớn hơn 0" in chat.text()
    await chat.say("1.200.000.000")

    await chat.say("01/02/2028")  # after the campaign ends
    assert "31/12/2027" in chat.text()
    await chat.say("01/06/2026")
    await chat.say("31/12/2026")  # finished before the campaign's first phase
    assert "01/01/2027" in chat.text()
    await chat.say("15/03/2026")  # before the start
    assert "01/06/2026" in chat.text() and "khởi công" in chat.text()
    await chat.say("30/04/2027")
    await chat.say("không")
    assert "Đề nghị gắn biển: Không" in chat.text()
    assert "Đại hội Công đoàn tỉnh lần thứ XI" in chat.text()
    await chat.tap("Xác nhận")
    [work] = await works(sessionmaker)
    assert (work.occasion, work.value, work.starts_on, work.ends_on, work.plaque_requested) == (
        "Đại hội Công đoàn tỉnh lần thứ XI",
        1_200_000_000,
        date(2026, 6, 1),
        date(2027, 4, 30),
        False,
    )


async def test_edit_from_summary(sessionmaker: Sessions, org: Org) -> None:
    chat = await make_leader(sessionmaker, org)
    await chat.say("/congtrinh")
    await fill_until_dates(chat)
    await chat.say("01/03/2027")
    await chat.say("28/07/2027")
    await chat.tap("Không")

    await chat.tap("Sửa giá trị")
    await chat.say("80 triệu")
    assert "80 triệu đồng" in chat.text() and "Xác nhận" in " ".join(chat.buttons())

    await chat.tap("Sửa thời gian")  # both dates are asked again, then the summary
    await chat.say("01/08/2027")
    assert "ngày nào" in chat.text()
    await chat.say("02/09/2027")
    assert "01/08/2027 – 02/09/2027" in chat.text()
    assert "80 triệu đồng" in chat.text()

    await chat.tap("Sửa dịp chào mừng")
    await chat.tap("Tháng Công nhân")
    assert "• Chào mừng: Tháng Công nhân" in chat.text()
    await chat.tap("Sửa đề nghị gắn biển")
    await chat.tap("Có")
    assert "Đề nghị gắn biển: Có" in chat.text()
    await chat.tap("Xác nhận")
    [work] = await works(sessionmaker)
    assert (work.value, work.starts_on, work.occasion, work.plaque_requested) == (
        80_000_000,
        date(2027, 8, 1),
        "Tháng Công nhân",
        True,
    )


async def test_leader_of_two_units_is_asked_which(sessionmaker: Sessions, org: Org) -> None:
    chat = await make_leader(sessionmaker, org, org.garment.id, org.school.id)
    await chat.say("/congtrinh")
    assert "đơn vị nào" in chat.text()
    await chat.tap("Trường THPT Chợ Đồn")
    assert "Trường THPT Chợ Đồn" in chat.text()
    await fill_until_dates(chat, "Sân bóng chuyền")
    await chat.say("01/03/2027")
    await chat.say("30/04/2027")
    await chat.tap("Không")
    await chat.tap("Xác nhận")
    [work] = await works(sessionmaker)
    assert work.unit_id == org.school.id


async def test_works_share_the_receipt_sequence_and_show_in_my_list(
    sessionmaker: Sessions, org: Org
) -> None:
    chat = await make_leader(sessionmaker, org)
    await chat.say("/dangky")
    await chat.say("LĐTT")
    await chat.tap("Bỏ qua")
    await chat.tap("Xác nhận")
    assert "TD2027-000001" in chat.text()
    await chat.say("/congtrinh")
    await fill_until_dates(chat)
    await chat.say("01/03/2027")
    await chat.say("28/07/2027")
    await chat.tap("Có")
    await chat.tap("Xác nhận")
    assert "TD2027-000002" in chat.text()

    await chat.say("/cuatoi")
    listing = chat.text()
    assert "TD2027-000001" in listing and "Lao động tiên tiến" in listing
    assert "Nhà xe cho công nhân: 500 triệu đồng" in listing and "TD2027-000002" in listing
    await chat.tap("Rút công trình")
    await chat.tap("Có")
    assert "TD2027-000002" in chat.text() and "đã rút" in chat.text().lower()
    [work] = await works(sessionmaker)
    assert work.status == "withdrawn"
    async with sessionmaker() as session:
        actions = set(await session.scalars(select(AuditEntry.action)))
    assert "work.withdraw" in actions


async def test_role_taken_away_midway_saves_nothing(sessionmaker: Sessions, org: Org) -> None:
    chat = await make_leader(sessionmaker, org)
    await chat.say("/congtrinh")
    await fill_until_dates(chat)
    await chat.say("01/03/2027")
    await chat.say("28/07/2027")
    await chat.tap("Có")
    async with sessionmaker() as session, session.begin():
        role = await session.scalar(select(UnitRole).where(UnitRole.role == Role.LEADER))
        await session.delete(role)
    await chat.tap("Xác nhận")
    assert "không còn phụ trách" in chat.text()
    assert await works(sessionmaker) == []


async def test_approved_unit_list_keeps_the_work_out(sessionmaker: Sessions, org: Org) -> None:
    chat = await make_leader(sessionmaker, org)
    await chat.say("/congtrinh")
    await fill_until_dates(chat)
    await chat.say("01/03/2027")
    await chat.say("28/07/2027")
    await chat.tap("Có")
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
    assert await works(sessionmaker) == []
