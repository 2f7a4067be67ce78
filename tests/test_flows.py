"""The member's conversations, driven through the engine without any platform."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.engine.flow import EngineConfig
from handlers.engine.runner import Engine
from handlers.flows import build_engine
from storage.models import AuditEntry, ChannelIdentity, Person, Registration, Role, UnitRole
from tests.chat import Chat
from tests.factories import Org, make_org

JAN_10 = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)  # 09:00 in Hà Nội


def make_engine(sessionmaker: async_sessionmaker[AsyncSession], now: datetime = JAN_10) -> Engine:
    return build_engine(sessionmaker, EngineConfig(now=lambda: now))


@pytest.fixture
async def org(sessionmaker: async_sessionmaker[AsyncSession]) -> Org:
    return await make_org(sessionmaker)


async def onboard_new(chat: Chat) -> None:
    await chat.say("/start")
    await chat.contact("+84987654321")
    assert "công đoàn cơ sở" in chat.text().lower() or "grassroots" in chat.text().lower()
    await chat.say("may bac kan")
    await chat.tap("Công ty May")
    await chat.say("trần văn bình")


async def onboard_member(chat: Chat, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """A newcomer whose membership the leader has confirmed (the tap itself is tested in
    tests/test_identity.py): on the unit's roster, so they may list it."""
    await onboard_new(chat)
    async with sessionmaker() as session, session.begin():
        person = await session.scalar(
            select(Person)
            .join(ChannelIdentity, ChannelIdentity.person_id == Person.id)
            .where(ChannelIdentity.external_id == chat.user_id)
        )
        assert person is not None and person.unit_id is not None
        session.add(UnitRole(person_id=person.id, unit_id=person.unit_id, role=Role.MEMBER))


async def test_rostered_member_reaches_menu_in_two_taps(sessionmaker, org: Org) -> None:
    chat = Chat(make_engine(sessionmaker), "100")
    await chat.say("/start")
    await chat.contact("+84912345678")
    assert "Nguyễn Thị Hoa" in chat.text()
    assert "Tổ trưởng tổ may 1" in chat.text()
    await chat.tap("là tôi")
    assert "Công ty May Bắc Kạn" in chat.text()
    assert any("Đăng ký danh hiệu" in b for b in chat.buttons())
    async with sessionmaker() as session:
        identity = await session.scalar(select(ChannelIdentity))
        assert identity is not None and identity.person_id == org.rostered.id


async def test_new_member_onboards_and_registers_a_title(sessionmaker, org: Org) -> None:
    chat = Chat(make_engine(sessionmaker), "200")
    await onboard_new(chat)
    # Greeted by the given name, as people are called (not "Trần Văn Bình ơi").
    assert "Chào bạn Bình!" in chat.text() and "Trần Văn Bình" not in chat.text()
    await chat.tap("Đăng ký danh hiệu")
    assert "25/01/2027" in chat.text()
    await chat.say("lao dong tien tien")
    assert "cam kết" in chat.text().lower()
    await chat.say("Hoàn thành 110% kế hoạch")
    assert "Hoàn thành 110% kế hoạch" in chat.text()
    await chat.tap("Xác nhận")
    assert "TD2027-000001" in chat.text()
    async with sessionmaker() as session:
        reg = await session.scalar(select(Registration))
        assert reg is not None
        assert (reg.title_code, reg.status, reg.commitment) == (
            "LDTT",
            "submitted",
            "Hoàn thành 110% kế hoạch",
        )
        actions = set(await session.scalars(select(AuditEntry.action)))
        assert {"person.onboard", "registration.create"} <= actions


async def test_wrong_answers_are_reasked_kindly(sessionmaker, org: Org) -> None:
    chat = Chat(make_engine(sessionmaker), "300")
    await chat.say("/start")
    await chat.say("hello")
    assert "0912 345 678" in chat.text()  # the hint shows the expected shape
    await chat.contact("+84987654321")
    await chat.say("zzzz không có")
    assert "không tìm thấy" in chat.text().lower()
    await chat.say("May")
    await chat.say("9")  # no 9th unit in the list: a typed search instead
    await chat.tap("Công ty May")
    await chat.say("12345")
    assert "Nguyễn Văn An" in chat.text()  # asked again, with an example
    await chat.say("Lê Thị Cúc")
    await chat.tap("Đăng ký danh hiệu")
    await chat.say("99")
    assert "số" in chat.text().lower()  # "bấm nút hoặc gõ số"


async def test_a_name_without_diacritics_is_asked_once(sessionmaker, org: Org) -> None:
    """The name goes on the unit's list and the certificates as typed: "tran van binh" is
    asked about once; written again it is taken, or kept as typed on request."""
    chat = Chat(make_engine(sessionmaker), "310")
    await chat.say("/start")
    await chat.contact("+84987654321")
    await chat.say("may bac kan")
    await chat.tap("Công ty May")
    await chat.say("tran van binh")
    assert "dấu" in chat.text() and "tran van binh" in chat.text().lower()
    await chat.say("Trần Văn Bình")
    assert "Chào bạn Bình!" in chat.text()

    other = Chat(make_engine(sessionmaker), "311")
    await other.say("/start")
    await other.contact("+84987654322")
    await other.say("may bac kan")
    await other.tap("Công ty May")
    await other.say("le thi cuc")
    await other.tap("Giữ như đã gõ")
    assert "Chào bạn Cuc!" in other.text()
    async with sessionmaker() as session:
        names = set(await session.scalars(select(Person.full_name)))
    assert {"Trần Văn Bình", "Le Thi Cuc"} <= names


async def test_cstdcs_explains_rule_and_offers_ldtt(sessionmaker, org: Org) -> None:
    chat = Chat(make_engine(sessionmaker), "400")
    await onboard_new(chat)
    await chat.say("/dangky")
    await chat.say("CSTĐCS")
    assert "Lao động tiên tiến" in chat.text()
    assert "sáng kiến" in chat.text()
    await chat.tap("Đăng ký thêm")
    await chat.tap("Bỏ qua")
    assert "Lao động tiên tiến" in chat.text()  # the summary lists the extra title
    await chat.tap("Xác nhận")
    async with sessionmaker() as session:
        codes = sorted(await session.scalars(select(Registration.title_code)))
    assert codes == ["CSTDCS", "LDTT"]


async def test_second_registration_of_same_title_is_offered_view(sessionmaker, org: Org) -> None:
    chat = Chat(make_engine(sessionmaker), "500")
    await onboard_new(chat)
    await chat.say("/dangky")
    await chat.say("1")
    await chat.tap("Bỏ qua")
    await chat.tap("Xác nhận")
    await chat.say("/dangky")
    await chat.say("1")
    assert "đã đăng ký" in chat.text().lower()
    await chat.tap("Xem đăng ký")
    assert "TD2027-000001" in chat.text()
    async with sessionmaker() as session:
        assert len(list(await session.scalars(select(Registration)))) == 1


async def test_back_and_edit_from_summary(sessionmaker, org: Org) -> None:
    chat = Chat(make_engine(sessionmaker), "600")
    await onboard_new(chat)
    await chat.say("/dangky")
    await chat.tap("Lao động tiên tiến")
    await chat.tap("Quay lại")
    assert "Lao động tiên tiến" in " ".join(chat.buttons())  # the title question again
    await chat.say("1")
    await chat.say("Cam kết cũ")
    await chat.tap("Sửa cam kết")
    await chat.say("Cam kết mới")
    assert "Cam kết mới" in chat.text() and "Xác nhận" in " ".join(chat.buttons())
    await chat.tap("Sửa danh hiệu")
    await chat.say("Bằng khen")
    assert "Bằng khen của LĐLĐ tỉnh" in chat.text()
    assert "Cam kết mới" in chat.text()  # back at the summary, the rest kept
    await chat.tap("Xác nhận")
    async with sessionmaker() as session:
        reg = await session.scalar(select(Registration))
    assert reg is not None and (reg.title_code, reg.commitment) == ("BK_TINH", "Cam kết mới")


async def test_cancel_keeps_nothing_and_returns_to_menu(sessionmaker, org: Org) -> None:
    chat = Chat(make_engine(sessionmaker), "700")
    await onboard_new(chat)
    await chat.say("/dangky")
    await chat.say("1")
    await chat.say("hủy")
    assert "Đăng ký danh hiệu" in " ".join(chat.buttons())
    async with sessionmaker() as session:
        assert await session.scalar(select(Registration)) is None


async def test_restart_resumes_at_same_step(sessionmaker, org: Org) -> None:
    chat = Chat(make_engine(sessionmaker), "800")
    await onboard_new(chat)
    await chat.say("/dangky")
    await chat.say("1")
    await chat.say("Cam kết trước khi tắt máy")
    # A new engine (a restarted bot) on the same database.
    chat.engine = make_engine(sessionmaker)
    await chat.say("/start")
    assert "Cam kết trước khi tắt máy" in chat.text()
    await chat.tap("Xác nhận")
    assert "TD2027-000001" in chat.text()


async def test_after_deadline_registration_is_refused(sessionmaker, org: Org) -> None:
    late = datetime(2027, 1, 26, 2, 0, tzinfo=UTC)
    chat = Chat(make_engine(sessionmaker, late), "900")
    await onboard_new(chat)
    await chat.say("/dangky")
    assert "25/01/2027" in chat.text()
    assert "kết thúc" in chat.text() or "đã hết hạn" in chat.text()


async def test_withdraw_before_deadline(sessionmaker, org: Org) -> None:
    chat = Chat(make_engine(sessionmaker), "1000")
    await onboard_new(chat)
    await chat.say("/dangky")
    await chat.say("1")
    await chat.tap("Bỏ qua")
    await chat.tap("Xác nhận")
    await chat.say("/cuatoi")
    assert "TD2027-000001" in chat.text()
    await chat.tap("Rút")
    await chat.tap("Có")
    assert "đã rút" in chat.text().lower()
    async with sessionmaker() as session:
        reg = await session.scalar(select(Registration))
    assert reg is not None and reg.status == "withdrawn"
    # withdrawn: the same title can be registered again
    await chat.say("/dangky")
    await chat.say("1")
    assert "cam kết" in chat.text().lower()


async def test_stale_button_is_recognised(sessionmaker, org: Org) -> None:
    chat = Chat(make_engine(sessionmaker), "1100")
    await onboard_new(chat)
    await chat.say("/dangky")
    old = chat.prompt()
    await chat.say("1")
    from handlers.engine.prompt import Incoming

    await chat._send(Incoming(chat.address, choice_id=old.choices[0].id, seq=old.seq))
    assert "câu hỏi trước" in chat.text()


async def test_user_text_is_stored_normalised(sessionmaker, org: Org) -> None:
    chat = Chat(make_engine(sessionmaker), "1200")
    await chat.say("/start")
    await chat.contact("0987654321")
    await chat.say("may")
    await chat.tap("Công ty May")
    # decomposed (NFD) Vietnamese with a zero-width space
    await chat.say("Nguye\u0302\u0303n\u200b Va\u0306n Tu\u031b")
    async with sessionmaker() as session:
        person = await session.scalar(select(Person).where(Person.phone == "0987654321"))
    assert person is not None and person.full_name == "Nguyễn Văn Tư"


def test_deadline_date_is_inclusive() -> None:
    assert date(2027, 1, 25) >= date(2027, 1, 25)


async def test_an_event_delivered_twice_is_answered_once(sessionmaker, org: Org) -> None:
    from handlers.engine.prompt import Incoming

    chat = Chat(make_engine(sessionmaker), "1300")
    await onboard_new(chat)
    await chat.say("/dangky")
    await chat.say("1")
    again = Incoming(chat.address, text="Cam kết", event_id="m42")
    first = await chat._send(again)
    assert "Cam kết" in "\n".join(r.text for r in first)  # the summary
    assert await chat._send(again) == []  # a redelivery changes nothing, says nothing
    await chat.tap("Xác nhận")
    assert "TD2027-000001" in chat.text()


async def test_help_lists_what_the_persons_roles_allow(sessionmaker, org: Org) -> None:
    from handlers.flows.menu import MAX_HELP
    from storage.models import Role, UnitRole

    chat = Chat(make_engine(sessionmaker), "1600")
    await onboard_new(chat)
    await chat.say("/trogiup")
    assert "/dangky" in chat.text() and "/guilen" not in chat.text()
    assert len(chat.last[0].text) <= MAX_HELP
    async with sessionmaker() as session, session.begin():
        person = await session.scalar(select(Person).where(Person.phone == "0987654321"))
        assert person is not None
        session.add(UnitRole(person_id=person.id, unit_id=org.garment.id, role=Role.LEADER))
    await chat.say("/help")  # the platforms' word works too
    assert "/guilen" in chat.text() and "/duyet" not in chat.text()
    async with sessionmaker() as session, session.begin():
        session.add(UnitRole(person_id=person.id, unit_id=org.upper.id, role=Role.OFFICER))
    await chat.say("/trogiup")
    # Every role's commands, read at once on a phone: at most 400 characters.
    help_text = chat.last[0].text  # then the menu
    assert "/guilen" in help_text and "/duyet" in help_text and "/dulieucuatoi" in help_text
    assert len(help_text) <= MAX_HELP == 400, len(help_text)
    # Only Vietnamese commands in the Vietnamese text.
    assert not {"/help", "/cancel", "/start", "/mydata"} & set(help_text.split())


async def test_an_industry_union_offers_its_own_bang_khen(sessionmaker, org: Org) -> None:
    """QĐ 999/QĐ-TLĐ: a Bằng khen belongs to the awarding body; a campaign issued by an
    industry union offers "Bằng khen của Công đoàn ngành Giáo dục", as a hình thức khen
    thưởng next to the danh hiệu."""
    from storage.models import Unit

    async with sessionmaker() as session, session.begin():
        issuer = await session.get(Unit, org.province.id)
        assert issuer is not None
        issuer.name = "Công đoàn ngành Giáo dục"
    chat = Chat(make_engine(sessionmaker), "1700")
    await onboard_new(chat)
    await chat.say("/dangky")
    assert "danh hiệu thi đua hoặc hình thức khen thưởng" in chat.text()
    assert "Bằng khen của CĐ ngành Giáo dục" in chat.buttons()  # ≤ 32 characters
    assert all(len(b) <= 32 for b in chat.buttons())
    await chat.say("Bằng khen của Công đoàn ngành Giáo dục")  # typed whole, it is found
    await chat.tap("Bỏ qua")
    assert "• Đăng ký: Bằng khen của Công đoàn ngành Giáo dục" in chat.text()
    await chat.tap("Xác nhận")
    assert "Bằng khen của Công đoàn ngành Giáo dục: số đăng ký" in chat.text()


async def test_a_pasted_page_in_the_unit_search_is_answered_not_busy(
    sessionmaker, org: Org
) -> None:
    chat = Chat(make_engine(sessionmaker), "1200")
    await chat.say("/start")
    await chat.say("0987 654 321")
    await chat.tap("Tôi không có mã")  # a typed phone is a claim: then the union is asked
    await chat.say("may " * 600 + "bac kan " * 600)
    assert "bận" not in chat.text().lower()
    await chat.tap("Công ty May")  # the words, each once, still find the union
