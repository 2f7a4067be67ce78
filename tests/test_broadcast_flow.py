"""/thongbao through the engine: who may use it, the audience counts, the preview, the
schedule, and the "📝 Đăng ký ngay" button of a sent announcement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.broadcasts import Announcement, announcement_parts
from handlers.engine.flow import EngineConfig
from handlers.engine.prompt import Incoming
from handlers.engine.runner import Engine
from handlers.flows import build_engine
from storage.broadcasts import ROLE_LEADER, ROLE_OFFICER, Audience, count_audience
from storage.models import (
    Broadcast,
    BroadcastStatus,
    ChannelIdentity,
    Conversation,
    Person,
    Registration,
    RegistrationStatus,
    Role,
    Unit,
    UnitKind,
    UnitRole,
)
from tests.chat import Chat
from tests.factories import Org, add_unit, make_org

JAN_10 = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)  # 09:00 in Hà Nội


@dataclass
class Tree:
    org: Org
    team: Unit  # a team under the garment union
    officer_chat: str


async def add_person(
    sessionmaker: async_sessionmaker[AsyncSession],
    unit: Unit,
    name: str,
    *,
    chat: tuple[str, str] | None = None,
    roles: tuple[tuple[str, Unit], ...] = (),
) -> int:
    async with sessionmaker() as session, session.begin():
        person = Person(full_name=name, unit_id=unit.id, source="roster")
        session.add(person)
        await session.flush()
        for role, role_unit in roles:
            session.add(UnitRole(person_id=person.id, unit_id=role_unit.id, role=role))
        if chat is not None:
            session.add(ChannelIdentity(channel=chat[0], external_id=chat[1], person_id=person.id))
        return person.id


@pytest.fixture
async def tree(sessionmaker: async_sessionmaker[AsyncSession]) -> Tree:
    """Province → upper union → {garment (→ team), school}; people on three channels."""
    org = await make_org(sessionmaker)
    async with sessionmaker() as session, session.begin():
        team = await add_unit(session, "TO-MAY-1", "Tổ may 1", UnitKind.TEAM, org.garment)
    await add_person(
        sessionmaker,
        org.upper,
        "Lê Văn Cán",
        chat=("test", "officer"),
        roles=((Role.OFFICER, org.upper),),
    )
    await add_person(
        sessionmaker,
        org.garment,
        "Phạm Chủ Tịch",
        chat=("telegram", "501"),
        roles=((Role.LEADER, org.garment),),
    )
    await add_person(sessionmaker, org.garment, "Đoàn Viên A", chat=("telegram", "502"))
    await add_person(sessionmaker, team, "Đoàn Viên B", chat=("zalo_bot", "z503"))
    await add_person(sessionmaker, org.school, "Giáo Viên C", chat=("telegram", "504"))
    await add_person(sessionmaker, org.school, "Giáo Viên D")  # no chat with the bot
    return Tree(org, team, "officer")


@pytest.fixture
def bot(sessionmaker: async_sessionmaker[AsyncSession]) -> Engine:
    return build_engine(sessionmaker, EngineConfig(now=lambda: JAN_10))


async def officer(bot: Engine) -> Chat:
    chat = Chat(bot, "officer")
    await chat.say("/start")
    return chat


# --- who may use it ----------------------------------------------------------------------------


async def test_a_member_cannot_send_announcements(bot: Engine, tree: Tree) -> None:
    member = Chat(bot, "member-x")
    async with bot.sessionmaker() as session, session.begin():
        person = await session.scalar(select(Person).where(Person.full_name == "Đoàn Viên A"))
        assert person is not None
        session.add(ChannelIdentity(channel="test", external_id="member-x", person_id=person.id))
    await member.say("/thongbao")
    assert "cán bộ công đoàn" in member.text()
    assert "Gửi thông báo" not in " ".join(member.buttons())  # not in the menu either
    async with bot.sessionmaker() as session:
        assert await session.scalar(select(Broadcast)) is None


async def test_the_officer_menu_offers_announcements(bot: Engine, tree: Tree) -> None:
    chat = await officer(bot)
    await chat.tap("Gửi thông báo")
    assert "nội dung thông báo" in chat.text()


# --- the audience ------------------------------------------------------------------------------


async def test_audience_counts_subtree_units_roles_and_unregistered(
    sessionmaker: async_sessionmaker[AsyncSession], tree: Tree
) -> None:
    org = tree.org
    async with sessionmaker() as session:
        upper = await session.get(Unit, org.upper.id)
        garment = await session.get(Unit, org.garment.id)
        school = await session.get(Unit, org.school.id)
        assert upper and garment and school
        whole = await count_audience(session, Audience((upper.path,)))
        # Everyone of the upper union's subtree: the officer, 5 members and the rostered
        # Nguyễn Thị Hoa of make_org (no chat), of whom 4 on Telegram/Zalo and the officer
        # on the test channel.
        assert whole.people == 7
        assert whole.by_channel == {"telegram": 3, "zalo_bot": 1, "test": 1}
        assert whole.no_chat == 2
        garment_only = await count_audience(session, Audience((garment.path,)))
        assert garment_only.people == 4  # Hoa, the leader, A, and B in the team below
        assert garment_only.by_channel == {"telegram": 2, "zalo_bot": 1}
        school_only = await count_audience(session, Audience((school.path,)))
        assert (school_only.people, school_only.no_chat) == (2, 1)
        leaders = await count_audience(session, Audience((upper.path,), ROLE_LEADER))
        assert (leaders.people, leaders.by_channel) == (1, {"telegram": 1})
        officers = await count_audience(session, Audience((upper.path,), ROLE_OFFICER))
        assert (officers.people, officers.by_channel) == (1, {"test": 1})

    # Member A registers: "not registered yet" leaves A out.
    async with sessionmaker() as session, session.begin():
        a = await session.scalar(select(Person).where(Person.full_name == "Đoàn Viên A"))
        assert a is not None
        session.add(
            Registration(
                receipt_no="TD2027-000001",
                campaign_id=org.campaign.id,
                title_code="LDTT",
                person_id=a.id,
                unit_id=org.garment.id,
                status=RegistrationStatus.SUBMITTED,
            )
        )
    async with sessionmaker() as session:
        unregistered = await count_audience(
            session, Audience((org.garment.path,), unregistered_in=org.campaign.id)
        )
        assert unregistered.people == 3
        assert unregistered.by_channel == {"telegram": 1, "zalo_bot": 1}


# --- the conversation -----------------------------------------------------------------------


TEXT = "Kính gửi các đồng chí đoàn viên: Công đoàn phát động phong trào thi đua năm 2027."


async def test_preview_chosen_units_and_not_registered_then_send_now(
    bot: Engine, tree: Tree
) -> None:
    chat = await officer(bot)
    await chat.say("/thongbao")
    assert "Công đoàn Khu công nghiệp Thanh Bình" in chat.text()
    await chat.say(TEXT)
    assert "đính kèm" in chat.text()
    await chat.tap("Bỏ qua")
    await chat.tap("Chỉ một số đơn vị")
    assert "☐ CĐCS Công ty May Bắc Kạn" in chat.buttons()  # shortened to fit a phone
    await chat.tap("Công ty May")
    assert "☑ CĐCS Công ty May Bắc Kạn" in chat.buttons()
    await chat.tap("Xong (đã chọn 1)")
    await chat.tap("Tất cả đoàn viên")
    await chat.tap("Phong trào thi đua năm 2027")
    await chat.tap("Chỉ người chưa đăng ký")

    # The preview: the announcement as members get it, then the counts.
    texts = [r.text for r in chat.last]
    announcement = next(r for r in chat.last if TEXT in r.text)
    assert announcement.text.startswith("📣 THÔNG BÁO của Công đoàn Khu công nghiệp Thanh Bình\n\n")
    assert [c.label for c in announcement.choices] == ["📝 Đăng ký ngay"]
    counts = texts[-1]
    assert "Công đoàn cơ sở Công ty May Bắc Kạn" in counts
    assert "chỉ người chưa đăng ký" in counts
    assert "Người nhận: 4 người" in counts
    assert "qua Telegram: 2" in counts and "qua Zalo: 1" in counts
    assert "chưa từng nhắn với bot (sẽ không nhận được): 1" in counts

    # Its button, pressed in the preview, explains itself and keeps the draft.
    await chat.press("Đăng ký ngay", in_message=TEXT)
    assert "chỉ là bản xem trước" in chat.text()
    await chat.tap("Gửi ngay")
    assert "Gửi thông báo cho 3 người ngay bây giờ?" in chat.text()
    await chat.tap("Xác nhận gửi")
    assert "đang được gửi" in chat.text()

    async with bot.sessionmaker() as session:
        broadcast = await session.scalar(select(Broadcast))
    assert broadcast is not None
    assert broadcast.status == BroadcastStatus.SCHEDULED
    assert broadcast.scheduled_at == JAN_10
    assert broadcast.unit_id == tree.org.upper.id
    assert broadcast.audience == {
        "unit_ids": [tree.org.garment.id],
        "role": "all",
        "unregistered": True,
    }
    assert broadcast.campaign_id == tree.org.campaign.id and broadcast.register_button
    assert (broadcast.progress_channel, broadcast.progress_external_id) == ("test", "officer")
    assert broadcast.text == TEXT


async def test_schedule_for_a_local_time(bot: Engine, tree: Tree) -> None:
    chat = await officer(bot)
    await chat.say("/thongbao")
    await chat.say(TEXT)
    await chat.tap("Bỏ qua")
    await chat.tap("Toàn bộ")
    await chat.tap("Chỉ chủ tịch công đoàn")
    await chat.tap("Không gắn phong trào")
    assert "Người nhận: 1 người" in chat.text()
    await chat.tap("Hẹn giờ gửi")
    await chat.say("08:00 09/01/2027")
    assert "đã qua" in chat.text()
    await chat.say("8h30 12/1")
    assert "Gửi thông báo cho 1 người lúc 08:30 ngày 12/01/2027?" in chat.text()
    await chat.tap("Xác nhận gửi")
    assert "đã được hẹn gửi lúc 08:30 ngày 12/01/2027" in chat.text()

    async with bot.sessionmaker() as session:
        broadcast = await session.scalar(select(Broadcast))
    assert broadcast is not None
    assert broadcast.scheduled_at == datetime(2027, 1, 12, 1, 30, tzinfo=UTC)
    assert broadcast.audience["role"] == "leader" and broadcast.campaign_id is None
    assert broadcast.progress_ref is None  # a fresh progress message when it starts


async def test_a_scheduled_announcement_can_be_cancelled(bot: Engine, tree: Tree) -> None:
    chat = await officer(bot)
    await chat.say("/thongbao")
    await chat.say(TEXT)
    await chat.tap("Bỏ qua")
    await chat.tap("Toàn bộ")
    await chat.tap("Tất cả đoàn viên")
    await chat.tap("Không gắn phong trào")
    await chat.tap("Hẹn giờ gửi")
    await chat.tap("Sáng mai")
    await chat.tap("Xác nhận gửi")
    await chat.press("Hủy thông báo")
    assert "Đã hủy thông báo" in chat.text()
    async with bot.sessionmaker() as session:
        broadcast = await session.scalar(select(Broadcast))
    assert broadcast is not None and broadcast.status == BroadcastStatus.CANCELLED


async def test_edit_the_text_from_the_preview(bot: Engine, tree: Tree) -> None:
    chat = await officer(bot)
    await chat.say("/thongbao")
    await chat.say(TEXT)
    await chat.tap("Bỏ qua")
    await chat.tap("Toàn bộ")
    await chat.tap("Tất cả đoàn viên")
    await chat.tap("Không gắn phong trào")
    await chat.tap("Sửa nội dung")
    await chat.say("Kính gửi các đồng chí: nội dung đã sửa lại cho rõ hơn.")
    assert any("nội dung đã sửa lại" in r.text for r in chat.last)  # back at the preview
    assert "Người nhận: 7 người" in chat.text()


# --- the announcement's button -------------------------------------------------------------------


async def test_register_now_opens_the_registration_for_the_campaign(
    bot: Engine, tree: Tree
) -> None:
    async with bot.sessionmaker() as session, session.begin():
        a = await session.scalar(select(Person).where(Person.full_name == "Đoàn Viên A"))
        assert a is not None
        session.add(ChannelIdentity(channel="test", external_id="member-a", person_id=a.id))
    # What the member received (the sender builds exactly these parts).
    parts = announcement_parts(
        Announcement("Công đoàn KCN", TEXT, tree.org.campaign.id, register_button=True), "test"
    )
    member = Chat(bot, "member-a")
    member.replies.extend(parts)
    await member.press("Đăng ký ngay")
    assert "khen thưởng nào trong “Phong trào thi đua năm 2027”" in member.text()
    assert any("Lao động tiên tiến" in label for label in member.buttons())
    async with bot.sessionmaker() as session:
        conv = await session.scalar(
            select(Conversation)
            .join(ChannelIdentity, ChannelIdentity.id == Conversation.identity_id)
            .where(ChannelIdentity.external_id == "member-a")
        )
    assert conv is not None and (conv.flow, conv.step) == ("title", "title")
    assert conv.data["draft"]["campaign_id"] == tree.org.campaign.id


async def test_an_old_register_button_after_the_deadline_says_so(
    sessionmaker: async_sessionmaker[AsyncSession], tree: Tree
) -> None:
    late = build_engine(sessionmaker, EngineConfig(now=lambda: datetime(2027, 2, 1, tzinfo=UTC)))
    async with sessionmaker() as session, session.begin():
        a = await session.scalar(select(Person).where(Person.full_name == "Đoàn Viên A"))
        assert a is not None
        session.add(ChannelIdentity(channel="test", external_id="member-a", person_id=a.id))
    result = await late.handle(
        Incoming(Chat(late, "member-a").address, choice_id=f"!reg:{tree.org.campaign.id}", seq=None)
    )
    assert "25/01/2027" in result.replies[0].text
