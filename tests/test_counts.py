"""storage.counts, the one definition of every count and of the lists' states, on SQLite and
PostgreSQL: the cases issue 11 saw disagree."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.counts import (
    list_states,
    progress_under,
    registered_ids,
    title_counts,
    unit_progress,
)
from storage.exporters import registration_rows
from storage.models import (
    Campaign,
    Initiative,
    InitiativeAuthor,
    Person,
    Unit,
    UnitKind,
    UnitSubmission,
)
from storage.registration_forms import INDIVIDUAL_SHEET, LIST_STATUS, STATUS, build_form
from tests.factories import add_unit, make_org
from tests.test_digest import Builder, person

Sessions = async_sessionmaker[AsyncSession]


async def test_an_initiative_alone_makes_a_member_registered_everywhere(
    sessionmaker: Sessions,
) -> None:
    """Registered: an active individual title, or (co-)authoring an active initiative. A
    withdrawn title, a draft or a collective title makes nobody registered."""
    org = await make_org(sessionmaker)  # Nguyễn Thị Hoa, nothing registered yet
    async with sessionmaker() as session, session.begin():
        garment = await session.get(Unit, org.garment.id)
        assert garment is not None
        b = Builder(session, org)
        author, titled, withdrew, drafted = [
            await person(session, name, garment)
            for name in ("Trần Văn Bình", "Lê Thị Dung", "Vũ Thị Yến", "Đỗ Văn Hải")
        ]
        b.initiative(author, 10_000_000)
        b.title(garment, "LDTT", titled)
        b.title(garment, "LDTT", withdrew, status="withdrawn")
        b.title(garment, "LDTT", drafted, status="draft")
        b.title(garment, "TTLDTT")  # the unit's own title: no person
        await session.flush()
        initiative = await session.scalar(select(Initiative))
        assert initiative is not None
        session.add(
            InitiativeAuthor(initiative_id=initiative.id, person_id=org.rostered.id, name="Hoa")
        )
    expected = {author.id, titled.id, org.rostered.id}
    async with sessionmaker() as session:
        garment = await session.get(Unit, org.garment.id)
        assert garment is not None
        leader = await unit_progress(session, org.campaign.id, garment)
        assert leader.registered_ids == expected
        assert {p.full_name for p in leader.missing} == {"Vũ Thị Yến", "Đỗ Văn Hải"}
        assert dict(leader.counts) == {"LDTT": 1}  # one individual title registration
        officer = await progress_under(session, org.campaign.id, org.province.path, [garment.id])
        assert (officer[garment.id].members, officer[garment.id].registered) == (5, 3)
        people = [author.id, titled.id, withdrew.id, drafted.id, org.rostered.id]
        assert await registered_ids(session, org.campaign.id, people) == expected
        counts = {
            (t.code, t.individuals, t.collectives)
            for t in await title_counts(session, org.campaign.id, garment.path)
        }
        assert counts == {("LDTT", 1, 0), ("TTLDTT", 0, 1)}


async def test_a_rows_list_is_the_nearest_one_and_an_approval_covers_below(
    sessionmaker: Sessions,
) -> None:
    org = await make_org(sessionmaker)
    async with sessionmaker() as session, session.begin():
        garment = await session.get(Unit, org.garment.id)
        upper = await session.get(Unit, org.upper.id)
        assert garment is not None and upper is not None
        team = await add_unit(session, "TO-1", "Tổ 1", UnitKind.TEAM, garment)
        other = await add_unit(session, "CDCS-X", "Công đoàn cơ sở X", UnitKind.GRASSROOTS, upper)
        session.add(
            UnitSubmission(campaign_id=org.campaign.id, unit_id=garment.id, status="returned")
        )
    async with sessionmaker() as session:
        units = [await session.get(Unit, uid) for uid in (garment.id, team.id, other.id)]
        states = await list_states(session, org.campaign.id, [u for u in units if u])
    # The team's rows go up with its grassroots union's list; nobody sent X's.
    assert states == {garment.id: "returned", team.id: "returned", other.id: "not_sent"}

    # The province approves the upper union's list: everything below it reads approved
    # (and is locked), whatever the lists below say.
    async with sessionmaker() as session, session.begin():
        session.add(
            UnitSubmission(campaign_id=org.campaign.id, unit_id=org.upper.id, status="approved")
        )
    async with sessionmaker() as session:
        units = [await session.get(Unit, uid) for uid in (garment.id, team.id, other.id)]
        states = await list_states(session, org.campaign.id, [u for u in units if u])
    assert set(states.values()) == {"approved"}


async def test_the_files_show_the_list_approved_after_the_approval(sessionmaker: Sessions) -> None:
    """Issue 11: right after the officer approved a unit's list, every row said "Chờ duyệt"."""
    org = await make_org(sessionmaker)
    async with sessionmaker() as session, session.begin():
        garment = await session.get(Unit, org.garment.id)
        assert garment is not None
        b = Builder(session, org)
        b.title(garment, "LDTT", await session.get(Person, org.rostered.id))
        submission = UnitSubmission(
            campaign_id=org.campaign.id, unit_id=garment.id, status="pending"
        )
        session.add(submission)

    async def shown() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        async with sessionmaker() as session:
            campaign = await session.get(Campaign, org.campaign.id)
            assert campaign is not None
            form = await build_form(session, campaign.code, "CD-KCN", "titles")
            flat = await registration_rows(session, campaign.code, "CD-KCN")
        sheet = next(s for s in form.sheets if s.name == INDIVIDUAL_SHEET)
        headers = [c.header for c in sheet.columns]
        own, state = headers.index(STATUS), headers.index(LIST_STATUS)
        return [(r[own], r[state]) for r in sheet.rows], [(r.status, r.list_status) for r in flat]

    assert await shown() == ([("Đã đăng ký", "Chờ duyệt")], [("Đã đăng ký", "Chờ duyệt")])
    async with sessionmaker() as session, session.begin():
        sent = await session.get(UnitSubmission, submission.id)
        assert sent is not None
        sent.status = "approved"
    assert await shown() == ([("Đã đăng ký", "Đã duyệt")], [("Đã đăng ký", "Đã duyệt")])
