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
    """Luật Thi đua, khen thưởng 2022: TTLĐXS is conferred on a collective with ≥ 70 % LĐTT
    and a CSTĐCS; the TTLĐTT prerequisite is not in it, so it is not asked for."""
    await add_person(
        sessionmaker, org.school, "Hà Thị Lan", chat="L", roles=(("leader", org.school),)
    )
    await add_person(sessionmaker, org.school, "Đỗ Văn Minh", chat="M")
    await add_person(sessionmaker, org.school, "Vũ Thị Nga")
    await register_ldtt(await started(bot, "M"))

    leader = await started(bot, "L")
    await leader.tap("Đăng ký danh hiệu tập thể")
    assert "Công đoàn Trường THPT Chợ Đồn" in leader.text()
    assert all(len(b) <= 32 for b in leader.buttons())
    await leader.tap("TTLĐXS")
    assert "tổ, phòng, phân xưởng" in leader.text()  # which collective?
    await leader.tap("Toàn cơ quan")
    text = leader.text()
    assert "ít nhất 70%" in text and "1/3 người (33%)" in text
    assert "CSTĐCS" in text and "Căn cứ: Luật Thi đua, khen thưởng 2022" in text
    assert not any("TTLĐTT" in b for b in leader.buttons())  # an option, off by default
    await leader.tap("Vẫn đăng ký")
    assert "Tập thể: toàn cơ quan, doanh nghiệp" in leader.text()
    await leader.tap("Xác nhận")
    assert "TD2027-" in leader.text()

    # The same title for a collective typed by name: the unit's numbers, said so.
    await leader.say("/menu")
    await leader.tap("Đăng ký danh hiệu tập thể")
    assert "Đã đăng ký: Tập thể lao động xuất sắc (TTLĐXS)" in leader.text()
    await leader.tap("TTLĐXS")
    assert not any("Toàn cơ quan" in b for b in leader.buttons())  # registered already
    await leader.say("Tổ Toán – Tin")
    assert "Mình chưa có danh sách người thuộc Tổ Toán – Tin" in leader.text()
    await leader.tap("Vẫn đăng ký")
    await leader.tap("Xác nhận")
    assert "Tập thể lao động xuất sắc (TTLĐXS) — Tổ Toán – Tin" in leader.text()

    async with sessionmaker() as session:
        rows = list(await session.scalars(select(Registration).where(Registration.is_collective)))
        actions = list(await session.scalars(select(AuditEntry.action)))
    assert sorted((r.title_code, r.collective_name) for r in rows) == [
        ("TTLDXS", ""),
        ("TTLDXS", "Tổ Toán – Tin"),
    ]
    assert all(r.unit_id == org.school.id and r.person_id is None for r in rows)
    assert actions.count("registration.create") == 3  # Minh's LĐTT and the two collectives

    # A title of the unit itself (Bằng khen of the issuer) is registered once, no collective.
    await leader.say("/menu")
    await leader.tap("Đăng ký danh hiệu tập thể")
    await leader.tap("Bằng khen của LĐLĐ tỉnh Bắc Kạn")
    await leader.tap("Xác nhận")
    await leader.say("/menu")
    await leader.tap("Đăng ký danh hiệu tập thể")
    assert not any("Bằng khen" in b for b in leader.buttons())


async def test_ttldtt_counts_the_people_of_a_sub_unit(sessionmaker, bot, org) -> None:
    """Luật Thi đua, khen thưởng 2022: TTLĐTT needs MORE than 50 % of the collective's own
    individuals with LĐTT; a tổ of the org tree is counted over its own people."""
    async with sessionmaker() as session, session.begin():
        school = await session.get(Unit, org.school.id)
        assert school is not None
        team = await add_unit(session, "TO-TOAN", "Tổ Toán", UnitKind.TEAM, school)
    await add_person(
        sessionmaker, org.school, "Hà Thị Lan", chat="L", roles=(("leader", org.school),)
    )
    await add_person(sessionmaker, team, "Đỗ Văn Minh", chat="M")
    await add_person(sessionmaker, team, "Vũ Thị Nga")
    await register_ldtt(await started(bot, "M"))

    leader = await started(bot, "L")
    await leader.tap("Đăng ký danh hiệu tập thể")
    await leader.tap("TTLĐTT")
    await leader.tap("Tổ Toán")
    text = leader.text()
    # 1 of the team's 2 is 50 %: not MORE than half. The leader is not in the team.
    assert "trên 50%" in text and "Tổ Toán có 1/2 người (50%)" in text
    await leader.tap("Vẫn đăng ký")
    await leader.tap("Xác nhận")
    async with sessionmaker() as session:
        row = await session.scalar(select(Registration).where(Registration.is_collective))
    assert row is not None
    assert (row.collective_name, row.collective_unit_id) == ("Tổ Toán", team.id)


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


async def test_a_leader_reminds_each_member_at_most_once_a_day(sessionmaker, bot, org) -> None:
    """Issue 12: five taps (reopening /donvi each time) queued 25 messages to 5 people."""
    await add_person(
        sessionmaker, org.garment, "Trần Văn Tuấn", chat="L", roles=(("leader", org.garment),)
    )
    for n in range(5):
        await add_person(sessionmaker, org.garment, f"Công Nhân {n:02d}", chat=f"w{n}")
    queued = []
    for tap in range(5):
        # Another chat of the same unit's leaders, or a new view: the limit is in the database.
        leader = await started(bot, "L")
        await leader.say("/donvi")
        await leader.tap("Nhắc những người chưa đăng ký")
        queued += leader.last_others
        if tap == 0:
            assert "Đã gửi lời nhắc cho 5 người" in leader.text()
        else:
            assert "Đã gửi lời nhắc cho 0 người" in leader.text()
            assert "5 người đã được nhắc hôm nay" in leader.text()
    assert sorted(out.to.external_id for out in queued) == ["w0", "w1", "w2", "w3", "w4"]


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


async def register_cstdcs(chat: Chat) -> None:
    """CSTĐCS with the LĐTT it needs, as a member does it (no initiative: advice only)."""
    await chat.say("/dangky")
    await chat.tap("CSTĐCS")
    await chat.tap("Đăng ký thêm LĐTT")
    await chat.tap("Bỏ qua")
    await chat.tap("Xác nhận")
    assert "TD2027-" in chat.text()


@pytest.mark.parametrize("cap", [None, True])
async def test_cstdcs_cap_of_nd_91_2017_in_a_small_unit_never_reads_at_most_0(
    sessionmaker, bot, org, cap: bool | None
) -> None:
    """NĐ 91/2017's 15 % CSTĐCS cap is a campaign option, off by default; turned on in a
    unit with fewer than 7 LĐTT, the list the officer gets never says "tối đa 0"."""
    from storage.models import Campaign

    if cap:
        async with sessionmaker() as session, session.begin():
            campaign = await session.get(Campaign, org.campaign.id)
            assert campaign is not None
            campaign.settings = {"rules": {"CSTDCS": {"max_share_of_ldtt": True}}}
    await add_person(
        sessionmaker, org.upper, "Phạm Quang", chat="O", roles=(("officer", org.upper),)
    )
    await add_person(
        sessionmaker, org.school, "Hà Thị Lan", chat="S", roles=(("leader", org.school),)
    )
    await add_person(sessionmaker, org.school, "Đỗ Văn Minh", chat="B")
    await register_cstdcs(await started(bot, "B"))
    officer = await started(bot, "O")
    school = await started(bot, "S")
    await school.say("/guilen")
    await school.tap("Gửi lên cấp trên")
    officer.deliver(school.last_others)
    seen = school.transcript() + officer.text()
    assert "CSTĐCS: 01" in officer.text() and "tối đa 0" not in seen
    if cap:
        assert "Đơn vị có 1 LĐTT, nên 15% chưa đủ một người" in officer.text()
        assert "NĐ 91/2017/NĐ-CP" in officer.text()
    else:
        assert "15%" not in seen


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
    await school.tap("TTLĐTT")
    await school.tap("Toàn cơ quan")
    # 1 of 2 members LĐTT is 50 %, not MORE than half (Luật TĐKT 2022): noted, not refused.
    assert "trên 50%" in school.text() and "1/2 người (50%)" in school.text()
    await school.tap("Vẫn đăng ký")
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
    assert "đã đăng ký; danh sách đơn vị: đã duyệt" in member.text()
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
