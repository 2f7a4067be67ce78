"""Registering a commemorative work (công trình chào mừng) by chat, as a unit leader."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import (
    AuditEntry,
    Campaign,
    CampaignPhase,
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
VN = ZoneInfo("Asia/Ho_Chi_Minh")

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
    assert "ngày nào" in chat.text()  # a typed occasion is asked its day
    await chat.say("hôm nào đó")
    await chat.say("15/09/2027")
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
    assert "Đại hội Công đoàn tỉnh lần thứ XI (15/09/2027)" in chat.text()
    await chat.tap("Xác nhận")
    [work] = await works(sessionmaker)
    assert work.occasion_on == date(2027, 9, 15)
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
    assert "• Chào mừng: Tháng Công nhân (01/05/2027)" in chat.text()
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


# --- works through the year ------------------------------------------------------------------


async def test_works_are_registered_in_phase_2_after_the_january_deadline(
    sessionmaker: Sessions, org: Org
) -> None:
    """In August, long after registration closed on 25/01, a work for an occasion of phase 2
    is welcome; the occasions of phase 1 (ended 30/06) are no longer offered, and a typed day
    in phase 1 is refused kindly."""
    async with sessionmaker() as session, session.begin():
        campaign = await session.get(Campaign, org.campaign.id)
        assert campaign is not None
        campaign.settings = {
            "occasions": [
                {"name": "Tháng Công nhân", "date": "2027-05-01"},
                {"name": "Kỷ niệm 98 năm Ngày thành lập Công đoàn Việt Nam", "date": "2027-07-28"},
                {"name": "Ngày Quốc khánh", "date": "2027-09-02"},
            ]
        }
    # The unit's list of January was approved: a work of phase 2 is new, not a change to it.
    async with sessionmaker() as session, session.begin():
        session.add(
            UnitSubmission(
                campaign_id=org.campaign.id,
                unit_id=org.garment.id,
                status=SubmissionStatus.APPROVED,
            )
        )
    august = datetime(2027, 8, 10, 9, 0, tzinfo=VN)
    await make_leader(sessionmaker, org)
    chat = Chat(make_engine(sessionmaker, august), "leader")
    # Titles are closed...
    await chat.say("/dangky")
    assert "25/01/2027" in chat.text()
    # ...works are not.
    await chat.say("/congtrinh")
    await chat.say("Vườn hoa Xanh – Sạch – Đẹp")
    buttons = chat.buttons()
    assert "Ngày Quốc khánh" in buttons
    # Shortened to fit a phone's button (≤ 32 characters); typed whole it is still found.
    assert "Kỷ niệm 98 năm Ngày thành lập…" in buttons
    assert not any("Tháng Công nhân" in b for b in buttons)  # phase 1 is over
    await chat.tap("Dịp khác")
    await chat.say("Tháng hành động về an toàn, vệ sinh lao động")
    await chat.say("15/05/2027")
    assert "Đợt 1" in chat.text() and "30/06/2027" in chat.text()  # refused, with why
    await chat.say("02/09/2027")
    await chat.say("300 triệu")
    await chat.say("15/08/2027")
    await chat.say("30/08/2027")
    await chat.tap("Có")
    await chat.tap("Xác nhận")
    assert "TD2027-000001" in chat.text()
    [work] = await works(sessionmaker)
    assert (work.occasion, work.occasion_on, work.plaque_requested) == (
        "Tháng hành động về an toàn, vệ sinh lao động",
        date(2027, 9, 2),
        True,
    )

    # After the last phase, works close too.
    january = datetime(2028, 1, 2, 9, 0, tzinfo=VN)
    late = Chat(make_engine(sessionmaker, january), "leader")
    await late.say("/congtrinh")
    assert "chưa có" in late.text() and "bạn muốn làm gì" in late.text().lower()
    assert len(await works(sessionmaker)) == 1


async def test_leader_follows_a_plaque_up_in_the_chat(sessionmaker: Sessions, org: Org) -> None:
    chat = await make_leader(sessionmaker, org)
    await chat.say("/congtrinh")
    await fill_until_dates(chat)
    await chat.say("01/03/2027")
    await chat.say("28/07/2027")
    await chat.tap("Có")
    await chat.tap("Xác nhận")

    await chat.say("/cuatoi")
    assert "đề nghị gắn biển" in chat.text()
    plaque = [b for b in chat.buttons() if "gắn biển" in b]
    assert plaque == ["🏷️ Đã gắn biển: Nhà xe cho công…"]
    assert all(len(b) <= 32 for b in plaque)
    await chat.tap("Đã gắn biển")
    assert "đã được gắn biển chưa" in chat.text()
    await chat.tap("Chưa")  # not yet: nothing changes
    [work] = await works(sessionmaker)
    assert work.plaque_installed_on is None

    # On 29/07, in the second phase, after the January deadline and with the list approved
    # (a plaque is a follow-up, not a change of the registration).
    async with sessionmaker() as session, session.begin():
        session.add(
            UnitSubmission(
                campaign_id=org.campaign.id,
                unit_id=org.garment.id,
                status=SubmissionStatus.APPROVED,
            )
        )
    later = Chat(make_engine(sessionmaker, datetime(2027, 7, 29, 9, 0, tzinfo=VN)), "leader")
    await later.say("/cuatoi")
    await later.tap("Đã gắn biển")
    await later.tap("Đã gắn biển")
    assert "đã gắn biển ngày 29/07/2027" in later.text()
    assert not any("gắn biển" in b for b in later.buttons())  # nothing left to follow up
    [work] = await works(sessionmaker)
    assert work.plaque_installed_on == date(2027, 7, 29)
    async with sessionmaker() as session:
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "work.plaque_installed")
        )
    assert entry is not None and entry.actor_id == org.rostered.id

    # A member who leads nothing is offered no plaque to mark.
    stranger = Chat(make_engine(sessionmaker), "stranger")
    await onboard_new(stranger)
    await stranger.say("/cuatoi")
    assert not any("gắn biển" in b for b in stranger.buttons())


async def test_works_close_with_their_last_phase_while_the_campaign_runs(
    sessionmaker: Sessions, org: Org
) -> None:
    """A school-year plan whose phase 2 ends on 30/11: in December the campaign still runs
    (its year does), but works are closed, and the leader is told since when."""
    async with sessionmaker() as session, session.begin():
        phase = await session.scalar(
            select(CampaignPhase).where(
                CampaignPhase.campaign_id == org.campaign.id, CampaignPhase.position == 2
            )
        )
        assert phase is not None
        phase.ends_on = date(2027, 11, 30)
    await make_leader(sessionmaker, org)
    chat = Chat(make_engine(sessionmaker, datetime(2027, 12, 10, 9, 0, tzinfo=VN)), "leader")
    await chat.say("/congtrinh")
    assert "chỉ đăng ký được đến hết ngày 30/11/2027" in chat.text()
    assert await works(sessionmaker) == []
