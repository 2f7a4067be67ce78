"""Issue 15's journeys on the engine: learnt at the start, told the outcome, sent again."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.receipt_card import receipt_card_png
from handlers.engine.flow import EngineConfig
from handlers.engine.prompt import Incoming
from handlers.engine.runner import Engine
from handlers.flows import build_engine
from storage.models import (
    AuditEntry,
    ChannelIdentity,
    Invite,
    OutboxMessage,
    Person,
    Registration,
)
from tests.chat import Chat
from tests.factories import Org, make_org
from tests.test_leader import add_person, register_ldtt, started

Sessions = async_sessionmaker[AsyncSession]
JAN_10 = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)  # 09:00 in Hà Nội
JAN_10_EVENING = datetime(2027, 1, 10, 14, 30, tzinfo=UTC)  # 21:30, in the quiet hours


@pytest.fixture
async def org(sessionmaker: Sessions) -> Org:
    return await make_org(sessionmaker)


def engine_at(sessionmaker: Sessions, moment: list[datetime]) -> Engine:
    return build_engine(sessionmaker, EngineConfig(now=lambda: moment[0]))


async def people(sessionmaker: Sessions, org: Org) -> None:
    await add_person(
        sessionmaker, org.upper, "Phạm Quang", chat="O", roles=(("officer", org.upper),)
    )
    await add_person(
        sessionmaker, org.garment, "Trần Văn Tuấn", chat="G", roles=(("leader", org.garment),)
    )
    await add_person(sessionmaker, org.garment, "Lê Văn Mạnh", chat="A")
    await add_person(sessionmaker, org.garment, "Vũ Thị Hằng", chat="H")
    await add_person(sessionmaker, org.garment, "Đinh Văn Sơn", chat="M")  # muted


async def sent_up(bot: Engine) -> tuple[Chat, Chat]:
    """The garment union's leader sends the list; the officer has the notice."""
    officer = await started(bot, "O")
    leader = await started(bot, "G")
    await leader.say("/guilen")
    await leader.tap("Gửi lên cấp trên")
    officer.deliver(leader.last_others)
    return officer, leader


async def test_members_hear_the_list_approved_and_returned_with_the_reason(
    sessionmaker: Sessions, org: Org
) -> None:
    clock = [JAN_10]
    bot = engine_at(sessionmaker, clock)
    await people(sessionmaker, org)
    manh, hang, son = [await started(bot, u) for u in ("A", "H", "M")]
    await register_ldtt(manh)
    await register_ldtt(son)
    await son.say("/tatnhac")
    officer, leader = await sent_up(bot)

    # Returned in the morning: the reason reaches the member on the list, at once.
    await officer.press("Trả lại", in_message="Công ty May")
    await officer.say("Thiếu đăng ký tập thể")
    told = {out.to.external_id: out for out in officer.last_others}
    assert set(told) == {"G", "A"}  # the leader, and the member on the list (not the muted)
    assert "Thiếu đăng ký tập thể" in told["A"].reply.text
    assert "LĐTT" in told["A"].reply.text and "/cuatoi" in told["A"].reply.text
    assert told["A"].not_before is None
    # The leader's notice sends the list again in one tap.
    leader.deliver(officer.last_others)
    await leader.press("Gửi lại")
    assert "Gửi lên cấp trên" in " ".join(leader.buttons())
    await leader.tap("Gửi lên cấp trên")
    officer.deliver(leader.last_others)
    assert "lần 2" in officer.text()

    # Approved at 21:30: the members' news waits in the outbox for the morning.
    clock[0] = JAN_10_EVENING
    await officer.press("Duyệt", in_message="lần 2")
    told = {out.to.external_id: out for out in officer.last_others}
    assert set(told) == {"G", "A"}
    assert "đã được cấp trên duyệt" in told["A"].reply.text
    assert told["A"].not_before == datetime(2027, 1, 11, 1, 0, tzinfo=UTC)  # 08:00 local
    assert told["G"].not_before is None  # the leader's own notice is not news to hold
    async with sessionmaker() as session:
        held = await session.scalar(
            select(OutboxMessage.next_attempt_at)
            .where(OutboxMessage.external_id == "A")
            .order_by(OutboxMessage.id.desc())
        )
    assert held is not None and held.replace(tzinfo=UTC) == datetime(2027, 1, 11, 1, 0, tzinfo=UTC)
    assert not [r for r in hang.replies if "duyệt" in r.text]  # not on the list: not told


async def test_an_approved_list_is_said_at_the_first_step_with_whom_to_ask(
    sessionmaker: Sessions, org: Org
) -> None:
    clock = [JAN_10]
    bot = engine_at(sessionmaker, clock)
    await people(sessionmaker, org)
    manh = await started(bot, "A")
    await register_ldtt(manh)
    officer, _leader = await sent_up(bot)
    await officer.press("Duyệt", in_message="Công ty May")

    hang = await started(bot, "H")
    for start in ("/dangky", "/sangkien"):
        await hang.say(start)
        said = hang.text()
        assert "Phạm Quang duyệt ngày 10/01/2027" in said, said
        assert "đề nghị Phạm Quang mở lại" in said
        assert "Bạn đăng ký danh hiệu nào" not in said and "tên sáng kiến" not in said
    # The announcement's and the reminder's "📝 Đăng ký ngay" button says it at once too.
    await hang._send(Incoming(hang.address, choice_id="!start:title"))
    assert "Phạm Quang duyệt ngày 10/01/2027" in hang.text()
    # The button asks the officer who approved it; once a day is enough.
    await hang.press("Đề nghị mở lại")
    assert "đã chuyển lời đề nghị" in hang.text()
    [request] = hang.last_others
    assert request.to.external_id == "O"
    assert "Vũ Thị Hằng" in request.reply.text and "Công ty May" in request.reply.text
    await hang.press("Đề nghị mở lại")
    assert "Hôm nay bạn đã đề nghị rồi" in hang.text() and hang.last_others == []

    # The officer reopens it from the request; she hears it and can register.
    officer.deliver([request])
    await officer.press("Mở lại", in_message="Vũ Thị Hằng")
    await officer.say("Bổ sung đăng ký cho đoàn viên mới")
    told = {out.to.external_id for out in officer.last_others}
    assert {"G", "A", "H"} <= told
    hang.deliver(officer.last_others)
    assert "đã được mở lại" in hang.text()
    await register_ldtt(hang)

    # An old request button after the reopening: no dead end.
    await hang.press("Đề nghị mở lại")
    assert "có thể đăng ký ngay" in hang.text()
    async with sessionmaker() as session:
        requests = list(
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "submission.reopen_request")
            )
        )
        asker = await session.get(Person, requests[0].actor_id)
    assert len(requests) == 1 and asker is not None and asker.full_name == "Vũ Thị Hằng"


async def add_registration(
    sessionmaker: Sessions, org: Org, name: str, code: str, receipt: str
) -> None:
    async with sessionmaker() as session, session.begin():
        person = await session.scalar(select(Person).where(Person.full_name == name))
        assert person is not None and person.unit_id is not None
        session.add(
            Registration(
                receipt_no=receipt,
                campaign_id=org.campaign.id,
                title_code=code,
                person_id=person.id,
                unit_id=person.unit_id,
                status="submitted",
            )
        )


async def test_the_leader_reviews_fixes_and_resends_from_the_return_notice(
    sessionmaker: Sessions, org: Org
) -> None:
    clock = [JAN_10]
    bot = engine_at(sessionmaker, clock)
    await people(sessionmaker, org)
    for n in range(10):  # enough names for two pages
        await add_person(sessionmaker, org.garment, f"Hoàng Văn Thành {n:02d}")
        await add_registration(sessionmaker, org, f"Hoàng Văn Thành {n:02d}", "LDTT", f"X-{n}")
    await add_registration(sessionmaker, org, "Lê Văn Mạnh", "LDTT", "X-M1")
    await add_registration(sessionmaker, org, "Lê Văn Mạnh", "CSTDCS", "X-M2")
    await add_registration(sessionmaker, org, "Vũ Thị Hằng", "LDTT", "X-H1")
    manh, hang = await started(bot, "A"), await started(bot, "H")

    # Before sending: the names by title, a page at a time.
    officer = await started(bot, "O")
    leader = await started(bot, "G")
    await leader.say("/guilen")
    await leader.tap("Xem danh sách theo tên")
    page = leader.text()
    assert "trang 1/2" in page and "Chiến sĩ thi đua cơ sở (CSTĐCS) (1):" in page
    assert "1. Lê Văn Mạnh" in page
    assert all(len(label) <= 32 for label in leader.buttons())
    await leader.tap("Trang sau")
    assert "trang 2/2" in leader.text() and "Vũ Thị Hằng" in leader.text()

    # Withdrawing Mạnh's LĐTT warns that his CSTĐCS needs it; he keeps it.
    await leader.tap("Lê Văn Mạnh – LĐTT")
    await leader.tap("Rút đăng ký này")
    assert "CSTĐCS" in leader.text() and "không còn đủ điều kiện" in leader.text()
    await leader.tap("Không")
    await leader.say("/guilen")
    await leader.tap("Gửi lên cấp trên")
    officer.deliver(leader.last_others)
    await officer.press("Trả lại", in_message="Công ty May")
    await officer.say("Chị Hằng đăng ký nhầm, đề nghị đổi sang Bằng khen")
    leader.deliver(officer.last_others)
    hang.deliver(officer.last_others)
    assert "đăng ký nhầm" in hang.text()

    # From the return notice, straight to the names; the reason is on top.
    await leader.press("Xem lại danh sách", in_message="trả lại")
    assert "Lý do trả lại: Chị Hằng đăng ký nhầm" in leader.text(), leader.text()
    await leader.tap("Trang sau")
    await leader.tap("Vũ Thị Hằng")
    await leader.tap("Đổi danh hiệu")
    await leader.tap("Bằng khen")
    assert "Đã đổi: Vũ Thị Hằng nay đăng ký “Bằng khen" in leader.text()
    hang.deliver(leader.last_others)
    assert "Trần Văn Tuấn đã đổi đăng ký số X-H1" in hang.text()
    await leader.tap("Hoàng Văn Thành 09")
    await leader.tap("Rút đăng ký này")
    await leader.tap("Có")
    assert "X-9" in leader.text()

    # "Gửi lại" on the notice sends it again.
    await leader.press("Gửi lại", in_message="trả lại")
    await leader.tap("Gửi lên cấp trên")
    officer.deliver(leader.last_others)
    assert "lần 2" in officer.text()
    async with sessionmaker() as session:
        rows = {
            r.receipt_no: (r.title_code, r.status)
            for r in await session.scalars(select(Registration))
        }
        audits = list(await session.scalars(select(AuditEntry).where(AuditEntry.via == "leader")))
        tuan = await session.scalar(select(Person).where(Person.full_name == "Trần Văn Tuấn"))
    assert rows["X-H1"] == ("BK_TINH", "submitted") and rows["X-9"][1] == "withdrawn"
    assert rows["X-M1"] == ("LDTT", "submitted")
    assert tuan is not None
    assert {(a.action, a.actor_id) for a in audits} == {
        ("registration.change_title", tuan.id),
        ("registration.withdraw", tuan.id),
    }
    assert manh.replies  # Mạnh's chat exists: he was told of the return as well


async def test_the_officer_decides_with_names_and_xlsx_and_approves_all_shown(
    sessionmaker: Sessions, org: Org
) -> None:
    clock = [JAN_10]
    bot = engine_at(sessionmaker, clock)
    await people(sessionmaker, org)
    await add_person(
        sessionmaker, org.school, "Hà Thị Lan", chat="S", roles=(("leader", org.school),)
    )
    for n in range(20):
        await add_person(sessionmaker, org.garment, f"Hoàng Văn Thành {n:02d}")
        await add_registration(sessionmaker, org, f"Hoàng Văn Thành {n:02d}", "LDTT", f"X-{n}")
    manh = await started(bot, "A")
    await register_ldtt(manh)

    officer, _leader = await sent_up(bot)
    [notice] = officer.last
    assert "Danh sách tên của Công đoàn cơ sở Công ty May Bắc Kạn (trang 1/2)" in notice.text
    assert (
        "Lao động tiên tiến (LĐTT) (21):" in notice.text and "1. Hoàng Văn Thành 00" in notice.text
    )
    assert notice.file is not None and notice.file.filename.endswith(".xlsx")
    assert notice.file.content.startswith(b"PK")  # a real workbook
    await officer.press("Xem thêm tên", in_message="trang 1/2")
    assert "trang 2/2" in officer.text() and "Lê Văn Mạnh" in officer.text()
    assert officer.last[0].file is None  # the file came with the first page

    school = await started(bot, "S")
    await school.say("/guilen")
    await school.tap("Gửi lên cấp trên")

    await officer.say("/duyet")
    assert "Danh sách chờ bạn duyệt: 2" in officer.text()
    listed = officer.last
    await officer.press("Duyệt cả 2 danh sách")
    said = officer.text()
    assert "Đã duyệt 2 danh sách" in said and "Chợ Đồn" in said and "Công ty May" in said
    told = {out.to.external_id for out in officer.last_others}
    assert {"G", "S", "A"} <= told  # both leaders, and the member on the list
    assert "X" not in told
    # The same button again, once the lists have moved on: shown the lists as they are now.
    officer.replies.extend(listed)
    await officer.press("Duyệt cả 2 danh sách")
    assert "đã thay đổi" in officer.text() and "Không có danh sách nào chờ" in officer.text()


async def test_a_leader_gets_the_unit_invitation_with_a_qr_code_and_who_never_came(
    sessionmaker: Sessions, org: Org
) -> None:
    clock = [JAN_10]
    bot = engine_at(sessionmaker, clock)
    bot.config.bot_username = "ThiDuaBot"
    await people(sessionmaker, org)
    await add_person(sessionmaker, org.garment, "Phùng Thị Xuân")  # on the roster, no chat
    leader = await started(bot, "G")
    await leader.tap("Mời đoàn viên")
    said = leader.text()
    found = re.search(r"https://t\.me/ThiDuaBot\?start=([A-Za-z0-9_-]+)", said)
    assert found, said
    assert "09/02/2027" in said  # a month
    [qr] = [r.file for r in leader.last if r.file is not None]
    assert qr.content.startswith(b"\x89PNG") and qr.kind == "photo"
    assert "Phùng Thị Xuân" in said and "Lê Văn Mạnh" not in said.split("chưa từng")[-1]

    # Again a week later: the same code, so the printed sheet still works.
    clock[0] = JAN_10 + timedelta(days=7)
    await leader.say("/moi")
    assert found.group(1) in leader.text()
    # A newcomer scanning it lands in the garment union.
    newcomer = Chat(bot, "N")
    await newcomer.say(f"/start {found.group(1)}")
    await newcomer.say("0987 654 321")
    await newcomer.tap("Tôi không có mã")  # a typed phone is a claim (issue 12)
    assert "Công ty May" in newcomer.text()
    async with sessionmaker() as session:
        invites = list(await session.scalars(select(Invite)))
    assert len(invites) == 1 and invites[0].role == "member" and invites[0].max_uses is None


async def test_cancel_on_a_half_typed_initiative_asks_once(
    sessionmaker: Sessions, org: Org
) -> None:
    bot = engine_at(sessionmaker, [JAN_10])
    await people(sessionmaker, org)
    manh = await started(bot, "A")
    await manh.say("/sangkien")
    await manh.say("Cải tiến dây chuyền may cổ áo")
    await manh.say("ky thuat")
    await manh.tap("Hủy")
    assert "Bỏ 2 câu trả lời bạn đã nhập?" in manh.text()
    assert "mô tả" in manh.text().lower()  # the question is still there
    await manh.say("Gắn cữ gá giúp may cổ áo nhanh gấp đôi.")  # going on keeps everything
    assert "đồng tác giả" in manh.text()
    await manh.tap("Hủy")
    assert "Bỏ 3 câu trả lời" in manh.text()
    await manh.tap("Hủy")
    assert "Đã hủy" in manh.text()
    assert "Đăng ký sáng kiến" in " ".join(manh.buttons())


async def test_the_receipt_is_also_a_picture_card_to_keep(sessionmaker: Sessions, org: Org) -> None:
    bot = build_engine(
        sessionmaker, EngineConfig(now=lambda: JAN_10, receipt_card=receipt_card_png)
    )
    await people(sessionmaker, org)
    manh = await started(bot, "A")
    await register_ldtt(manh)
    [card] = [r for r in manh.last if r.file is not None]
    assert "Phiếu đăng ký của bạn" in card.text
    assert card.file is not None and card.file.kind == "photo"
    assert card.file.filename == "TD2027-000001.png"
    picture = Image.open(io.BytesIO(card.file.content))
    assert picture.format == "PNG" and picture.size == (900, 520)
    # Not a blank picture: the blue band, the dark values and the grey labels are drawn, with
    # smooth (antialiased) edges. Colours as a viewer shows them, whatever the PNG's pixel mode.
    seen = picture.convert("RGB").getcolors(maxcolors=100_000) or []
    colours = {colour for _count, colour in seen}
    assert {(11, 87, 164), (28, 39, 51), (74, 90, 106)} <= colours and len(colours) > 20


async def test_a_name_without_diacritics_is_confirmed_once(
    sessionmaker: Sessions, org: Org
) -> None:
    bot = engine_at(sessionmaker, [JAN_10])
    await people(sessionmaker, org)
    manh = await started(bot, "A")
    await manh.say("/sangkien")
    await manh.say("Cải tiến dây chuyền may cổ áo")
    await manh.say("ky thuat")
    await manh.say("Gắn cữ gá giúp may cổ áo nhanh gấp đôi.")
    await manh.say("le van tam")
    assert "có dấu được không" in manh.text()
    await manh.tap("Viết lại có dấu")
    await manh.say("lê văn tám")  # with its diacritics: added at once
    assert "Lê Văn Tám" in manh.text() and "có dấu được không" not in manh.text()
    await manh.say("ngo thi mai")
    await manh.tap("Giữ như đã gõ")  # some names are written so: kept when asked to
    assert "Ngo Thi Mai" in manh.text() or "ngo thi mai" in manh.text().lower()


async def test_zalo_gets_the_digest_files_when_they_go_as_links(
    sessionmaker: Sessions, org: Org
) -> None:
    officer_id = await add_person(
        sessionmaker, org.upper, "Phạm Quang", roles=(("officer", org.upper),)
    )
    async with sessionmaker() as session, session.begin():
        session.add(ChannelIdentity(channel="zalo", external_id="OZ", person_id=officer_id))
    plain = Chat(build_engine(sessionmaker, EngineConfig(now=lambda: JAN_10)), "OZ", channel="zalo")
    await plain.say("/tonghop")
    assert not [r for r in plain.last if r.file is not None]  # no links: said in a line
    linked = build_engine(
        sessionmaker, EngineConfig(now=lambda: JAN_10, linked_file_channels=frozenset({"zalo"}))
    )
    officer = Chat(linked, "OZ", channel="zalo")
    await officer.say("/tonghop")
    files = [r.file.filename for r in officer.last if r.file is not None]
    assert any(name.endswith(".xlsx") for name in files), officer.text()


async def test_a_refused_button_repeats_the_pending_question(
    sessionmaker: Sessions, org: Org
) -> None:
    bot = engine_at(sessionmaker, [JAN_10])
    await people(sessionmaker, org)
    manh = await started(bot, "A")
    await manh.say("/sangkien")
    await manh._send(Incoming(manh.address, choice_id="!khongcon:1"))
    said = manh.text()
    assert "không còn hiệu lực" in said and "tên sáng kiến" in said.lower()
