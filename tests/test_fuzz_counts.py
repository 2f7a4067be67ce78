"""Property: every view of the numbers agrees, with the others and with a direct count.

Hypothesis makes an organisation (a province, upper-level unions, grassroots unions, some
with a team below them, people on their rosters) and a history: members registering titles
themselves or through their leader, withdrawals, collective titles, initiatives with
co-authors, works, lists sent, returned and approved, and imports from a file (new people
among them) that may mark the lists as sent or approved. Then, for every unit of the tree:

- the leader's "Tình hình đơn vị" (handlers.flows.leader.gather_summary),
- the officers' digest of the unit's subtree and its per-unit lines (storage.stats.digest_data,
  which the chart, /tonghop and ``thidua digest`` draw and word),
- the XLSX/CSV form (storage.registration_forms.build_form) and the flat export
  (storage.exporters.registration_rows): their rows, totals and list-state column,

say the same numbers as a count written here in plain Python over the rows themselves: the
definition of storage.counts (a member is registered with an active individual title, or as
author or co-author of an active initiative; withdrawn and draft rows count nowhere).

Each example builds its own province and campaign in the test's database, on SQLite and on
PostgreSQL. An ordinary run tries a few examples per database; THIDUA_FUZZ=full many more.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.flows.leader import gather_summary
from storage.counts import COUNTED, LIST_STATE_LABELS
from storage.exporters import registration_rows
from storage.importers import ImportFailed
from storage.models import (
    Campaign,
    CampaignPhase,
    Initiative,
    InitiativeAuthor,
    Person,
    Registration,
    RegistrationStatus,
    SubmissionStatus,
    Unit,
    UnitKind,
    UnitSubmission,
    Work,
)
from storage.registration_forms import (
    COLLECTIVE_SHEET,
    INDIVIDUAL_SHEET,
    INITIATIVE_SHEET,
    LIST_STATUS,
    RECEIPT,
    WORK_SHEET,
    build_form,
)
from storage.registration_import import Table, import_registrations
from storage.repo import next_receipt_no
from storage.stats import digest_data
from tests.factories import add_unit
from tests.strategies import examples

pytestmark = pytest.mark.fuzz

INDIVIDUAL = ("LDTT", "CSTDCS", "BK_TINH")
COLLECTIVE = ("TTLDTT", "TTLDXS", "BK_TINH")
TODAY = date(2027, 1, 10)
ACTIVE = {str(s) for s in COUNTED}
_examples = itertools.count(1)
FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ")
MIDDLE = ("Văn", "Thị", "Minh", "Đức", "Ngọc")
GIVEN = ("Hoa", "Bình", "Châu", "Dung", "Hải", "Lan", "Nam", "Quỳnh", "Sơn", "Tâm", "Yến")


def name(k: int) -> str:
    """A different Vietnamese name for each k below 550 (the import checks names are names)."""
    return f"{FAMILY[k % 10]} {MIDDLE[k // 10 % 5]} {GIVEN[k // 50 % 11]}"


# --- the history ------------------------------------------------------------------------------

index = st.integers(0, 99)
actions = st.lists(
    st.one_of(
        st.tuples(st.just("title"), index, st.sampled_from(INDIVIDUAL), st.booleans()),
        st.tuples(st.just("withdraw"), index),
        st.tuples(st.just("collective"), index, st.sampled_from(COLLECTIVE)),
        st.tuples(
            st.just("initiative"),
            index,
            st.lists(index, max_size=2),
            st.sampled_from([None, 5_000_000, 120_000_000]),
        ),
        st.tuples(st.just("withdraw_initiative"), index),
        st.tuples(st.just("work"), index, st.sampled_from([1_000_000, 2_500_000_000])),
        # Lists move often: a history of a few steps should see them sent and decided.
        st.tuples(st.sampled_from(["submit", "return", "approve"]), index),
        st.tuples(st.sampled_from(["approve", "return"]), index),
        st.tuples(
            st.just("import"),
            st.lists(st.tuples(index, st.sampled_from(INDIVIDUAL), st.booleans()), min_size=1),
            st.sampled_from([None, "sent", "approved"]),
        ),
    ),
    min_size=3,
    max_size=30,
)
# Per upper-level union: per grassroots union, (people, a team below it with its people).
organisations = st.lists(
    st.lists(
        st.tuples(st.integers(0, 4), st.one_of(st.none(), st.integers(0, 3))),
        min_size=1,
        max_size=3,
    ),
    min_size=1,
    max_size=2,
)


@dataclass
class World:
    campaign: Campaign
    province: Unit
    units: list[Unit] = field(default_factory=list)  # every unit, the province first
    grassroots: list[Unit] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)


async def build_world(
    sessionmaker: async_sessionmaker[AsyncSession], shape: list[list[tuple[int, int | None]]]
) -> World:
    n = next(_examples)
    async with sessionmaker() as session, session.begin():
        province = await add_unit(session, f"P{n}", f"LĐLĐ tỉnh số {n}", UnitKind.PROVINCE, None)
        campaign = Campaign(
            code=f"C{n}",
            name=f"Phong trào thi đua số {n}",
            issuer_unit_id=province.id,
            year=2027,
            registration_deadline=date(2027, 1, 25),
            title_codes=sorted({*INDIVIDUAL, *COLLECTIVE}),
            settings={},
        )
        campaign.phases = [
            CampaignPhase(
                position=1, name="Đợt 1", starts_on=date(2027, 1, 1), ends_on=date(2027, 12, 31)
            )
        ]
        session.add(campaign)
        world = World(campaign, province, [province])
        for u, grassroots in enumerate(shape):
            upper = await add_unit(
                session, f"P{n}-U{u}", f"Công đoàn xã {n}-{u}", UnitKind.UPPER, province
            )
            world.units.append(upper)
            for g, (people, team_people) in enumerate(grassroots):
                unit = await add_unit(
                    session,
                    f"P{n}-U{u}-G{g}",
                    f"Công đoàn cơ sở {n}-{u}-{g}",
                    UnitKind.GRASSROOTS,
                    upper,
                )
                world.units.append(unit)
                world.grassroots.append(unit)
                rosters = [(unit, people)]
                if team_people is not None:
                    team = await add_unit(
                        session, f"P{n}-U{u}-G{g}-T", f"Tổ {n}-{u}-{g}", UnitKind.TEAM, unit
                    )
                    world.units.append(team)
                    rosters.append((team, team_people))
                for where, count in rosters:
                    for _k in range(count):
                        person = Person(
                            full_name=name(len(world.people)),
                            phone=f"09{n % 10_000:04d}{len(world.people):04d}",
                            unit_id=where.id,
                            source="roster",
                        )
                        session.add(person)
                        world.people.append(person)
        await session.flush()
    return world


def pick(items: list[Any], i: int) -> Any:
    return items[i % len(items)] if items else None


async def list_of(session: AsyncSession, campaign: Campaign, unit: Unit) -> UnitSubmission:
    found = await session.scalar(
        select(UnitSubmission).where(
            UnitSubmission.campaign_id == campaign.id, UnitSubmission.unit_id == unit.id
        )
    )
    if found is None:
        found = UnitSubmission(
            campaign_id=campaign.id, unit_id=unit.id, status=SubmissionStatus.NOT_SENT, round=0
        )
        session.add(found)
    return found


async def locked(session: AsyncSession, campaign: Campaign, unit_id: int) -> bool:
    """Approved lists freeze their rows (as the chat and the import refuse changes)."""
    unit = await session.get(Unit, unit_id)
    assert unit is not None
    ancestors = [int(p) for p in unit.path.strip("/").split("/") if p]
    return bool(
        await session.scalar(
            select(UnitSubmission.id).where(
                UnitSubmission.campaign_id == campaign.id,
                UnitSubmission.unit_id.in_(ancestors),
                UnitSubmission.status == SubmissionStatus.APPROVED,
            )
        )
    )


async def apply(session: AsyncSession, world: World, action: tuple[Any, ...]) -> None:
    """One step of the history, as the chat, the leader, the officer or the import does it."""
    campaign = world.campaign
    kind = action[0]
    if kind == "title":
        _kind, i, code, by_leader = action
        person = pick(world.people, i)
        if person is None or await locked(session, campaign, person.unit_id):
            return
        live = await session.scalar(
            select(Registration.id).where(
                Registration.campaign_id == campaign.id,
                Registration.person_id == person.id,
                Registration.title_code == code,
                Registration.status != RegistrationStatus.WITHDRAWN,
            )
        )
        if live is None:
            session.add(
                Registration(
                    receipt_no=await next_receipt_no(session, campaign),
                    campaign_id=campaign.id,
                    title_code=code,
                    is_collective=False,
                    person_id=person.id,
                    unit_id=person.unit_id,
                    status=RegistrationStatus.SUBMITTED,
                    # Registered by the leader for a member without a phone, or by herself.
                    source="leader" if by_leader else "chat",
                )
            )
    elif kind in ("withdraw", "withdraw_initiative"):
        model = Registration if kind == "withdraw" else Initiative
        rows = list(
            await session.scalars(
                select(model)
                .where(model.campaign_id == campaign.id, model.status.in_(ACTIVE))
                .order_by(model.id)
            )
        )
        row = pick(rows, action[1])
        if row is not None and not await locked(session, campaign, row.unit_id):
            row.status = RegistrationStatus.WITHDRAWN
    elif kind == "collective":
        unit = pick(world.grassroots, action[1])
        code = action[2]
        if await locked(session, campaign, unit.id):
            return
        live = await session.scalar(
            select(Registration.id).where(
                Registration.campaign_id == campaign.id,
                Registration.unit_id == unit.id,
                Registration.title_code == code,
                Registration.is_collective.is_(True),
                Registration.status != RegistrationStatus.WITHDRAWN,
            )
        )
        if live is None:
            session.add(
                Registration(
                    receipt_no=await next_receipt_no(session, campaign),
                    campaign_id=campaign.id,
                    title_code=code,
                    is_collective=True,
                    person_id=None,
                    unit_id=unit.id,
                    status=RegistrationStatus.SUBMITTED,
                )
            )
    elif kind == "initiative":
        _kind, i, others, benefit = action
        author = pick(world.people, i)
        if author is None or await locked(session, campaign, author.unit_id):
            return
        coauthors = {pick(world.people, j).id for j in others} - {author.id}
        session.add(
            Initiative(
                receipt_no=await next_receipt_no(session, campaign),
                campaign_id=campaign.id,
                person_id=author.id,
                unit_id=author.unit_id,
                name=f"Sáng kiến {i}",
                field="tech",
                benefit=benefit,
                status=RegistrationStatus.SUBMITTED,
                authors=[
                    InitiativeAuthor(position=k, person_id=pid, name=f"Đồng tác giả {k}")
                    for k, pid in enumerate(sorted(coauthors), start=1)
                ]
                # and someone from outside the roster, counted nowhere
                + [InitiativeAuthor(position=9, person_id=None, name="Chuyên gia ngoài")],
            )
        )
    elif kind == "work":
        unit = pick(world.grassroots, action[1])
        if await locked(session, campaign, unit.id):
            return
        session.add(
            Work(
                receipt_no=await next_receipt_no(session, campaign),
                campaign_id=campaign.id,
                unit_id=unit.id,
                name=f"Công trình {action[1]}",
                occasion="28/7",
                value=action[2],
                starts_on=date(2027, 3, 1),
                ends_on=date(2027, 7, 1),
                status=RegistrationStatus.SUBMITTED,
            )
        )
    elif kind in ("submit", "return", "approve"):
        # Mostly a grassroots union's list; now and then an upper level's compiled list or a
        # team's own one.
        senders = world.grassroots if action[1] % 4 else world.units[1:]
        unit = pick(senders, action[1] // 4)
        submission = await list_of(session, campaign, unit)
        # A list not waiting yet is sent first (by its leader), then decided.
        moves = {
            "submit": ((SubmissionStatus.NOT_SENT, SubmissionStatus.RETURNED), "pending"),
            "return": (
                (SubmissionStatus.NOT_SENT, SubmissionStatus.PENDING, "approved"),
                "returned",
            ),
            "approve": (
                (SubmissionStatus.NOT_SENT, SubmissionStatus.PENDING, "returned"),
                "approved",
            ),
        }
        allowed, to = moves[kind]
        if submission.status in allowed:
            submission.status = to
            event(f"list {to} ({unit.kind})")
    elif kind == "import":
        _kind, rows, lists = action
        cells: list[tuple[int, list[Any]]] = [(1, ["unit_code", "full_name", "phone", "title"])]
        for number, (i, code, new) in enumerate(rows, start=2):
            person = pick(world.people, i)
            if new or person is None:
                unit = pick(world.grassroots, i)
                # Someone the roster does not have yet (added by the import).
                cells.append((number, [unit.code, name(300 + i), "", code]))
            else:
                unit = await session.get(Unit, person.unit_id)
                assert unit is not None
                cells.append((number, [unit.code, person.full_name, person.phone, code]))
        try:
            async with session.begin_nested():
                await import_registrations(
                    session, [Table(None, cells)], "titles", campaign, today=TODAY, lists=lists
                )
            event(f"import written, lists={lists}")
        except ImportFailed as failed:
            event("import refused")
            # A row already registered, a unit locked: the whole file is refused, as it is.
            note(f"import refused: {failed.problems}")
    await session.flush()


# --- the direct count -------------------------------------------------------------------------


@dataclass
class Direct:
    members: int
    registered: int
    individuals: Counter[str]
    collectives: Counter[str]
    own_collectives: set[str]
    initiatives: tuple[int, int]
    works: tuple[int, int]


class Rows:
    """The campaign's rows, loaded plainly, and the definition counted over them in Python."""

    async def load(self, session: AsyncSession, world: World) -> None:
        cid = world.campaign.id
        self.paths = {u.id: u.path for u in await session.scalars(select(Unit))}
        self.kinds = {u.id: u.kind for u in await session.scalars(select(Unit))}
        self.people = {p.id: p.unit_id for p in await session.scalars(select(Person))}
        self.regs = list(
            await session.scalars(select(Registration).where(Registration.campaign_id == cid))
        )
        self.initiatives = list(
            await session.scalars(select(Initiative).where(Initiative.campaign_id == cid))
        )
        self.coauthors = {
            (a.initiative_id, a.person_id)
            for a in await session.scalars(select(InitiativeAuthor))
            if a.person_id is not None
        }
        self.works = list(await session.scalars(select(Work).where(Work.campaign_id == cid)))
        self.lists = {
            s.unit_id: s.status
            for s in await session.scalars(
                select(UnitSubmission).where(UnitSubmission.campaign_id == cid)
            )
        }

    def under(self, unit_id: int | None, root: Unit) -> bool:
        return unit_id is not None and self.paths[unit_id].startswith(root.path)

    def count(self, root: Unit) -> Direct:
        active_regs = [r for r in self.regs if r.status in ACTIVE]
        active_ideas = [i for i in self.initiatives if i.status in ACTIVE]
        registered = {r.person_id for r in active_regs if not r.is_collective}
        registered |= {i.person_id for i in active_ideas}
        ideas = {i.id for i in active_ideas}
        registered |= {pid for iid, pid in self.coauthors if iid in ideas}
        members = [pid for pid, uid in self.people.items() if self.under(uid, root)]
        mine = [r for r in active_regs if self.under(r.unit_id, root)]
        ideas_here = [i for i in active_ideas if self.under(i.unit_id, root)]
        works_here = [w for w in self.works if w.status in ACTIVE and self.under(w.unit_id, root)]
        return Direct(
            members=len(members),
            registered=len([pid for pid in members if pid in registered]),
            individuals=Counter(r.title_code for r in mine if not r.is_collective),
            collectives=Counter(r.title_code for r in mine if r.is_collective),
            own_collectives={
                r.title_code for r in mine if r.is_collective and r.unit_id == root.id
            },
            initiatives=(len(ideas_here), sum(i.benefit or 0 for i in ideas_here)),
            works=(len(works_here), sum(w.value for w in works_here)),
        )

    def list_state(self, unit_id: int) -> str:
        """Approved if a list at or above the unit is; else the nearest list from the unit up
        to its grassroots union (the unit alone above any); else not sent."""
        chain = [int(p) for p in self.paths[unit_id].strip("/").split("/") if p]
        if any(self.lists.get(a) == SubmissionStatus.APPROVED for a in chain):
            return SubmissionStatus.APPROVED
        ups = list(reversed(chain))
        sends = next(
            (ups[: k + 1] for k, a in enumerate(ups) if self.kinds[a] == UnitKind.GRASSROOTS),
            ups[:1],
        )
        return next((self.lists[a] for a in sends if a in self.lists), SubmissionStatus.NOT_SENT)

    def submissions(self, root: Unit) -> Counter[str]:
        """The lists the digest of ``root`` expects (its grassroots unions and any unit below
        it that sent one), by state."""
        expected = [
            uid
            for uid, path in self.paths.items()
            if path.startswith(root.path)
            and (self.kinds[uid] == UnitKind.GRASSROOTS or uid in self.lists)
            and (uid != root.id or root.kind == UnitKind.GRASSROOTS)
        ]
        return Counter(self.list_state(uid) for uid in expected)

    def receipt_states(self, root: Unit) -> dict[str, str]:
        """Receipt -> the label of the list state every file must show for the row."""
        rows: list[Registration | Initiative | Work] = [
            *(r for r in self.regs if r.status in ACTIVE),
            *(i for i in self.initiatives if i.status in ACTIVE),
            *(w for w in self.works if w.status in ACTIVE),
        ]
        return {
            row.receipt_no: LIST_STATE_LABELS[self.list_state(row.unit_id)]
            for row in rows
            if self.under(row.unit_id, root)
        }


# --- the views --------------------------------------------------------------------------------


async def check_unit(session: AsyncSession, world: World, rows: Rows, unit: Unit) -> None:
    campaign = world.campaign
    direct = rows.count(unit)

    # The leader's "Tình hình đơn vị".
    summary = await gather_summary(session, campaign, unit)
    assert (summary.facts.roster, summary.registered) == (direct.members, direct.registered)
    assert dict(summary.facts.counts) == dict(direct.individuals)
    assert summary.facts.collective == direct.own_collectives
    assert summary.initiatives == direct.initiatives[0]
    assert (summary.works, summary.works_value) == direct.works

    # The officers' digest of the unit's subtree (the chart and the text draw these).
    data = await digest_data(session, campaign, unit)
    assert (data.progress.members, data.progress.registered) == (
        direct.members,
        direct.registered,
    )
    assert {t.code: t.individuals for t in data.titles if t.individuals} == dict(direct.individuals)
    assert {t.code: t.collectives for t in data.titles if t.collectives} == dict(direct.collectives)
    assert (data.initiatives, data.initiatives_benefit) == direct.initiatives
    assert (data.works, data.works_value) == direct.works
    for line in data.children:
        child = await session.get(Unit, line.unit_id)
        assert child is not None
        expected = rows.count(child)
        assert (line.progress.members, line.progress.registered) == (
            expected.members,
            expected.registered,
        )
        if child.kind == UnitKind.GRASSROOTS or child.id in rows.lists:
            assert line.submission == rows.list_state(child.id)
    lists = rows.submissions(unit)
    sub = data.submissions
    assert (sub.expected, sub.pending, sub.approved, sub.returned, sub.missing) == (
        sum(lists.values()),
        lists[SubmissionStatus.PENDING],
        lists[SubmissionStatus.APPROVED],
        lists[SubmissionStatus.RETURNED],
        lists[SubmissionStatus.NOT_SENT],
    )

    # The form (XLSX and CSV are written from it) and the flat export.
    form = await build_form(session, campaign.code, unit.code, "all")
    sheets = {sheet.name: sheet for sheet in form.sheets}
    # One row per person (per collective) with all their titles, one receipt per line.
    assert sheets[INDIVIDUAL_SHEET].registrations == sum(direct.individuals.values())
    assert sheets[COLLECTIVE_SHEET].registrations == sum(direct.collectives.values())
    assert len(sheets[INITIATIVE_SHEET].rows) == direct.initiatives[0]
    assert len(sheets[WORK_SHEET].rows) == direct.works[0]
    for name_, total in ((INITIATIVE_SHEET, direct.initiatives), (WORK_SHEET, direct.works)):
        totals = sheets[name_].total
        assert totals is not None and totals[2] == total[1]
    expected_states = rows.receipt_states(unit)
    shown: dict[str, str] = {}
    for sheet in form.sheets:
        headers = [c.header for c in sheet.columns]
        receipt, state = headers.index(RECEIPT), headers.index(LIST_STATUS)
        shown.update(
            (number, row[state]) for row in sheet.rows for number in str(row[receipt]).split("\n")
        )
    assert shown == expected_states
    flat = await registration_rows(session, campaign.code, unit.code)
    assert len(flat) == sum(direct.individuals.values()) + sum(direct.collectives.values())
    registrations = {reg.receipt_no for reg in rows.regs}
    assert {r.receipt_no: r.list_status for r in flat} == {
        receipt: state for receipt, state in expected_states.items() if receipt in registrations
    }


@settings(
    max_examples=examples(full=1_000, quick=6),
    deadline=None,
    # Each example makes a province and a campaign of its own in the test's database.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(shape=organisations, history=actions)
async def test_every_view_agrees_with_a_direct_count(
    sessionmaker: async_sessionmaker[AsyncSession],
    shape: list[list[tuple[int, int | None]]],
    history: list[tuple[Any, ...]],
) -> None:
    world = await build_world(sessionmaker, shape)
    for action in history:
        async with sessionmaker() as session, session.begin():
            # The roster as it is now: an import may have added people.
            ids = [u.id for u in world.units]
            world.people = list(
                await session.scalars(
                    select(Person).where(Person.unit_id.in_(ids)).order_by(Person.id)
                )
            )
            await apply(session, world, action)
    async with sessionmaker() as session:
        campaign = await session.get(Campaign, world.campaign.id)
        assert campaign is not None
        world.campaign = campaign
        rows = Rows()
        await rows.load(session, world)
        for unit in world.units:
            fresh = await session.get(Unit, unit.id)
            assert fresh is not None
            await check_unit(session, world, rows, fresh)
