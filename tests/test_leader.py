"""The unit leader's and the officer's conversations, driven through the engine."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.engine.flow import EngineConfig
from handlers.engine.prompt import Incoming
from handlers.engine.runner import Engine
from handlers.flows import build_engine
from storage.models import (
    AuditEntry,
    ChannelIdentity,
    Person,
    Registration,
    Role,
    Unit,
    UnitKind,
    UnitRole,
    UnitSubmission,
)
from tests.chat import Chat
from tests.factories import Org, add_unit, make_org

JAN_10 = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)


@pytest.fixture
async def org(sessionmaker: async_sessionmaker[AsyncSession]) -> Org:
    return await make_org(sessionmaker)


@pytest.fixture
def bot(sessionmaker: async_sessionmaker[AsyncSession]) -> Engine:
    return build_engine(sessionmaker, EngineConfig(now=lambda: JAN_10))


async def add_person(
    sessionmaker: async_sessionmaker[AsyncSession],
    unit: Unit,
    name: str,
    *,
    chat: str | None = None,
    roles: tuple[tuple[str, Unit], ...] = (),
) -> int:
    """A person on the unit's roster; ``chat`` gives them a chat identity (they use the bot)."""
    async with sessionmaker() as session, session.begin():
        person = Person(full_name=name, unit_id=unit.id, source="roster")
        session.add(person)
        await session.flush()
        session.add(UnitRole(person_id=person.id, unit_id=unit.id, role=Role.MEMBER))
        for role, role_unit in roles:
            session.add(UnitRole(person_id=person.id, unit_id=role_unit.id, role=role))
        if chat is not None:
            session.add(ChannelIdentity(channel="test", external_id=chat, person_id=person.id))
        return person.id


async def started(engine: Engine, user_id: str) -> Chat:
    chat = Chat(engine, user_id)
    await chat.say("/start")
    return chat


async def register_ldtt(chat: Chat) -> None:
    await chat.say("/dangky")
    await chat.tap("Lao động tiên tiến")
    await chat.tap("Bỏ qua")
    await chat.tap("Xác nhận")
    assert "Số đăng ký" in chat.text() or "TD2027-" in chat.text()


async def submission(
    sessionmaker: async_sessionmaker[AsyncSession], unit: Unit
) -> UnitSubmission | None:
    async with sessionmaker() as session:
        return await session.scalar(select(UnitSubmission).where(UnitSubmission.unit_id == unit.id))


async def test_menu_shows_leader_and_officer_entries_by_role(sessionmaker, bot, org) -> None:
    await add_person(
        sessionmaker, org.garment, "Trần Văn Tuấn", chat="L", roles=(("leader", org.garment),)
    )
    await add_person(
        sessionmaker, org.upper, "Phạm Quang", chat="O", roles=(("officer", org.upper),)
    )
    await add_person(sessionmaker, org.garment, "Lê Văn Mạnh", chat="M")
    leader = await started(bot, "L")
    officer = await started(bot, "O")
    member = await started(bot, "M")
    assert {"Đăng ký danh hiệu tập thể", "Tình hình đơn vị", "Gửi danh sách lên cấp trên"} <= {
        b.split(" ", 1)[1] for b in leader.buttons()
    }
    assert not any("Tình hình đơn vị" in b for b in member.buttons())
    assert any("Danh sách cần duyệt" in b for b in officer.buttons())
    assert not any("Danh sách cần duyệt" in b for b in member.buttons())
    await member.say("/donvi")
    assert "chủ tịch" in member.text().lower()


async def test_collective_title_explains_the_rule_numbers(sessionmaker, bot, org) -> None:
    await add_person(
        sessionmaker, org.school, "Hà Thị Lan", chat="L", roles=(("leader", org.school),)
    )
    await add_person(sessionmaker, org.school, "Đỗ Văn Minh", chat="M")
    await add_person(sessionmaker, org.school, "Vũ Thị Nga")
    await register_ldtt(await started(bot, "M"))

    leader = await started(bot, "L")
    await leader.tap("Đăng ký danh hiệu tập thể")
    assert "Công đoàn Trường THPT Chợ Đồn" in leader.text()
    await leader.tap("Tập thể lao động xuất sắc")
    text = leader.text()
    assert "70%" in text and "1/3 (33%)" in text
    assert "CSTĐCS" in text
    await leader.tap("Đăng ký thêm")  # the prerequisite TTLĐTT, offered as titles.py does
    assert "Tập thể lao động tiên tiến" in leader.text()
    await leader.tap("Xác nhận")
    assert "TD2027-" in leader.text()

    async with sessionmaker() as session:
        rows = list(await session.scalars(select(Registration).where(Registration.is_collective)))
        actions = list(await session.scalars(select(AuditEntry.action)))
    assert sorted(r.title_code for r in rows) == ["TTLDTT", "TTLDXS"]
    assert all(r.unit_id == org.school.id and r.person_id is None for r in rows)
    assert actions.count("registration.create") == 3  # Minh's LĐTT and the unit's two

    # One live registration per unit and title: those two are no longer offered.
    await leader.say("/menu")
    await leader.tap("Đăng ký danh hiệu tập thể")
    assert "Đã đăng ký" in leader.text()
    assert [b for b in leader.buttons() if "Tập thể" in b] == []


async def test_unit_progress_pages_names_and_reminds(sessionmaker, bot, org) -> None:
    await add_person(
        sessionmaker, org.garment, "Trần Văn Tuấn", chat="L", roles=(("leader", org.garment),)
    )
    for n in range(12):
        await add_person(
            sessionmaker, org.garment, f"Công Nhân {n:02d}", chat=f"w{n}" if n % 2 == 0 else None
        )
    await register_ldtt(await started(bot, "w0"))
    await register_ldtt(await started(bot, "w2"))

    leader = await started(bot, "L")
    await leader.tap("Tình hình đơn vị")
    text = leader.text()
    # roster: the leader, 12 workers and Hoa from the factory
    assert "2/14" in text and "LĐTT: 02" in text
    assert "Chưa đăng ký (12 người), trang 1/2" in text
    assert "1. Công Nhân 01" in text and "10. " in text and "11. " not in text
    assert "Chưa gửi" in text
    await leader.tap("Trang sau")
    assert "trang 2/2" in leader.text() and "12. " in leader.text()
    assert not any("Trang sau" in b for b in leader.buttons())
    await leader.tap("Trang trước")
    assert "trang 1/2" in leader.text()

    await leader.tap("Nhắc những người chưa đăng ký")
    # Not the leader; workers 4, 6, 8, 10 have a chat (0 and 2 registered); Hoa and 7 odd don't.
    assert "Đã gửi lời nhắc cho 4 người" in leader.text()
    assert "7 người chưa dùng bot" in leader.text()
    # Named, with the way to invite them.
    assert "Đó là: " in leader.text() and "Nguyễn Thị Hoa" in leader.text()
    assert "Công Nhân 01" in leader.text() and "/moi" in leader.text()
    reached = sorted(out.to.external_id for out in leader.last_others)
    assert reached == ["w10", "w4", "w6", "w8"]
    worker = Chat(bot, "w4")
    worker.deliver(leader.last_others)
    assert "Trần Văn Tuấn" in worker.text() and "/dangky" in worker.text()
    assert "25/01/2027" in worker.text()
    assert not any("Nhắc" in b for b in leader.buttons())  # once per view


async def test_leader_registers_for_a_member_without_phone(sessionmaker, bot, org) -> None:
    leader_id = await add_person(
        sessionmaker, org.garment, "Trần Văn Tuấn", chat="L", roles=(("leader", org.garment),)
    )
    leader = await started(bot, "L")
    await leader.tap("Đăng ký giúp đoàn viên")
    await leader.say("zzz")
    assert "Không tìm thấy" in leader.text()
    await leader.say("thi hoa")
    await leader.tap("Nguyễn Thị Hoa")
    assert "Nguyễn Thị Hoa" in leader.text()
    await leader.tap("Lao động tiên tiến")
    await leader.tap("Bỏ qua")
    assert "Nguyễn Thị Hoa" in leader.text()  # the summary names the member, not the leader
    await leader.tap("Xác nhận")
    assert "đăng ký của Nguyễn Thị Hoa" in leader.text()

    async with sessionmaker() as session:
        reg = await session.scalar(select(Registration))
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "registration.create")
        )
    assert reg is not None and entry is not None
    assert (reg.person_id, reg.source, reg.entered_by_id) == (org.rostered.id, "leader", leader_id)
    assert (entry.actor_id, entry.via) == (leader_id, "leader")
    assert entry.details["on_behalf_of"] == org.rostered.id


async def test_a_member_of_another_unit_cannot_be_found(sessionmaker, bot, org) -> None:
    await add_person(
        sessionmaker, org.school, "Hà Thị Lan", chat="L", roles=(("leader", org.school),)
    )
    leader = await started(bot, "L")
    await leader.tap("Đăng ký giúp đoàn viên")
    await leader.say("hoa")  # Hoa is in the garment union, not the school
    assert "Không tìm thấy" in leader.text()


async def test_submit_approve_return_fix_resubmit_and_lock(sessionmaker, bot, org) -> None:
    await add_person(
        sessionmaker, org.upper, "Phạm Quang", chat="O", roles=(("officer", org.upper),)
    )
    await add_person(
        sessionmaker, org.garment, "Trần Văn Tuấn", chat="G", roles=(("leader", org.garment),)
    )
    await add_person(sessionmaker, org.garment, "Lê Văn Mạnh", chat="A")
    await add_person(
        sessionmaker, org.school, "Hà Thị Lan", chat="S", roles=(("leader", org.school),)
    )
    await add_person(sessionmaker, org.school, "Đỗ Văn Minh", chat="B")
    member = await started(bot, "A")
    await register_ldtt(member)
    await register_ldtt(await started(bot, "B"))
    officer = await started(bot, "O")

    garment = await started(bot, "G")
    await garment.say("/guilen")
    assert "1/3" in garment.text() and "Chưa gửi" in garment.text()
    await garment.tap("Gửi lên cấp trên")
    assert "Chờ duyệt" in garment.text() and "1 cán bộ" in garment.text()
    officer.deliver(garment.last_others)
    assert "Công ty May" in officer.text() and "LĐTT: 01" in officer.text()

    school = await started(bot, "S")
    await school.say("/guilen")
    await school.tap("Gửi lên cấp trên")
    officer.deliver(school.last_others)
    assert "Chợ Đồn" in officer.text() and "lần 1" in officer.text()

    await officer.press("Duyệt", in_message="Công ty May")
    assert "Đã duyệt danh sách của Công đoàn cơ sở Công ty May" in officer.text()
    garment.deliver(officer.last_others)
    assert "đã được Phạm Quang duyệt" in garment.text()

    await officer.press("Trả lại", in_message="Chợ Đồn")
    assert "Vì sao" in officer.text()
    await officer.say("Đề nghị bổ sung đăng ký tập thể")
    assert "Trả lại (bổ sung)" in officer.text()
    school.deliver(officer.last_others)
    assert "Đề nghị bổ sung đăng ký tập thể" in school.text() and "/guilen" in school.text()
    returned = await submission(sessionmaker, org.school)
    assert returned is not None and returned.status == "returned"

    # The leader fixes the list and sends it again.
    await school.say("/menu")
    await school.tap("Đăng ký danh hiệu tập thể")
    await school.tap("Tập thể lao động tiên tiến")
    # 1 of 2 members LĐTT is 50 %: the rule is met, so no note, straight to the summary.
    await school.tap("Xác nhận")
    await school.say("/guilen")
    assert "Lý do trả lại: Đề nghị bổ sung" in school.text() and "TTLĐTT" in school.text()
    await school.tap("Gửi lên cấp trên")
    officer.deliver(school.last_others)
    assert "lần 2" in officer.text() and "Lần trước bị trả lại vì" in officer.text()
    resubmitted = await submission(sessionmaker, org.school)
    assert resubmitted is not None and (resubmitted.status, resubmitted.round) == ("pending", 2)
    await officer.press("Duyệt", in_message="Chợ Đồn")
    approved = await submission(sessionmaker, org.school)
    assert approved is not None and approved.status == "approved"

    # After approval the garment union's registrations are locked: the member sees it, and
    # is not offered a withdrawal (the bot would refuse it).
    await member.say("/cuatoi")
    assert "danh sách đã được cấp trên duyệt" in member.text()
    assert not [b for b in member.buttons() if "Rút" in b]
    # Said at the first step, with whom to ask, not after every question at "Xác nhận".
    await member.say("/dangky")
    assert "Phạm Quang duyệt ngày 10/01/2027" in member.text() and "mở lại" in member.text()
    assert "Bằng khen" not in member.text()
    async with sessionmaker() as session:
        statuses = list(await session.scalars(select(Registration.status)))
    assert "withdrawn" not in statuses and len(statuses) == 3
    await garment.say("/guilen")
    assert "đã được duyệt" in garment.text()

    # The officer reopens it; the member can withdraw again.
    await officer.say("/duyet")
    assert "Không có danh sách nào chờ" in officer.text()
    await officer.press("Công ty May", in_message="Danh sách đã duyệt")
    await officer.say("Cần bổ sung CSTĐCS")
    garment.deliver(officer.last_others)
    assert "mở lại" in garment.text() and "Cần bổ sung CSTĐCS" in garment.text()
    await member.say("/cuatoi")
    await member.tap("Rút")
    await member.tap("Có")
    assert "đã rút" in member.text().lower()

    async with sessionmaker() as session:
        actions = list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    for action in (
        "submission.submit",
        "submission.approve",
        "submission.return",
        "submission.reopen",
    ):
        assert action in actions


async def test_strangers_cannot_approve(sessionmaker, bot, org) -> None:
    other_upper = await _other_upper(sessionmaker, org)
    await add_person(
        sessionmaker, org.upper, "Phạm Quang", chat="O", roles=(("officer", org.upper),)
    )
    await add_person(
        sessionmaker, other_upper, "Bùi Xuân", chat="X", roles=(("officer", other_upper),)
    )
    await add_person(
        sessionmaker, org.garment, "Trần Văn Tuấn", chat="G", roles=(("leader", org.garment),)
    )
    await add_person(sessionmaker, org.garment, "Lê Văn Mạnh", chat="A")
    garment = await started(bot, "G")
    await garment.say("/guilen")
    await garment.tap("Gửi lên cấp trên")
    assert [out.to.external_id for out in garment.last_others] == ["O"]
    sent = await submission(sessionmaker, org.garment)
    assert sent is not None

    for user in ("X", "A", "G"):  # another subtree's officer, a member, the unit's own leader
        chat = await started(bot, user)
        for spec in (f"!approve:{sent.id}", f"!return:{sent.id}", "!approve:99999", "!approve:x"):
            await chat._send(Incoming(chat.address, choice_id=spec))
            assert "chỉ cán bộ công đoàn cấp trên" in chat.text(), (user, spec)
    still = await submission(sessionmaker, org.garment)
    assert still is not None and still.status == "pending"

    # Pressed twice by the right officer: the second press says it no longer applies.
    officer = await started(bot, "O")
    officer.deliver(garment.last_others)
    await officer.press("Duyệt")
    await officer.press("Duyệt", in_message="Công ty May")
    assert "không còn áp dụng" in officer.text()


async def _other_upper(sessionmaker: async_sessionmaker[AsyncSession], org: Org) -> Unit:
    async with sessionmaker() as session, session.begin():
        province = await session.get(Unit, org.province.id)
        assert province is not None
        return await add_unit(session, "CD-XA", "Công đoàn xã Bằng Vân", UnitKind.UPPER, province)


async def test_no_officer_above_is_said_plainly_then_the_nearest_ancestor(
    sessionmaker, bot, org
) -> None:
    await add_person(
        sessionmaker, org.garment, "Trần Văn Tuấn", chat="G", roles=(("leader", org.garment),)
    )
    garment = await started(bot, "G")
    await garment.say("/guilen")
    await garment.tap("Gửi lên cấp trên")
    assert "chưa có cán bộ nào dùng bot" in garment.text()
    assert garment.last_others == []

    # The upper union has no officer; the province has one: the school's list goes there.
    await add_person(
        sessionmaker, org.province, "Ngô Tỉnh", chat="P", roles=(("officer", org.province),)
    )
    await add_person(
        sessionmaker, org.school, "Hà Thị Lan", chat="S", roles=(("leader", org.school),)
    )
    school = await started(bot, "S")
    await school.say("/guilen")
    await school.tap("Gửi lên cấp trên")
    assert [out.to.external_id for out in school.last_others] == ["P"]

    # The province officer sees both lists of the subtree in /duyet and may decide on them.
    province = await started(bot, "P")
    await province.say("/duyet")
    assert "Danh sách chờ bạn duyệt: 2" in province.transcript()
    await province.press("Duyệt", in_message="Công ty May")
    assert "Đã duyệt" in province.text()


async def test_an_approved_list_locks_the_leaders_registrations_too(sessionmaker, bot, org) -> None:
    await add_person(
        sessionmaker, org.garment, "Trần Văn Tuấn", chat="G", roles=(("leader", org.garment),)
    )
    async with sessionmaker() as session, session.begin():
        session.add(
            UnitSubmission(
                campaign_id=org.campaign.id, unit_id=org.garment.id, status="approved", round=1
            )
        )
    leader = await started(bot, "G")
    await leader.tap("Đăng ký danh hiệu tập thể")
    assert "đã được cán bộ công đoàn cấp trên duyệt" in leader.text()  # at the first step
    await leader.tap("Đăng ký giúp đoàn viên")
    await leader.say("hoa")
    await leader.tap("Nguyễn Thị Hoa")
    assert "không thể đăng ký thêm" in leader.text()
    async with sessionmaker() as session:
        assert await session.scalar(select(Registration)) is None
