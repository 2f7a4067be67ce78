"""Reference data kept per process (storage.refcache): a change made elsewhere — another
process, a command, an officer's edit — shows in the very next answer of the bot, on SQLite
and PostgreSQL; and a bot's own write is read back in the same update."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.engine.flow import EngineConfig
from handlers.flows import build_engine
from storage.invites import create_invite
from storage.models import (
    Campaign,
    ReferenceVersion,
    Role,
    SubmissionStatus,
    Title,
    UnitRole,
    UnitSubmission,
)
from tests.chat import Chat
from tests.factories import Org, make_org

JAN_10 = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)  # 09:00 in Hà Nội, registration open


async def rostered_member_at_menu(sessionmaker: async_sessionmaker[AsyncSession]) -> Chat:
    chat = Chat(build_engine(sessionmaker, EngineConfig(now=lambda: JAN_10)), "100")
    await chat.say("/start")
    await chat.contact("+84912345678")
    await chat.tap("là tôi")
    return chat


async def reference_version(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(ReferenceVersion.version)) or 0)


async def test_a_title_renamed_or_withdrawn_elsewhere_shows_in_the_next_answer(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await make_org(sessionmaker)
    chat = await rostered_member_at_menu(sessionmaker)
    await chat.tap("Đăng ký danh hiệu")
    assert "Lao động tiên tiến" in " ".join(chat.buttons())
    await chat.say("/huy")
    before = await reference_version(sessionmaker)

    # An officer edits the catalogue in another process (an ORM change)...
    async with sessionmaker() as session, session.begin():
        title = await session.scalar(select(Title).where(Title.code == "LDTT"))
        assert title is not None
        title.name = "Lao động tiên tiến năm 2027"
    await chat.say("/dangky")
    # Shortened on the button (≤ 32 characters), the new name all the same.
    assert "LĐ tiên tiến năm 2027 (LĐTT)" in chat.buttons()

    # ... and withdraws a title with a plain statement.
    async with sessionmaker() as session, session.begin():
        await session.execute(update(Title).where(Title.code == "LDTT").values(active=False))
    await chat.say("/huy")
    await chat.say("/dangky")
    assert "Lao động tiên tiến" not in " ".join(chat.buttons())
    assert "Chiến sĩ thi đua cơ sở" in " ".join(chat.buttons())
    assert await reference_version(sessionmaker) == before + 2


async def test_a_role_granted_elsewhere_opens_the_leader_menu_at_once(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    org: Org = await make_org(sessionmaker)
    chat = await rostered_member_at_menu(sessionmaker)
    assert not any("Đăng ký công trình" in b for b in chat.buttons())
    async with sessionmaker() as session, session.begin():
        session.add(UnitRole(person_id=org.rostered.id, unit_id=org.garment.id, role=Role.LEADER))
    await chat.say("/huy")
    assert any("Đăng ký công trình" in b for b in chat.buttons()), chat.transcript()


async def test_receipt_numbers_do_not_empty_the_cache(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A registration counts its receipt number on the campaign row: not a change of the
    campaign, so the bots keep what they read."""
    await make_org(sessionmaker)
    chat = await rostered_member_at_menu(sessionmaker)
    before = await reference_version(sessionmaker)
    await chat.tap("Đăng ký danh hiệu")
    await chat.say("lao dong tien tien")
    await chat.tap("Bỏ qua")
    await chat.tap("Xác nhận")
    assert "TD2027-000001" in chat.text()
    assert await reference_version(sessionmaker) == before


async def test_a_campaign_launched_elsewhere_is_offered_in_the_next_answer(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    org: Org = await make_org(sessionmaker)
    chat = await rostered_member_at_menu(sessionmaker)
    await chat.tap("Đăng ký danh hiệu")  # one campaign open: straight to the titles
    assert "Lao động tiên tiến" in " ".join(chat.buttons())
    await chat.say("/huy")
    async with sessionmaker() as session, session.begin():  # `thidua campaign load`
        session.add(
            Campaign(
                code="CD2027",
                name="Phong trào thi đua chuyên đề 2027",
                issuer_unit_id=org.province.id,
                year=2027,
                registration_deadline=date(2027, 2, 28),
                title_codes=["LDTT"],
                settings={},
            )
        )
    await chat.say("/dangky")
    # Shortened on the button (≤ 32 characters); the new campaign is offered.
    assert "Phong trào thi đua chuyên đề…" in chat.buttons(), chat.transcript()


async def test_a_leader_invite_opens_the_leader_menu_in_the_same_answer(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The member's roles were read (and kept) when their menu was shown; the invite grants a
    role in this very update, and the menu that follows it already has the leader's entries."""
    await make_org(sessionmaker)
    chat = await rostered_member_at_menu(sessionmaker)
    assert not any("Đăng ký công trình" in b for b in chat.buttons())
    async with sessionmaker() as session, session.begin():
        invite = await create_invite(session, "leader", "CDCS-MAY", now=JAN_10)
    await chat.say(f"/start {invite.code}")
    assert any("Đăng ký công trình" in b for b in chat.buttons()), chat.transcript()


async def test_a_list_approved_elsewhere_stops_the_next_registration(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Whether an approved list covers the member's unit is kept (most units have none, and
    every registration asks); the officer's approval, made by another process, is seen in
    the member's very next answer, and its reopening in the one after."""
    org: Org = await make_org(sessionmaker)
    chat = await rostered_member_at_menu(sessionmaker)
    await chat.tap("Đăng ký danh hiệu")  # no list approved: straight to the titles
    assert "Lao động tiên tiến" in " ".join(chat.buttons())
    await chat.say("/huy")
    async with sessionmaker() as session, session.begin():  # the officer approves
        session.add(
            UnitSubmission(
                campaign_id=org.campaign.id,
                unit_id=org.upper.id,
                status=SubmissionStatus.APPROVED,
            )
        )
    await chat.say("/dangky")
    assert "đã được" in chat.text() and "duyệt" in chat.text(), chat.transcript()
    assert not any("Lao động tiên tiến" in b for b in chat.buttons())
    async with sessionmaker() as session, session.begin():  # reopened
        await session.execute(
            update(UnitSubmission)
            .where(UnitSubmission.campaign_id == org.campaign.id)
            .values(status=SubmissionStatus.RETURNED)
        )
    await chat.say("/dangky")
    assert "Lao động tiên tiến" in " ".join(chat.buttons()), chat.transcript()
