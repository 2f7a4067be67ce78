"""Reminders before deadlines, with a clock moved through a campaign (SQLite and PostgreSQL).

The campaign of tests.factories: registration deadline 25/01/2027, Đợt 1 to 30/06/2027,
reminders 7, 3 and 1 days before; Hà Nội time (UTC+7), quiet hours 20:00–08:00.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.scheduler import catch_up_job, plan_jobs
from handlers.engine.flow import EngineConfig
from handlers.engine.prompt import Address, Incoming
from handlers.flows import build_engine
from handlers.reminders import (
    QuietHours,
    ReminderPolicy,
    current_due,
    due_points,
    reminder_pass,
)
from storage.campaigns import CampaignInvalid, load_campaign
from storage.counts import custom_plans
from storage.models import (
    Campaign,
    ChannelIdentity,
    Conversation,
    OutboxMessage,
    Person,
    Registration,
    ReminderLog,
    Role,
    UnitRole,
    UnitSubmission,
)
from storage.personal import erase_person
from storage.reminders import addressed, claim, latest_addresses, members_due
from storage.schedule import parse_reminders
from tests.chat import Chat
from tests.factories import Org, make_org

VN = ZoneInfo("Asia/Ho_Chi_Minh")
POLICY = ReminderPolicy()


def vn(month: int, day: int, hour: int, minute: int = 0, year: int = 2027) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=VN)


@dataclass
class Scene:
    org: Org
    people: dict[str, int]


async def add_person(
    session: AsyncSession,
    name: str,
    unit_id: int,
    *,
    chat: bool = True,
    muted: bool = False,
    role: str | None = None,
    locale: str | None = None,
) -> Person:
    person = Person(
        full_name=name, unit_id=unit_id, source="roster", reminders_muted=muted, locale=locale
    )
    session.add(person)
    await session.flush()
    session.add(UnitRole(person_id=person.id, unit_id=unit_id, role=Role.MEMBER))
    if role is not None:
        session.add(UnitRole(person_id=person.id, unit_id=unit_id, role=role))
    if chat:
        session.add(
            ChannelIdentity(channel="test", external_id=f"u{person.id}", person_id=person.id)
        )
    await session.flush()
    return person


async def register(session: AsyncSession, org: Org, person: Person, code: str = "LDTT") -> None:
    count = await session.scalar(select(func.count()).select_from(Registration))
    session.add(
        Registration(
            receipt_no=f"R{count}",
            campaign_id=org.campaign.id,
            title_code=code,
            person_id=person.id,
            unit_id=person.unit_id,
        )
    )


async def make_scene(sessionmaker: async_sessionmaker[AsyncSession], **settings: object) -> Scene:
    org = await make_org(sessionmaker)
    people: dict[str, int] = {}
    async with sessionmaker() as session, session.begin():
        if settings:
            await session.execute(
                update(Campaign).where(Campaign.id == org.campaign.id).values(settings=settings)
            )
        g, s = org.garment.id, org.school.id
        hoa = await session.get(Person, org.rostered.id)
        assert hoa is not None
        session.add(ChannelIdentity(channel="test", external_id="hoa", person_id=hoa.id))
        binh = await add_person(session, "Trần Văn Bình", g)
        await register(session, org, binh)
        chi = await add_person(session, "Lê Thị Chi", g)
        identity = await session.scalar(
            select(ChannelIdentity).where(ChannelIdentity.person_id == chi.id)
        )
        assert identity is not None
        # Chi stopped half-way through the title flow: the draft names the campaign.
        session.add(
            Conversation(
                identity_id=identity.id,
                flow="title",
                step="commitment",
                data={"draft": {"campaign_id": org.campaign.id, "title": "LDTT"}},
            )
        )
        dung = await add_person(session, "Phạm Văn Dũng", s, muted=True)
        em = await add_person(session, "Hoàng Thị Em", s, chat=False)
        lan = await add_person(session, "Vũ Thị Lan", g, role=Role.LEADER)
        await register(session, org, lan)
        giang = await add_person(session, "Đỗ Văn Giang", s, locale="en")
        people = {
            "hoa": hoa.id,
            "binh": binh.id,
            "chi": chi.id,
            "dung": dung.id,
            "em": em.id,
            "lan": lan.id,
            "giang": giang.id,
        }
    return Scene(org, people)


async def run(sessionmaker, scene: Scene, at: datetime) -> set[tuple[str, str]]:
    """One pass at ``at``: the (person, detail) pairs that got a reminder."""
    report = await reminder_pass(sessionmaker, scene.org.campaign.id, at, POLICY)
    names = {v: k for k, v in scene.people.items()}
    return {(names[m.person_id], m.detail) for m in report.messages}


async def outbox(sessionmaker) -> list[OutboxMessage]:
    async with sessionmaker() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


# --- timing, without a database ---------------------------------------------------------------


def test_quiet_hours_release_night_times_at_eight() -> None:
    quiet = QuietHours(time(20, 0), time(8, 0))
    assert quiet.release(vn(1, 18, 22)) == vn(1, 19, 8)
    assert quiet.release(vn(1, 18, 3)) == vn(1, 18, 8)
    assert quiet.release(vn(1, 18, 8)) == vn(1, 18, 8)
    assert quiet.release(vn(1, 18, 19, 59)) == vn(1, 18, 19, 59)
    assert quiet.release(vn(1, 18, 20)) == vn(1, 19, 8)
    # A daytime quiet window (lunch) works the same way.
    lunch = QuietHours(time(12, 0), time(13, 30))
    assert lunch.release(vn(1, 18, 12, 15)) == vn(1, 18, 13, 30)
    assert not QuietHours(time(8), time(8)).is_quiet(time(3))


def test_reminder_settings_are_read_and_checked() -> None:
    assert parse_reminders(None).offsets == (7, 3, 1)
    assert parse_reminders([1, 14, 3, 3]).offsets == (14, 3, 1)
    assert parse_reminders(False).offsets == ()  # "reminders: off"
    assert parse_reminders({"days": [2], "at": "22:00"}).at == time(22, 0)
    assert parse_reminders({"at": 540}).at == time(9, 0)  # YAML 1.1 reads 09:00 as 540
    assert parse_reminders({"days_before_deadline": [7, 1]}).offsets == (7, 1)
    with pytest.raises(ValueError):
        parse_reminders({"days": [7], "days_before_deadline": [1]})
    with pytest.raises(ValueError):
        parse_reminders(["7"])
    with pytest.raises(ValueError):
        parse_reminders({"days": [7], "hour": 9})


async def test_bad_reminder_and_digest_settings_stop_the_campaign_load(sessionmaker) -> None:
    org = await make_org(sessionmaker)
    data = {
        "code": "TD2027B",
        "name": "Đợt thi đua B",
        "issuer": org.province.code,
        "year": 2027,
        "registration_deadline": "2027-01-25",
        "titles": ["LDTT"],
        "reminders": [7, "ba"],
        "digest": "hằng tháng",
    }
    async with sessionmaker() as session:
        with pytest.raises(CampaignInvalid) as failure:
            await load_campaign(session, data)
    problems = " ".join(failure.value.problems)
    assert "reminders:" in problems and "digest:" in problems
    data |= {"reminders": {"days": [5, 2], "at": "09:30"}, "digest": False}
    async with sessionmaker() as session, session.begin():
        campaign = await load_campaign(session, data)
        assert campaign.settings["reminders"] == {"days": [5, 2], "at": "09:30"}
        assert campaign.settings["digest"] is False


async def test_due_points_default_to_seven_three_one_days_at_eight(sessionmaker) -> None:
    org = await make_org(sessionmaker)
    async with sessionmaker() as session:
        campaign = await session.scalar(select(Campaign).where(Campaign.id == org.campaign.id))
        assert campaign is not None
        await session.refresh(campaign, ["phases"])
        points = due_points(campaign, POLICY)
    deadline = [p.send_at.astimezone(VN) for p in points if p.anchor.key == "deadline"]
    assert deadline == [vn(1, 18, 8), vn(1, 22, 8), vn(1, 24, 8)]
    assert {p.anchor.key for p in points} == {"deadline", "phase1", "phase2"}
    assert current_due(campaign, vn(1, 18, 7, 59), POLICY) == []
    assert [p.key for p in current_due(campaign, vn(1, 23, 15), POLICY)] == [
        "deadline:2027-01-25:-3d"
    ]


# --- passes over a campaign ------------------------------------------------------------------


async def test_reminders_reach_the_right_people_at_the_right_times(sessionmaker) -> None:
    scene = await make_scene(sessionmaker)
    # The evening before the first due point, and 08:00 minus one minute: nothing.
    assert await run(sessionmaker, scene, vn(1, 17, 12)) == set()
    assert await run(sessionmaker, scene, vn(1, 18, 7, 59)) == set()
    sent = await run(sessionmaker, scene, vn(1, 18, 8))
    # Hoa registered nothing, Chi has a draft, Lan leads the garment union, Giang (English)
    # registered nothing. Bình registered, Dũng muted, Em has no chat: none of them.
    assert sent == {
        ("hoa", "register"),
        ("chi", "draft"),
        ("lan", "progress"),
        ("giang", "register"),
    }
    # Later the same day, and a "restart" running the pass again: nothing doubled.
    assert await run(sessionmaker, scene, vn(1, 18, 8)) == set()
    assert await run(sessionmaker, scene, vn(1, 18, 15)) == set()
    assert len(await outbox(sessionmaker)) == 4

    # Hoa registers before the next due point: only the others are reminded on 22/01.
    async with sessionmaker() as session, session.begin():
        hoa = await session.get(Person, scene.people["hoa"])
        assert hoa is not None
        await register(session, scene.org, hoa)
    assert await run(sessionmaker, scene, vn(1, 22, 9)) == {
        ("chi", "draft"),
        ("lan", "progress"),
        ("giang", "register"),
    }
    # The deadline has passed: no more deadline reminders, however often the pass runs.
    assert await run(sessionmaker, scene, vn(1, 26, 8)) == set()
    # A week before Đợt 1 ends only leaders are reminded, of the phase's review
    # (registration closed months ago).
    assert await run(sessionmaker, scene, vn(6, 23, 8)) == {("lan", "review")}


async def test_phase_end_tells_leaders_about_the_review_not_registering(sessionmaker) -> None:
    scene = await make_scene(sessionmaker)
    await run(sessionmaker, scene, vn(6, 23, 8))
    [row] = await outbox(sessionmaker)
    text = row.payload["text"]
    assert text.startswith(
        "⏰ Đợt 1 của phong trào “Phong trào thi đua năm 2027” kết thúc ngày 30/06/2027 "
        "(còn 7 ngày). Đề nghị Công đoàn cơ sở Công ty May Bắc Kạn chuẩn bị sơ kết đợt:"
    )
    assert "gắn biển" in text and "/cuatoi" in text
    # Nothing about who has not registered, months after registration closed.
    assert "chưa đăng ký" not in text and "2/4" not in text
    assert ["!remind:off", "🔕 Tắt nhắc nhở"] in row.payload["choices"]


async def test_texts_buttons_and_languages(sessionmaker) -> None:
    scene = await make_scene(sessionmaker)
    await run(sessionmaker, scene, vn(1, 18, 10))
    rows = {r.external_id: r for r in await outbox(sessionmaker)}
    ids = {k: f"u{v}" for k, v in scene.people.items()} | {"hoa": "hoa"}

    hoa = rows[ids["hoa"]].payload
    assert "25/01/2027" in hoa["text"] and "còn 7 ngày" in hoa["text"]
    assert "chưa đăng ký" in hoa["text"]
    assert ["!start:title", "📝 Đăng ký ngay"] in hoa["choices"]
    assert ["!remind:off", "🔕 Tắt nhắc nhở"] in hoa["choices"]
    assert "gõ /dangky" in hoa["text"] and "/tatnhac" in hoa["text"]  # for chats without buttons

    chi = rows[ids["chi"]].payload
    assert "bạn còn một đăng ký chưa hoàn tất" in chi["text"].lower()
    assert chi["choices"][0][0] == "!resume:"

    lan = rows[ids["lan"]].payload["text"]
    # Garment union: Hoa, Bình, Chi, Lan are members; Bình and Lan registered.
    assert "Công ty May Bắc Kạn: 2/4" in lan
    assert "còn 02 người chưa đăng ký" in lan
    assert "chưa gửi" in lan

    giang = rows[ids["giang"]].payload
    assert "You have not registered anything yet" in giang["text"]
    assert ["!start:title", "📝 Register now"] in giang["choices"]


async def test_leader_sees_the_list_was_sent(sessionmaker) -> None:
    scene = await make_scene(sessionmaker)
    async with sessionmaker() as session, session.begin():
        session.add(
            UnitSubmission(
                campaign_id=scene.org.campaign.id, unit_id=scene.org.garment.id, status="pending"
            )
        )
    await run(sessionmaker, scene, vn(1, 18, 10))
    rows = {r.external_id: r for r in await outbox(sessionmaker)}
    assert "đã gửi, chờ duyệt" in rows[f"u{scene.people['lan']}"].payload["text"]


async def test_a_night_due_time_goes_out_at_eight(sessionmaker) -> None:
    scene = await make_scene(sessionmaker, reminders={"days": [7], "at": "22:00"})
    # Due 18/01 22:00: quiet hours, so nothing then or during the night ...
    assert await run(sessionmaker, scene, vn(1, 18, 22)) == set()
    assert await run(sessionmaker, scene, vn(1, 19, 2)) == set()
    assert await run(sessionmaker, scene, vn(1, 19, 7, 59)) == set()
    # ... and everything at 08:00 the next morning, once.
    assert ("hoa", "register") in await run(sessionmaker, scene, vn(1, 19, 8))
    assert await run(sessionmaker, scene, vn(1, 19, 8, 1)) == set()
    async with sessionmaker() as session:
        campaign = await session.get(Campaign, scene.org.campaign.id)
        assert campaign is not None
        await session.refresh(campaign, ["phases"])
        jobs = await plan_jobs(sessionmaker, vn(1, 10, 12), POLICY)
    assert vn(1, 19, 8) in {j.run_at for j in jobs if j.kind == "remind"}


async def test_catch_up_after_downtime_sends_once_and_only_the_latest(sessionmaker) -> None:
    scene = await make_scene(sessionmaker)
    # The bot was down from 17/01 to 24/01 09:00: the 7- and 3-day reminders were missed.
    sent = await run(sessionmaker, scene, vn(1, 24, 9))
    assert ("hoa", "register") in sent
    async with sessionmaker() as session:
        keys = set(await session.scalars(select(ReminderLog.due_key)))
        hoa_rows = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.external_id == "hoa")
        )
    assert keys == {"deadline:2027-01-25:-1d"}
    assert hoa_rows == 1
    rows = [r for r in await outbox(sessionmaker) if r.external_id == "hoa"]
    assert "còn 1 ngày" in rows[0].payload["text"]
    # A restarted process catching up again sends nothing more.
    reports = await catch_up_job(sessionmaker, lambda: vn(1, 24, 9, 5), POLICY)
    assert sum(len(r.messages) for r in reports) == 0
    assert await run(sessionmaker, scene, vn(1, 24, 18)) == set()


async def test_catch_up_started_at_night_waits_for_the_morning(sessionmaker) -> None:
    scene = await make_scene(sessionmaker)
    assert await catch_up_job(sessionmaker, lambda: vn(1, 23, 23), POLICY) != []
    assert await outbox(sessionmaker) == []
    assert await run(sessionmaker, scene, vn(1, 24, 8)) != set()


async def test_muted_people_are_skipped_and_can_unmute_in_the_chat(sessionmaker) -> None:
    scene = await make_scene(sessionmaker)
    engine = build_engine(sessionmaker, EngineConfig(now=lambda: vn(1, 18, 9)))
    chat = Chat(engine, "hoa")
    await chat.say("/menu")
    assert "🔕 Tắt nhắc nhở" in chat.buttons()
    await chat.say("/tatnhac")
    assert "Đã tắt nhắc nhở" in chat.text()
    assert ("hoa", "register") not in await run(sessionmaker, scene, vn(1, 18, 9))
    await chat.say("/menu")
    await chat.tap("Bật nhắc nhở")
    assert "Đã bật lại nhắc nhở" in chat.text()
    assert "🔕 Tắt nhắc nhở" in chat.buttons()
    # The 7-day point was not logged for Hoa while muted: she gets it now, once.
    assert await run(sessionmaker, scene, vn(1, 18, 10)) == {("hoa", "register")}
    # The button under a reminder mutes too.
    await engine.handle(Incoming(Address("test", "hoa"), choice_id="!remind:off"))
    async with sessionmaker() as session:
        hoa = await session.get(Person, scene.people["hoa"])
        assert hoa is not None and hoa.reminders_muted


async def test_reminder_buttons_open_and_resume_the_registration(sessionmaker) -> None:
    scene = await make_scene(sessionmaker)
    engine = build_engine(sessionmaker, EngineConfig(now=lambda: vn(1, 18, 9)))
    # "📝 Đăng ký ngay" opens the title flow.
    result = await engine.handle(Incoming(Address("test", "hoa"), choice_id="!start:title"))
    assert "Lao động tiên tiến" in " ".join(c.label for r in result.replies for c in r.choices)
    await engine.handle(Incoming(Address("test", "hoa"), text="1"))
    async with sessionmaker() as session:
        conv = await session.scalar(
            select(Conversation)
            .join(ChannelIdentity, ChannelIdentity.id == Conversation.identity_id)
            .where(ChannelIdentity.external_id == "hoa")
        )
        assert conv is not None and conv.flow == "title"
        asked = conv.data["prompt"]["text"]
    # Hoa leaves it there: the next reminder is the "unfinished" one ...
    sent = await run(sessionmaker, scene, vn(1, 18, 10))
    assert ("hoa", "draft") in sent
    # ... and its button asks the same question again, with the answers kept.
    result = await engine.handle(Incoming(Address("test", "hoa"), choice_id="!resume:"))
    texts = [r.text for r in result.replies]
    assert texts[-1] == asked
    # Tapping "Đăng ký ngay" while in the flow continues rather than starting over.
    result = await engine.handle(Incoming(Address("test", "hoa"), choice_id="!start:title"))
    assert result.replies[-1].text == asked
    # An unknown flow name in a forged button is refused politely.
    result = await engine.handle(Incoming(Address("test", "hoa"), choice_id="!start:admin"))
    assert "không còn hiệu lực" in result.replies[0].text


async def test_dry_run_writes_nothing(sessionmaker) -> None:
    scene = await make_scene(sessionmaker)
    report = await reminder_pass(
        sessionmaker, scene.org.campaign.id, vn(1, 18, 8), POLICY, dry_run=True
    )
    assert {m.name for m in report.messages} == {
        "Nguyễn Thị Hoa",
        "Lê Thị Chi",
        "Vũ Thị Lan",
        "Đỗ Văn Giang",
    }
    assert await outbox(sessionmaker) == []
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(ReminderLog)) == 0


async def test_small_batches_cover_everyone_once(sessionmaker) -> None:
    scene = await make_scene(sessionmaker)
    report = await reminder_pass(sessionmaker, scene.org.campaign.id, vn(1, 18, 8), POLICY, batch=1)
    assert len(report.messages) == 4
    assert len({r.external_id for r in await outbox(sessionmaker)}) == 4


async def test_each_member_is_reminded_once_on_the_chat_used_last(sessionmaker) -> None:
    """People with several chats: the one whose conversation moved last, else the newest
    identity (as handlers.notify and storage.reminders.latest_addresses pick it), one
    message each however the batches fall; muted or registered people are still left out."""
    scene = await make_scene(sessionmaker)
    old, new = datetime(2027, 1, 10, 1, 0, tzinfo=UTC), datetime(2027, 1, 12, 1, 0, tzinfo=UTC)
    async with sessionmaker() as session, session.begin():

        async def chat(name: str, external_id: str, used_at: datetime | None = None) -> None:
            identity = ChannelIdentity(
                channel="zalo", external_id=external_id, person_id=scene.people[name]
            )
            session.add(identity)
            await session.flush()
            if used_at is not None:
                session.add(Conversation(identity_id=identity.id, flow="menu", updated_at=used_at))

        # Hoa: her first chat never talked, the second has a conversation.
        await chat("hoa", "hoa-zalo", old)
        # Giang: two more chats with conversations, the older identity used last.
        await chat("giang", "giang-used-last", new)
        await chat("giang", "giang-used-before", old)
        # Chi: her draft conversation is the newest; a chat added since, never used.
        await session.execute(
            update(Conversation)
            .where(Conversation.flow == "title")
            .values(updated_at=datetime(2027, 1, 15, tzinfo=UTC))
        )
        await chat("chi", "chi-new-unused")
        # Muted, or already registered: never reminded, whatever their chats.
        await chat("dung", "dung-zalo", new)
        await chat("binh", "binh-zalo", new)
        # Em had no chat: now two, neither ever used (the newest identity wins).
        await chat("em", "em-first")
        await chat("em", "em-second")

    async with sessionmaker() as session:
        members = scene.people.values()
        expected = await latest_addresses(session, list(members))
    for size in (1, 2, 500):
        async with sessionmaker() as session:
            found = [
                r
                for batch in [
                    b
                    async for b in members_due(
                        session, scene.org.campaign.id, scene.org.province.path, f"k{size}",
                        batch=size,
                    )
                ]
                for r in await addressed(session, batch)
            ]  # fmt: skip
        assert sorted(r.person_id for r in found) == sorted(
            scene.people[n] for n in ("hoa", "chi", "giang", "em")
        )
        for r in found:
            assert (r.channel, r.external_id) == expected[r.person_id]
    assert expected[scene.people["hoa"]] == ("zalo", "hoa-zalo")
    assert expected[scene.people["giang"]] == ("zalo", "giang-used-last")
    assert expected[scene.people["chi"]] == ("test", f"u{scene.people['chi']}")
    assert expected[scene.people["em"]] == ("zalo", "em-second")

    report = await reminder_pass(sessionmaker, scene.org.campaign.id, vn(1, 18, 8), POLICY, batch=1)
    names = {v: k for k, v in scene.people.items()}
    assert sorted((names[m.person_id], m.external_id) for m in report.messages) == [
        ("chi", f"u{scene.people['chi']}"),
        ("em", "em-second"),
        ("giang", "giang-used-last"),
        ("hoa", "hoa-zalo"),
        ("lan", f"u{scene.people['lan']}"),
    ]
    assert len(await outbox(sessionmaker)) == 5


async def test_large_statements_are_planned_for_their_parameters_only_while_they_start(
    sessionmaker,
) -> None:
    """PostgreSQL: custom plans inside storage.reminders.custom_plans (a prepared statement
    run a sixth time could get a generic plan), the setting as it was afterwards."""
    async with sessionmaker() as session:
        if session.get_bind().dialect.name != "postgresql":
            pytest.skip("plan_cache_mode is PostgreSQL's")
        before = await session.scalar(text("SHOW plan_cache_mode"))
        async with custom_plans(session):
            assert await session.scalar(text("SHOW plan_cache_mode")) == "force_custom_plan"
        assert await session.scalar(text("SHOW plan_cache_mode")) == before


async def test_nobody_who_turned_reminders_off_during_a_pass_is_sent_one(sessionmaker) -> None:
    """The pass reads the due members in one long statement; whoever mutes reminders or has
    their data erased before their batch is written is not logged, so gets no message."""
    scene = await make_scene(sessionmaker)
    async with sessionmaker() as reader:
        batches = [
            batch
            async for batch in members_due(
                reader, scene.org.campaign.id, scene.org.province.path, "k", batch=500
            )
        ]
    due = {c.person_id for batch in batches for c in batch}
    assert {scene.people["hoa"], scene.people["giang"]} <= due
    async with sessionmaker() as session, session.begin():
        hoa = await session.get(Person, scene.people["hoa"])
        assert hoa is not None
        await erase_person(session, hoa, datetime(2027, 1, 18, 2, 0, tzinfo=UTC))
        await session.execute(
            update(Person).where(Person.id == scene.people["giang"]).values(reminders_muted=True)
        )
    async with sessionmaker() as session, session.begin():
        won = await claim(
            session, scene.org.campaign.id, "member", [(pid, "k", None) for pid in sorted(due)]
        )
    assert {pid for pid, _key in won} == due - {scene.people["hoa"], scene.people["giang"]}
    async with sessionmaker() as session:
        logged = set(await session.scalars(select(ReminderLog.person_id)))
    assert logged == due - {scene.people["hoa"], scene.people["giang"]}


async def test_a_zalo_member_with_a_draft_is_told_what_to_type(sessionmaker) -> None:
    scene = await make_scene(sessionmaker)
    chi_id = f"u{scene.people['chi']}"
    async with sessionmaker() as session, session.begin():
        # Chi chats on Zalo Bot: choices come as numbered text there, no buttons.
        await session.execute(
            update(ChannelIdentity)
            .where(ChannelIdentity.external_id == chi_id)
            .values(channel="zalo")
        )
    await run(sessionmaker, scene, vn(1, 18, 10))
    rows = {r.external_id: r for r in await outbox(sessionmaker)}
    chi = rows[chi_id].payload["text"]
    assert "bạn còn một đăng ký chưa hoàn tất" in chi.lower()
    assert "Bạn gõ /start để hoàn tất" in chi and "bấm" not in chi.lower()
