"""Who is behind a chat (issue 12): a roster claim needs proof, and one human stays one person.

Each test is an attack or a lockout that worked before: a stranger who knows a member's
phone and name, a guesser of codes, a member who lost their cookie, a newcomer listing the
roster. Driven through the engine, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cli import main
from handlers.engine.flow import EngineConfig
from handlers.engine.prompt import Outgoing
from handlers.engine.runner import Engine
from handlers.flows import build_engine
from storage.invites import create_invite
from storage.links import PERSONAL_LIFETIME, issue_link_code
from storage.models import (
    AuditEntry,
    ChannelIdentity,
    ClaimStatus,
    Conversation,
    IdentityClaim,
    OutboxMessage,
    Person,
    ProofFailure,
    Registration,
    Role,
    UnitRole,
)
from tests.chat import Chat
from tests.factories import Org, make_org

JAN_10 = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)
HOA_PHONE = "0912 345 678"  # Nguyễn Thị Hoa, on the roster of Công ty May
NOBODY_PHONE = "0987 000 111"  # on no roster


def make_engine(sessionmaker: async_sessionmaker[AsyncSession]) -> Engine:
    return build_engine(sessionmaker, EngineConfig(now=lambda: JAN_10))


async def _org(sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[Org, int]:
    """The test organisation, with a leader of Công ty May (phone 0911 111 111)."""
    org = await make_org(sessionmaker)
    async with sessionmaker() as session, session.begin():
        leader = Person(
            full_name="Lê Văn Chủ", phone="0911111111", unit_id=org.garment.id, source="roster"
        )
        session.add(leader)
        await session.flush()
        for role in (Role.MEMBER, Role.LEADER):
            session.add(UnitRole(person_id=leader.id, unit_id=org.garment.id, role=role))
    return org, leader.id


async def leader_chat(engine: Engine) -> Chat:
    chat = Chat(engine, "leader", channel="telegram")
    await chat.say("/start")
    await chat.contact("+84911111111")
    await chat.tap("là tôi")
    return chat


async def claim_by_typing(chat: Chat, phone: str, name: str) -> None:
    """What a stranger does: type a phone, no code, the unit, a name."""
    await chat.say("/start")
    await chat.say(phone)
    await chat.tap("không có mã")
    await chat.say("may bac kan")
    await chat.tap("Công ty May")
    await chat.say(name)
    if "có dấu" in chat.text():  # a name typed without diacritics is asked about once
        await chat.tap("Giữ như đã gõ")


async def identity(sessionmaker: async_sessionmaker[AsyncSession], ext: str) -> ChannelIdentity:
    async with sessionmaker() as session:
        found = await session.scalar(
            select(ChannelIdentity).where(ChannelIdentity.external_id == ext)
        )
    assert found is not None
    return found


async def test_knowing_phone_and_name_gets_nothing_and_reveals_nothing(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Before: "Số này có trong danh sách", then "tran van binh" made the stranger that member."""
    await _org(sessionmaker)
    engine = make_engine(sessionmaker)
    stranger, control = Chat(engine, "s1", channel="zalo"), Chat(engine, "s2", channel="zalo")
    await claim_by_typing(stranger, HOA_PHONE, "nguyen thi hoa")
    await claim_by_typing(control, NOBODY_PHONE, "nguyen thi hoa")
    # Every reply, word for word, is the same for a rostered and an unrostered phone.
    assert stranger.transcript() == control.transcript()
    typed = stranger.transcript().replace("nguyen thi hoa", "").replace("Nguyen Thi Hoa", "")
    assert "Hoa" not in typed
    assert "Tổ trưởng" not in stranger.transcript()
    assert "chờ" in stranger.text() or "xác nhận" in stranger.text()

    # Nothing of hers: no data, no registration in her name.
    await stranger.say("/dulieucuatoi")
    await control.say("/dulieucuatoi")
    # Only what the stranger typed; the same words as for a phone on no roster.
    assert "Nguyễn Thị Hoa" not in stranger.text() and "Tổ trưởng" not in stranger.text()
    assert stranger.text().replace("0912345678", "X") == control.text().replace("0987000111", "X")
    await stranger.say("/dangky")
    assert "Lao động tiên tiến" not in stranger.text() + " ".join(stranger.buttons())
    async with sessionmaker() as session:
        assert (await identity(sessionmaker, "s1")).person_id is None
        same_phone = await session.scalar(
            select(func.count()).select_from(Person).where(Person.phone == "0912345678")
        )
        registrations = await session.scalar(select(func.count()).select_from(Registration))
    assert same_phone == 1
    assert registrations == 0


async def test_wrong_codes_lock_out_across_cancel_and_restart_and_tell_the_leader(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await _org(sessionmaker)
    leader = await leader_chat(make_engine(sessionmaker))
    guesser = Chat(make_engine(sessionmaker), "g1", channel="zalo")
    told: list[Outgoing] = []
    for attempt in range(5):
        if attempt % 2 == 0:
            # /huy and a fresh engine (a restart) give no new tries.
            guesser = Chat(make_engine(sessionmaker), "g1", channel="zalo")
            await guesser.say("/huy")
            await guesser.say("/start")
            await guesser.say(HOA_PHONE)
        await guesser.say(f"ABCD{attempt + 2}EFG")
        told += guesser.last_others
    assert "quá nhiều lần" in guesser.text()
    # A second chat trying the same phone is locked too (counted per phone).
    other = Chat(make_engine(sessionmaker), "g2", channel="web")
    await other.say("/start")
    await other.say(HOA_PHONE)
    await other.say("ABCDEFGH")
    assert "quá nhiều lần" in other.text()
    async with sessionmaker() as session:
        rows = await session.scalar(select(func.count()).select_from(ProofFailure))
    assert rows is not None and rows >= 10
    # The leader of the member whose phone was tried heard of it once.
    notices = leader.deliver(told)
    assert len(notices) == 1 and "Nguyễn Thị Hoa" in notices[0].text


async def test_leader_confirms_a_claim_with_one_tap(
    sessionmaker: async_sessionmaker[AsyncSession], org_and_leader: None = None
) -> None:
    org, _leader_id = await _org(sessionmaker)
    engine = make_engine(sessionmaker)
    leader = await leader_chat(engine)
    member = Chat(engine, "hoa-zalo", display_name="Hoa Zalo", channel="zalo")
    await claim_by_typing(member, HOA_PHONE, "Nguyễn Thị Hoa")
    asked = leader.deliver(member.last_others)
    assert len(asked) == 1
    # The leader sees the claimant's display name and channel, and whose number it is.
    assert "Hoa Zalo" in asked[0].text and "Zalo" in asked[0].text
    assert "Tổ trưởng tổ may 1" in asked[0].text
    await leader.press("Xác nhận", in_message="Hoa Zalo")
    assert "Đã xác nhận" in leader.text()
    welcome = member.deliver(leader.last_others)
    assert welcome and "xác nhận" in welcome[0].text
    linked = await identity(sessionmaker, "hoa-zalo")
    assert linked.person_id == org.rostered.id
    await member.say("xin chào")  # still at the waiting question: now the menu
    assert any("Đăng ký danh hiệu" in b for b in member.buttons())
    await member.say("/dangky")
    assert "Lao động tiên tiến" in " ".join(member.buttons())
    # The same button again does nothing more.
    await leader.press("Xác nhận", in_message="Hoa Zalo")
    assert "đã được xử lý" in leader.text()


async def test_a_stranger_cannot_confirm_claims(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await _org(sessionmaker)
    engine = make_engine(sessionmaker)
    await leader_chat(engine)
    member = Chat(engine, "m1", channel="zalo")
    await claim_by_typing(member, HOA_PHONE, "Nguyễn Thị Hoa")
    button = next(c.id for o in member.last_others for c in o.reply.choices if "claim_ok" in c.id)
    # Another member (proven by Telegram's contact, not a leader) presses a forged button.
    other = Chat(engine, "t-other", channel="telegram")
    await other.say("/start")
    await other.contact("+84987654321")
    await other.say("may bac kan")
    await other.tap("Công ty May")
    await other.say("Phạm Văn Đức")
    await other.say(f"/{button[1:].replace(':', ' ')}")
    assert "chỉ chủ tịch công đoàn" in other.text()
    assert (await identity(sessionmaker, "m1")).person_id is None


async def test_personal_code_from_the_leader_proves_the_claim(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    org, _ = await _org(sessionmaker)
    engine = make_engine(sessionmaker)
    leader = await leader_chat(engine)
    await leader.say("/donvi")
    await leader.tap("Mã cá nhân")
    match = re.search(r"Nguyễn Thị Hoa: (\w{4}-\w{4})", leader.transcript())
    assert match, leader.transcript()
    member = Chat(engine, "hoa-web", channel="web")
    await member.say("/start")
    await member.say(HOA_PHONE)
    await member.say(match.group(1).lower())
    assert "Công ty May Bắc Kạn" in member.text()
    assert (await identity(sessionmaker, "hoa-web")).person_id == org.rostered.id
    # Single use: the same code does nothing for anyone else.
    thief = Chat(engine, "thief", channel="web")
    await thief.say("/start")
    await thief.say(HOA_PHONE)
    await thief.say(match.group(1))
    assert "không dùng được" in thief.text()


async def test_signing_in_again_reaches_the_own_account(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Before: "Số điện thoại này đã được dùng cho một tài khoản khác", a dead end."""
    org, _ = await _org(sessionmaker)
    engine = make_engine(sessionmaker)
    leader = await leader_chat(engine)
    old = Chat(engine, "web-old", channel="web")
    await claim_by_typing(old, HOA_PHONE, "Nguyễn Thị Hoa")
    leader.deliver(old.last_others)
    await leader.press("Xác nhận")
    assert (await identity(sessionmaker, "web-old")).person_id == org.rostered.id
    # The cookie is lost: a new browser is a new web address.
    new = Chat(engine, "web-new", channel="web")
    await claim_by_typing(new, HOA_PHONE, "Nguyễn Thị Hoa")
    assert "tài khoản khác" not in new.transcript()
    leader.deliver(new.last_others)
    await leader.press("Xác nhận", in_message="Nguyễn Thị Hoa")
    new.deliver(leader.last_others)
    # The old chat hears that it was signed out: a mistaken confirmation does not go unseen.
    assert old.deliver(leader.last_others)[0].text.count("đăng xuất") == 1
    assert (await identity(sessionmaker, "web-new")).person_id == org.rostered.id
    assert (await identity(sessionmaker, "web-old")).person_id is None
    # And by a /lienket code from another app, the same.
    telegram = Chat(engine, "hoa-tg", channel="telegram")
    await telegram.say("/start")
    await telegram.contact("+84912345678")
    await telegram.tap("là tôi")
    await telegram.say("/lienket")
    code = re.search(r"/lienket (\w+)", telegram.text())
    assert code
    third = Chat(engine, "web-third", channel="web")
    await third.say(f"/lienket {code.group(1)}")
    assert "tài khoản khác" not in third.text()
    assert (await identity(sessionmaker, "web-third")).person_id == org.rostered.id
    assert (await identity(sessionmaker, "web-new")).person_id is None


async def test_one_human_never_becomes_two_persons(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Before: three wrong names made a second person with the rostered phone."""
    await _org(sessionmaker)
    engine = make_engine(sessionmaker)
    await leader_chat(engine)
    member = Chat(engine, "hoa", channel="zalo")
    await claim_by_typing(member, HOA_PHONE, "Trần Thị Hoà")
    # Telegram's contact, and "that's not me": still no second person.
    tg = Chat(engine, "hoa-tg", channel="telegram")
    await tg.say("/start")
    await tg.contact("+84912345678")
    await tg.tap("không phải")
    await tg.say("may bac kan")
    await tg.tap("Công ty May")
    await tg.say("Nguyễn Hoa")
    async with sessionmaker() as session:
        same_phone = await session.scalar(
            select(func.count()).select_from(Person).where(Person.phone == "0912345678")
        )
        claims = list(await session.scalars(select(IdentityClaim)))
    assert same_phone == 1
    assert [c.status for c in claims] == [ClaimStatus.PENDING, ClaimStatus.PENDING]


async def test_a_self_declared_newcomer_does_not_see_the_roster_until_confirmed(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Before: declaring oneself a member of any unit listed its members as co-authors."""
    await _org(sessionmaker)
    engine = make_engine(sessionmaker)
    leader = await leader_chat(engine)
    newcomer = Chat(engine, "new", channel="telegram")
    await newcomer.say("/start")
    await newcomer.contact("+84987654321")
    await newcomer.say("may bac kan")
    await newcomer.tap("Công ty May")
    await newcomer.say("Phạm Văn Đức")
    request = leader.deliver(newcomer.last_others)
    assert request and "Phạm Văn Đức" in request[0].text

    async def search(query: str) -> str:
        await newcomer.say("/sangkien")
        await newcomer.say("Cải tiến máy may")
        await newcomer.say("ky thuat")
        await newcomer.say("Gắn cữ gá giúp may cổ áo nhanh gấp đôi.")
        await newcomer.say(query)
        text = newcomer.text() + " ".join(c.label for r in newcomer.last for c in r.choices)
        await newcomer.say("/huy")
        return text

    assert "Nguyễn Thị Hoa" not in await search("thi")
    await leader.press("Xác nhận", in_message="Phạm Văn Đức")
    found = await search("thi")
    assert "Nguyễn Thị Hoa" in found, newcomer.transcript()[-1500:]


# --- the operator's commands --------------------------------------------------------------


def cli(*args: str) -> int:
    return main(list(args))


@pytest.fixture
def operator(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the project
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("THIDUA_LOG_LEVEL", raising=False)


async def test_person_code_unlink_and_merge_from_the_command_line(
    sessionmaker: async_sessionmaker[AsyncSession],
    operator: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    org, _ = await _org(sessionmaker)
    engine = build_engine(sessionmaker, EngineConfig())  # today: the code is issued today
    # A printable personal code from the command line proves the typed phone.
    assert await asyncio.to_thread(cli, "person", "code", "--phone", HOA_PHONE) == 0
    printed = capsys.readouterr().out
    code = re.search(r"Nguyễn Thị Hoa\t0912345678\t(\w{4}-\w{4})", printed)
    assert code, printed
    hoa = Chat(engine, "hoa-web", channel="web")
    await hoa.say("/start")
    await hoa.say(HOA_PHONE)
    await hoa.say(code.group(1))
    assert (await identity(sessionmaker, "hoa-web")).person_id == org.rostered.id

    # A lost phone: the operator detaches that chat; it starts over as someone unknown.
    assert await asyncio.to_thread(cli, "person", "unlink", "--phone", HOA_PHONE) == 0
    assert "Unlinked 1" in capsys.readouterr().out
    assert (await identity(sessionmaker, "hoa-web")).person_id is None
    await hoa.say("/cuatoi")
    assert "0912 345 678" in hoa.text()  # asked for a phone again: nothing of hers shown

    # One human recorded twice (before this issue, a failed name check did that): merged.
    async with sessionmaker() as session, session.begin():
        twin = Person(full_name="Nguyễn T. Hoa", phone=None, unit_id=org.garment.id)
        session.add(twin)
        await session.flush()
        session.add(UnitRole(person_id=twin.id, unit_id=org.garment.id, role=Role.MEMBER))
        session.add(
            Registration(
                receipt_no="TD2027-000099",
                campaign_id=org.campaign.id,
                title_code="LDTT",
                person_id=twin.id,
                unit_id=org.garment.id,
            )
        )
        session.add(
            AuditEntry(
                via="chat", action="registration.create", entity="registration", actor_id=twin.id
            )
        )
        twin_id = twin.id
    merge = ("person", "merge", "--keep", str(org.rostered.id), "--from", str(twin_id))
    assert await asyncio.to_thread(cli, *merge) == 0
    assert "Nothing was changed" in capsys.readouterr().out
    assert await asyncio.to_thread(cli, *merge, "--yes") == 0
    assert "Merged" in capsys.readouterr().out
    async with sessionmaker() as session:
        registration = await session.scalar(select(Registration))
        assert registration is not None and registration.person_id == org.rostered.id
        assert await session.get(Person, twin_id) is None
        actions = list(
            await session.scalars(
                select(AuditEntry.action).where(AuditEntry.actor_id == org.rostered.id)
            )
        )
        merged = await session.scalar(select(AuditEntry).where(AuditEntry.action == "person.merge"))
    assert "registration.create" in actions  # the audit log kept its entry
    assert merged is not None and merged.details["merged_id"] == twin_id
    # Two live registrations of one title cannot be merged silently.
    async with sessionmaker() as session, session.begin():
        other = Person(full_name="Hoa bản sao", unit_id=org.garment.id)
        session.add(other)
        await session.flush()
        session.add(
            Registration(
                receipt_no="TD2027-000100",
                campaign_id=org.campaign.id,
                title_code="LDTT",
                person_id=other.id,
                unit_id=org.garment.id,
            )
        )
        other_id = other.id
    refused = ("person", "merge", "--keep", str(org.rostered.id), "--from", str(other_id))
    assert await asyncio.to_thread(cli, *refused, "--yes") != 0
    assert "withdraw one" in capsys.readouterr().err


async def test_a_refused_claim_links_nobody_and_the_claimant_is_told(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await _org(sessionmaker)
    engine = make_engine(sessionmaker)
    leader = await leader_chat(engine)
    stranger = Chat(engine, "str", display_name="Ai đó", channel="zalo")
    await claim_by_typing(stranger, HOA_PHONE, "Nguyễn Thị Hoa")
    leader.deliver(stranger.last_others)
    await leader.press("Không phải", in_message="Ai đó")
    told = stranger.deliver(leader.last_others)
    assert told and "chưa xác nhận" in told[0].text
    assert (await identity(sessionmaker, "str")).person_id is None
    async with sessionmaker() as session:
        claim = await session.scalar(select(IdentityClaim))
    assert claim is not None and claim.status == ClaimStatus.REFUSED
    # Refused, the chat starts again from the phone (and may wait again): it is not stuck.
    await stranger.say("ABCD2345")
    assert "0912 345 678" in stranger.text()


async def test_the_operator_settles_a_claim_no_leader_can(
    sessionmaker: async_sessionmaker[AsyncSession],
    operator: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A unit whose leader does not use the bot: the claim is not stuck for ever."""
    org = await make_org(sessionmaker)  # no leader, no officer in the bot
    engine = build_engine(sessionmaker, EngineConfig())
    hoa = Chat(engine, "hoa-zalo", channel="zalo")
    await claim_by_typing(hoa, HOA_PHONE, "Nguyễn Thị Hoa")
    assert hoa.last_others == []  # nobody to ask in the chat
    assert await asyncio.to_thread(cli, "person", "claims") == 0
    listed = capsys.readouterr().out
    claim = re.search(
        r"#(\d+)\t.*CDCS-MAY\tNguyễn Thị Hoa\t0912345678\tzalo .*Nguyễn Thị Hoa", listed
    )
    assert claim, listed
    assert await asyncio.to_thread(cli, "person", "confirm", "--claim", claim.group(1)) == 0
    assert "confirmed" in capsys.readouterr().out
    assert (await identity(sessionmaker, "hoa-zalo")).person_id == org.rostered.id
    async with sessionmaker() as session:
        told = list(await session.scalars(select(OutboxMessage)))
    assert [m.external_id for m in told] == ["hoa-zalo"]
    assert "xác nhận" in told[0].payload["text"]
    assert await asyncio.to_thread(cli, "person", "confirm", "--claim", claim.group(1)) != 0


async def test_a_member_invitation_does_not_stand_in_for_the_leader(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A member invitation is shared with a whole unit: it shows no roster by itself."""
    await _org(sessionmaker)
    async with sessionmaker() as session, session.begin():
        code = (await create_invite(session, "member", "CDCS-MAY", now=JAN_10)).code
    newcomer = Chat(make_engine(sessionmaker), "invited", channel="telegram")
    await newcomer.say(f"/start {code}")
    await newcomer.contact("+84987654321")
    await newcomer.tap("Đúng")
    await newcomer.say("Phạm Văn Đức")
    await newcomer.say("/sangkien")
    await newcomer.say("Cải tiến máy may")
    await newcomer.say("ky thuat")
    await newcomer.say("Gắn cữ gá giúp may cổ áo nhanh gấp đôi.")
    await newcomer.say("thi")
    shown = newcomer.text() + " ".join(c.label for r in newcomer.last for c in r.choices)
    assert "Nguyễn Thị Hoa" not in shown


async def test_claims_again_and_again_do_not_flood_the_leader(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await _org(sessionmaker)
    engine = make_engine(sessionmaker)
    await leader_chat(engine)
    asked = 0
    for attempt in range(5):
        # A new browser each time, the same phone.
        stranger = Chat(engine, f"web-{attempt}", channel="web")
        await claim_by_typing(stranger, HOA_PHONE, "Nguyễn Thị Hoa")
        asked += sum(1 for out in stranger.last_others if out.to.external_id == "leader")
        assert "chờ" in stranger.text() or "xác nhận" in stranger.text()  # the same reply
    assert asked == 3


async def test_a_conversation_saved_at_the_old_name_check_goes_on_at_the_code(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """After the upgrade, someone who was typing the roster name is asked for a code."""
    await _org(sessionmaker)
    engine = make_engine(sessionmaker)
    chat = Chat(engine, "old", channel="zalo")
    await chat.say("/start")
    await chat.say(HOA_PHONE)
    async with sessionmaker() as session, session.begin():
        conversation = await session.scalar(select(Conversation))
        assert conversation is not None
        conversation.step = "verify_name"  # as the previous version left it
    await chat.say("nguyen thi hoa")
    assert "mã cá nhân" in chat.text()
    assert (await identity(sessionmaker, "old")).person_id is None


async def test_link_codes_cannot_be_guessed_without_limit(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """/lienket takes the same codes as onboarding: its wrong guesses count the same."""
    org, _ = await _org(sessionmaker)
    engine = make_engine(sessionmaker)
    guesser = Chat(engine, "guesser", channel="web")
    for attempt in range(5):
        await guesser.say(f"/lienket ABCD{attempt + 2}EFG")
        assert "không dùng được" in guesser.text()
    async with sessionmaker() as session, session.begin():
        real, _expires = await issue_link_code(
            session, org.rostered.id, "cli", JAN_10, PERSONAL_LIFETIME
        )
    await guesser.say(f"/lienket {real}")  # even the right one, today
    assert "quá nhiều" in guesser.text()
    assert (await identity(sessionmaker, "guesser")).person_id is None


async def test_a_chat_that_lost_its_person_mid_flow_starts_over(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A chat taken over by another chat of the same app loses its person; should its
    conversation still sit in a registration (a takeover racing its answer), the next answer
    starts the sign-up again instead of failing at a step that needs the person."""
    await make_org(sessionmaker)
    chat = Chat(build_engine(sessionmaker, EngineConfig(now=lambda: JAN_10)), "100")
    await chat.say("/start")
    await chat.contact("+84912345678")
    await chat.tap("là tôi")
    await chat.tap("Đăng ký danh hiệu")
    await chat.say("lao dong tien tien")  # at the commitment
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(ChannelIdentity)
            .where(ChannelIdentity.channel == chat.channel)
            .values(person_id=None)
        )
    await chat.say("Hoàn thành kế hoạch")
    assert "0912 345 678" in chat.text(), chat.transcript()  # asked for the phone again
