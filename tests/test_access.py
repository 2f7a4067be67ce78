"""Access: a member sees only their own records, a leader only their unit, an officer only
their subtree, whatever ids they type or forge.

Ids reach the engine in three ways, each tried here with other people's ids: buttons of the
current question (checked against the stored prompt), notification buttons and their typed
form ("!approve:7", "/approve 7"), and drafts written earlier (checked again by each flow,
tried here by planting a foreign id in a conversation). After every attempt the records the
attempt aimed at must be exactly as they were.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.engine.flow import EngineConfig
from handlers.engine.prompt import Address, Incoming
from handlers.engine.runner import Engine
from handlers.flows import build_engine, default_actions
from storage.invites import create_invite, revoke_invite
from storage.links import issue_link_code
from storage.models import (
    Broadcast,
    BroadcastStatus,
    Campaign,
    ChannelIdentity,
    Conversation,
    Initiative,
    Invite,
    LinkCode,
    Person,
    Registration,
    Role,
    Unit,
    UnitKind,
    UnitRole,
    UnitSubmission,
    Work,
)
from tests.chat import Chat
from tests.factories import Org, add_unit, make_org
from tests.test_web_chat import browser, new_invite, start_channel

JAN_10 = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)
Sessions = async_sessionmaker[AsyncSession]
REFUSED = (
    "chỉ cán bộ công đoàn cấp trên",  # review actions
    "chỉ cán bộ của công đoàn gửi thông báo",  # broadcast cancel
    "không còn hiệu lực",  # a button that is no longer valid
    "câu hỏi trước",  # a button of an earlier question
    "không biết lệnh",  # an unknown command
)


@dataclass
class Town:
    """Two branches under the province: the industrial park (garment, school) and a commune."""

    org: Org
    commune: Unit
    village: Unit  # a grassroots union under the commune
    ids: dict[str, int]  # people
    records: dict[str, int]  # registrations, initiatives, works, submissions, broadcasts


async def person(
    session: AsyncSession, name: str, unit: Unit, chat: str | None, *roles: tuple[str, Unit]
) -> int:
    p = Person(full_name=name, unit_id=unit.id, phone=None, source="roster")
    session.add(p)
    await session.flush()
    session.add(UnitRole(person_id=p.id, unit_id=unit.id, role=Role.MEMBER))
    for role, role_unit in roles:
        session.add(UnitRole(person_id=p.id, unit_id=role_unit.id, role=role))
    if chat is not None:
        session.add(ChannelIdentity(channel="test", external_id=chat, person_id=p.id))
    await session.flush()
    return p.id


@pytest.fixture
async def town(sessionmaker: Sessions) -> Town:
    org = await make_org(sessionmaker)
    async with sessionmaker() as session, session.begin():
        province = await session.get(Unit, org.province.id)
        garment = await session.get(Unit, org.garment.id)
        school = await session.get(Unit, org.school.id)
        upper = await session.get(Unit, org.upper.id)
        assert province and garment and school and upper
        commune = await add_unit(
            session, "CD-XA", "Công đoàn xã Bằng Vân", UnitKind.UPPER, province
        )
        village = await add_unit(
            session, "CDCS-HTX", "Công đoàn HTX Bằng Vân", UnitKind.GRASSROOTS, commune
        )
        ids = {
            "hoa": org.rostered.id,
            "binh": await person(session, "Trần Văn Bình", school, "binh"),
            "leader_g": await person(
                session, "Phạm Văn Tuấn", garment, "leader_g", (Role.LEADER, garment)
            ),
            "leader_s": await person(
                session, "Hà Thị Lan", school, "leader_s", (Role.LEADER, school)
            ),
            "officer": await person(session, "Lê Văn Cán", upper, "officer", (Role.OFFICER, upper)),
            "officer_x": await person(
                session, "Bùi Xuân", commune, "officer_x", (Role.OFFICER, commune)
            ),
            "leader_v": await person(
                session, "Đinh Văn Hợp", village, "leader_v", (Role.LEADER, village)
            ),
        }
        session.add(ChannelIdentity(channel="test", external_id="hoa", person_id=org.rostered.id))
        records: dict[str, int] = {}
        for key, owner, unit in (("reg_hoa", "hoa", garment), ("reg_binh", "binh", school)):
            reg = Registration(
                receipt_no=f"TD2027-{key}",
                campaign_id=org.campaign.id,
                title_code="LDTT",
                person_id=ids[owner],
                unit_id=unit.id,
            )
            session.add(reg)
            await session.flush()
            records[key] = reg.id
        for key, owner, unit in (("ini_hoa", "hoa", garment), ("ini_binh", "binh", school)):
            ini = Initiative(
                receipt_no=f"SK-{key}",
                campaign_id=org.campaign.id,
                person_id=ids[owner],
                unit_id=unit.id,
                name=f"Sáng kiến của {owner}",
                field="technical",
            )
            session.add(ini)
            await session.flush()
            records[key] = ini.id
        for key, unit in (("work_g", garment), ("work_s", school)):
            work = Work(
                receipt_no=f"CT-{key}",
                campaign_id=org.campaign.id,
                unit_id=unit.id,
                name=f"Công trình {key}",
                occasion="Tháng Công nhân",
                value=500_000_000,
                starts_on=date(2027, 2, 1),
                ends_on=date(2027, 5, 1),
            )
            session.add(work)
            await session.flush()
            records[key] = work.id
        for key, unit in (("sub_g", garment), ("sub_v", village)):
            sub = UnitSubmission(
                campaign_id=org.campaign.id, unit_id=unit.id, status="pending", round=1
            )
            session.add(sub)
            await session.flush()
            records[key] = sub.id
        for key, unit, by in (("bc_upper", upper, "officer"), ("bc_commune", commune, "officer_x")):
            bc = Broadcast(
                source="chat",
                created_by_id=ids[by],
                unit_id=unit.id,
                text="Thông báo phát động thi đua",
                audience={"unit_ids": None, "role": "all", "unregistered": False},
                status=BroadcastStatus.SCHEDULED,
                scheduled_at=JAN_10 + timedelta(days=3),
            )
            session.add(bc)
            await session.flush()
            records[key] = bc.id
    return Town(org, commune, village, ids, records)


@pytest.fixture
def bot(sessionmaker: Sessions) -> Engine:
    return build_engine(sessionmaker, EngineConfig(now=lambda: JAN_10))


async def fingerprint(sessionmaker: Sessions) -> dict[str, Any]:
    """What an attempt must not change: statuses, owners, roles, uses, links."""
    async with sessionmaker() as session:

        async def rows(*columns: Any) -> list[tuple[Any, ...]]:
            result = await session.execute(select(*columns).order_by(columns[0]))
            return [tuple(r) for r in result]

        return {
            "registrations": await rows(
                Registration.id, Registration.status, Registration.person_id
            ),
            "initiatives": await rows(Initiative.id, Initiative.status, Initiative.person_id),
            "works": await rows(Work.id, Work.status, Work.unit_id),
            "submissions": await rows(UnitSubmission.id, UnitSubmission.status),
            "broadcasts": await rows(Broadcast.id, Broadcast.status),
            "roles": await rows(UnitRole.id, UnitRole.person_id, UnitRole.unit_id, UnitRole.role),
            "identities": await rows(ChannelIdentity.id, ChannelIdentity.person_id),
            "invites": await rows(Invite.id, Invite.uses),
        }


async def started(bot: Engine, user: str) -> Chat:
    chat = Chat(bot, user)
    await chat.say("/start")
    return chat


# --- every notification action, with everybody's ids, by those who may not --------------------


async def test_foreign_ids_in_every_action_and_command_change_nothing(
    sessionmaker: Sessions, bot: Engine, town: Town
) -> None:
    before = await fingerprint(sessionmaker)
    ids = [str(i) for i in sorted(set(town.records.values()) | set(town.ids.values()))]
    ids += ["0", "-1", "99999999999", "²", "1 OR 1=1", "", "x"]
    # Who tries, and whose records they aim at: a member, leaders of other units, the
    # officer of the other branch (neither list nor broadcast is theirs except their own).
    attackers = ("hoa", "binh", "leader_s", "leader_v", "officer_x")
    actions = sorted(default_actions())
    assert {"approve", "return", "reopen", "bcancel"} <= set(actions)
    for user in attackers:
        chat = await started(bot, user)
        for name in actions:
            for arg in ids:
                await chat._send(Incoming(chat.address, choice_id=f"!{name}:{arg}"))
                await chat.say(f"/{name} {arg}")
        # Back at the menu after each round: nothing left half-done.
        await chat.say("/huy")
    after = await fingerprint(sessionmaker)
    # The commune officer's own broadcast is the only thing they may cancel; the garment
    # leader's list is not theirs. Everything else stays exactly as it was.
    own = town.records["bc_commune"]
    cancelled = [b for b in after["broadcasts"] if b[1] == BroadcastStatus.CANCELLED]
    assert [b[0] for b in cancelled] == [own]
    after["broadcasts"] = before["broadcasts"]
    # The commune officer may also decide on the village's list (their subtree).
    village = town.records["sub_v"]
    assert {s[0] for s in after["submissions"] if s[1] != "pending"} <= {village}
    after["submissions"] = before["submissions"]
    assert after == before


async def test_the_right_officer_may_and_others_are_told_no(
    sessionmaker: Sessions, bot: Engine, town: Town
) -> None:
    garment_list = town.records["sub_g"]
    stranger = await started(bot, "officer_x")
    for text in (f"/approve {garment_list}", f"/return {garment_list}", "/duyet"):
        await stranger.say(text)
    assert "Công ty May" not in stranger.transcript().split("Danh sách chờ")[-1]
    assert "chỉ cán bộ công đoàn cấp trên" in stranger.transcript()
    officer = await started(bot, "officer")
    await officer.say("/duyet")
    assert "Công ty May" in officer.transcript()
    assert "HTX Bằng Vân" not in officer.transcript()  # the other branch's list stays hidden
    await officer.say(f"/pheduyet {garment_list}")  # the Vietnamese word of the button
    assert "Đã duyệt" in officer.text()
    await officer.say(f"/bcancel {town.records['bc_commune']}")  # the commune's announcement
    assert "chỉ cán bộ của công đoàn gửi thông báo" in officer.text()
    await officer.say(f"/bcancel {town.records['bc_upper']}")
    assert "đã hủy" in officer.text().lower()


# --- buttons of the current question, and ids planted in drafts ----------------------------------


async def plant(
    sessionmaker: Sessions, user: str, flow: str, step: str, draft: dict[str, Any]
) -> None:
    """Write a draft as if an earlier version of a flow had saved it (ids not re-checked)."""
    async with sessionmaker() as session, session.begin():
        identity = await session.scalar(
            select(ChannelIdentity.id).where(ChannelIdentity.external_id == user)
        )
        conv = await session.scalar(
            select(Conversation).where(Conversation.identity_id == identity)
        )
        assert conv is not None
        data = dict(conv.data)
        data["draft"] = draft
        data.pop("prompt", None)
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conv.id)
            .values(flow=flow, step=step, data=data, version=Conversation.version + 1)
        )


async def test_a_member_sees_and_withdraws_only_their_own(
    sessionmaker: Sessions, bot: Engine, town: Town
) -> None:
    hoa = await started(bot, "hoa")
    await hoa.say("/cuatoi")
    assert "TD2027-reg_hoa" in hoa.text() and "SK-ini_hoa" in hoa.text()
    assert "reg_binh" not in hoa.text() and "ini_binh" not in hoa.text()
    assert "CT-work" not in hoa.text()  # works belong to the units' leaders
    before = await fingerprint(sessionmaker)
    prompt = hoa.prompt()
    # Forged buttons on the current question: Bình's registration, initiative, a work.
    for forged in (
        f"wr{town.records['reg_binh']}",
        f"wi{town.records['ini_binh']}",
        f"ww{town.records['work_s']}",
    ):
        await hoa._send(Incoming(hoa.address, choice_id=forged, seq=prompt.seq))
        assert "Rút" not in hoa.text() or "TD2027-reg_binh" not in hoa.text()
    # The same ids planted in the draft, then "Yes, withdraw it".
    for kind, key in (("r", "reg_binh"), ("i", "ini_binh"), ("w", "work_s")):
        await plant(
            sessionmaker, "hoa", "mine", "confirm_withdraw", {"withdraw": [kind, town.records[key]]}
        )
        await hoa.say("/start")  # "let us continue": the step asks again, with the check
        assert "TD2027-reg_binh" not in hoa.transcript()
    assert await fingerprint(sessionmaker) == before


async def test_a_leader_reaches_only_their_own_unit(
    sessionmaker: Sessions, bot: Engine, town: Town
) -> None:
    lan = await started(bot, "leader_s")  # leader of the school
    await lan.say("/donvi")
    assert "Chợ Đồn" in lan.transcript() and "Công ty May" not in lan.transcript()
    await lan.say("/menu")
    await lan.tap("Đăng ký giúp đoàn viên")
    await lan.say("hoa")  # Hoa is in the garment union
    assert "Không tìm thấy ai" in lan.text()
    before = await fingerprint(sessionmaker)
    # Hoa's id planted as a match of the search: the member step checks the roster again.
    await plant(
        sessionmaker,
        "leader_s",
        "on_behalf",
        "member",
        {"unit_id": town.org.school.id, "matches": [town.ids["hoa"]]},
    )
    await lan.say("/start")
    assert "Nguyễn Thị Hoa" not in lan.text()
    # A unit she does not lead, planted in the submit flow and the works list.
    await plant(sessionmaker, "leader_s", "submit", "send", {"unit_id": town.org.garment.id})
    await lan.say("/start")
    assert "Công ty May" not in lan.text()
    await plant(
        sessionmaker,
        "leader_s",
        "mine",
        "confirm_withdraw",
        {"withdraw": ["w", town.records["work_g"]]},
    )
    await lan.say("/start")
    assert "CT-work_g" not in lan.text()
    assert await fingerprint(sessionmaker) == before


async def test_a_lost_role_mid_flow_ends_it_politely(
    sessionmaker: Sessions, bot: Engine, town: Town
) -> None:
    """Back onto a step that no longer applies follows it (here: to the menu) instead of
    keeping the question of another step, whose buttons would then reach the wrong step."""
    async with sessionmaker() as session, session.begin():
        # A second campaign running: the campaign question is shown (and Back returns to it).
        themed = Campaign(
            code="CN2027",
            name="Thi đua Tháng Công nhân 2027",
            issuer_unit_id=town.org.upper.id,
            year=2027,
            registration_deadline=date(2027, 4, 30),
            title_codes=["LDTT"],
            settings={},
        )
        session.add(themed)
    lan = await started(bot, "leader_s")  # the school's list is not sent yet
    await lan.say("/guilen")
    await lan.tap("Phong trào thi đua năm 2027")
    assert "Gửi lên cấp trên" in " ".join(lan.buttons()), lan.transcript()
    async with sessionmaker() as session, session.begin():
        await session.execute(
            delete(UnitRole).where(
                UnitRole.person_id == town.ids["leader_s"], UnitRole.role == Role.LEADER
            )
        )
    send_prompt = lan.prompt()
    await lan.tap("Quay lại")
    assert "không còn là chủ tịch" in lan.text()
    # The old "send" button now belongs to an earlier question.
    send = next(c for c in send_prompt.choices if c.id == "send")
    await lan._send(Incoming(lan.address, choice_id=send.id, seq=send_prompt.seq))
    assert "câu hỏi trước" in lan.text()
    async with sessionmaker() as session:
        sent = await session.scalar(
            select(UnitSubmission).where(UnitSubmission.unit_id == town.org.school.id)
        )
    assert sent is None  # nothing was sent


# --- link codes ------------------------------------------------------------------------------


async def test_link_codes_of_others(sessionmaker: Sessions, bot: Engine, town: Town) -> None:
    async with sessionmaker() as session, session.begin():
        code, _expires = await issue_link_code(session, town.ids["hoa"], "test", JAN_10)
        stored = list(await session.scalars(select(LinkCode.code_hash)))
    assert code not in stored  # only its hash is kept

    # Bình (already someone) cannot take over Hoa with her code.
    binh = await started(bot, "binh")
    await binh.say(f"/lienket {code}")
    assert "đã được liên kết với Trần Văn Bình" in binh.text()
    # Wrong, mistyped and look-alike codes say the same thing (four: the fifth locks the chat
    # out, tests/test_identity.py).
    stranger = Chat(bot, "zalo-stranger", channel="zalo")
    for wrong in ("AAAAAAAA", code[:-1], "' OR 1=1 --", "x" * 500):
        await stranger.say(f"/lienket {wrong}")
        assert "không dùng được" in stranger.text()
    # The right code works once, and Hoa is told on the app that issued it.
    await stranger.say(f"/lienket {code.lower()}")
    assert "Xong, Hoa:" in stranger.text()  # called by the given name
    assert [o.to for o in stranger.last_others] == [Address("test", "hoa")]
    thief = Chat(bot, "zalo-thief", channel="zalo")
    await thief.say(f"/lienket {code}")
    assert "không dùng được" in thief.text()


async def test_an_expired_link_code_does_not_work(
    sessionmaker: Sessions, bot: Engine, town: Town
) -> None:
    async with sessionmaker() as session, session.begin():
        code, _expires = await issue_link_code(
            session, town.ids["hoa"], "test", JAN_10 - timedelta(minutes=16)
        )
    late = Chat(bot, "late", channel="zalo")
    await late.say(f"/lienket {code}")
    assert "không dùng được" in late.text()


# --- invites through the conversation -----------------------------------------------------------


async def test_invites_expire_are_revocable_and_count_their_uses(
    sessionmaker: Sessions, bot: Engine, town: Town
) -> None:
    async with sessionmaker() as session, session.begin():
        expired = await create_invite(
            session, "leader", "CDCS-MAY", days=1, now=JAN_10 - timedelta(days=2)
        )
        revoked = await create_invite(session, "officer", "CD-KCN", now=JAN_10)
        await revoke_invite(session, revoked.code, now=JAN_10)
        once = await create_invite(session, "leader", "CDCS-THPT", max_uses=1, now=JAN_10)
    hoa = await started(bot, "hoa")
    for code in (expired.code, revoked.code, "not-a-code", "a" * 65):
        await hoa.say(f"/start {code}")
        assert "không còn hiệu lực" in hoa.text()
    async with sessionmaker() as session:
        roles = set(
            await session.scalars(
                select(UnitRole.role).where(UnitRole.person_id == town.ids["hoa"])
            )
        )
    assert roles == {Role.MEMBER}

    # Two people open the last use at the same moment: exactly one gets the role.
    binh = await started(bot, "binh")
    results = await asyncio.gather(hoa.say(f"/start {once.code}"), binh.say(f"/start {once.code}"))
    texts = ["\n".join(r.text for r in replies) for replies in results]
    assert sum("Bạn đã được nhận vai trò" in t for t in texts) == 1, texts
    async with sessionmaker() as session:
        leaders = list(
            await session.scalars(
                select(UnitRole.person_id).where(
                    UnitRole.unit_id == town.org.school.id, UnitRole.role == Role.LEADER
                )
            )
        )
        used = await session.scalar(select(Invite.uses).where(Invite.id == once.id))
    assert len([p for p in leaders if p in (town.ids["hoa"], town.ids["binh"])]) == 1
    assert used == 1


# --- the web chat: ids in URLs ------------------------------------------------------------------


async def test_web_ids_out_of_range_or_of_others_are_refused_not_errors(
    sessionmaker: Sessions, town: Town
) -> None:
    """Ids in the web chat's URLs: a bubble of someone else is 404 (tests/test_web_chat.py),
    and numbers no column can hold are a plain refusal, never a server error."""
    web = await start_channel(sessionmaker, demo=False)
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            person = browser(http, web)
            code = await new_invite(sessionmaker, "member", "CDCS-MAY")
            assert (await person.signin(code=code)).status == 200
            huge = "9" * 18
            for path in (
                f"api/file/{huge}",
                f"api/file/{2**31}",
                "api/file/0",
                f"api/inbox?after={huge}",
                f"api/inbox?after={2**31}",
                "api/inbox?after=-1",
                "api/inbox?after=²",
            ):
                async with http.get(web.url + path) as response:
                    assert response.status in (200, 400, 404), (path, response.status)
    finally:
        await web.stop()
