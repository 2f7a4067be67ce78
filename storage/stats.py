"""Numbers for the officers' digest, counted by the database.

Everything is an aggregate over one subtree of units (a prefix match on ``Unit.path``):
GROUP BY statements return a row per title, per unit status or per unit, never a row per
registration, so a province's digest costs the same few statements as a small union's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from sqlalchemy import and_, case, exists, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.campaigns import campaign_targets, title_names
from storage.models import (
    Campaign,
    Initiative,
    Person,
    Registration,
    Role,
    SubmissionStatus,
    Title,
    Unit,
    UnitKind,
    UnitRole,
    UnitSubmission,
    Work,
)
from storage.normalize import natural_key
from storage.reminders import (
    COUNTED,
    custom_plans,
    initiative_people,
    registered_people,
    subtree_of,
    titled_people,
)
from storage.repo import ancestor_ids, campaign_end


@dataclass(frozen=True)
class Progress:
    """Members of a unit's whole subtree, and how many of them registered something."""

    members: int = 0
    registered: int = 0

    @property
    def missing(self) -> int:
        return self.members - self.registered


@dataclass(frozen=True)
class TitleCount:
    code: str
    name: str
    rank: int
    collectives: int
    individuals: int


@dataclass(frozen=True)
class Submissions:
    """The lists units sent up (domain.md §6 statuses), for the units expected to send one:
    the grassroots unions of the subtree, and any other unit that has sent a list."""

    expected: int = 0
    pending: int = 0
    approved: int = 0
    returned: int = 0
    missing: int = 0
    # Names of the first few missing / returned units (alphabetical); the counts are complete.
    missing_names: list[str] = field(default_factory=list)
    returned_names: list[str] = field(default_factory=list)

    @property
    def submitted(self) -> int:
        return self.pending + self.approved


@dataclass(frozen=True)
class UnitLine:
    unit_id: int
    code: str
    name: str
    progress: Progress
    # The unit's own list, if it sent one (None: not expected to / nothing recorded).
    submission: str | None = None


@dataclass(frozen=True)
class TargetProgress:
    """How far a subtree is towards a target of the plan: ``done`` of ``base`` (its members or
    its collectives, the grassroots unions), against ``share`` percent."""

    code: str
    label: str  # the short form officers use: "LĐTT", "TTLĐXS"
    done: int
    base: int
    share: Decimal
    of: str  # "members" or "collectives"


@dataclass(frozen=True)
class OccasionTotal:
    """The works greeting one occasion, with their plaques (đề nghị gắn biển → đã gắn biển)."""

    name: str
    on: date | None
    works: int
    value: int
    plaques_requested: int
    plaques_installed: int


@dataclass(frozen=True)
class DigestData:
    campaign_id: int
    campaign_code: str
    campaign_name: str
    deadline: date
    unit_id: int
    unit_code: str
    unit_name: str
    titles: list[TitleCount]
    works: int
    works_value: int
    initiatives: int
    initiatives_benefit: int
    submissions: Submissions
    progress: Progress
    # The level the per-unit breakdown shows: the root's children, or further down when a
    # unit has a single child (a province with one industrial-zone union).
    breakdown_parent: str
    children: list[UnitLine]
    # What the launch plan adds (with_campaign_plan): progress against its targets, and the
    # works by the occasion they greet.
    targets: list[TargetProgress] = field(default_factory=list)
    occasions: list[OccasionTotal] = field(default_factory=list)

    @property
    def collectives(self) -> int:
        return sum(t.collectives for t in self.titles)

    @property
    def individuals(self) -> int:
        return sum(t.individuals for t in self.titles)


# --- progress ---------------------------------------------------------------------------------


async def progress_under(
    session: AsyncSession, campaign_id: int, within_path: str, targets: Iterable[int]
) -> dict[int, Progress]:
    """Progress of each target unit (its whole subtree), all targets inside ``within_path``.

    One GROUP BY over the members of ``within_path`` gives a row per unit that has members;
    each row is then added to those of its ancestors that are targets. Memory stays at one
    small row per unit, whatever the number of members.
    """
    wanted = set(targets)
    if not wanted:
        return {}
    rows: Iterable[tuple[str, int, int]] | None = None
    if session.get_bind().dialect.name == "sqlite":
        rows = await _sqlite_large_subtree(session, campaign_id, within_path)
    if rows is None:
        registered = registered_people(campaign_id).subquery()
        async with custom_plans(session):
            rows = [
                (str(path), int(n), int(done))
                for path, n, done in await session.execute(
                    select(Unit.path, func.count(Person.id), func.count(registered.c[0]))
                    .select_from(Person)
                    .join(Unit, Unit.id == Person.unit_id)
                    .outerjoin(registered, registered.c[0] == Person.id)
                    .where(subtree_of(within_path))
                    .group_by(Unit.id, Unit.path)
                )
            ]
    members: dict[int, int] = dict.fromkeys(wanted, 0)
    done: dict[int, int] = dict.fromkeys(wanted, 0)
    for path, count, count_registered in rows:
        for part in path.strip("/").split("/"):
            if part and int(part) in members:
                members[int(part)] += int(count)
                done[int(part)] += int(count_registered)
    return {uid: Progress(members[uid], done[uid]) for uid in wanted}


# Members in a subtree above which SQLite reads the campaign's registered people once instead
# of looking each member up in them (see _sqlite_large_subtree).
SQLITE_SET_DRIVEN_MIN = 50_000


async def _sqlite_large_subtree(
    session: AsyncSession, campaign_id: int, within_path: str
) -> list[tuple[str, int, int]] | None:
    """(path, members, registered) per unit for a large subtree on SQLite, else None.

    SQLite joins by nested loops only: the general query looks every member up in the
    registered set (an index built for the query, then three probes per member). Over a
    whole province it is much cheaper to walk the registered people once, in the order of
    the (campaign_id, person_id, status) index, and find each one's unit by its rowid:
    bench/digest.py measured 3-4 s against 1.5 s for a million members. A small subtree
    keeps the lookups, which cost in proportion to its size only.
    """
    members = [
        (str(path), int(n))
        for path, n in await session.execute(
            select(Unit.path, func.count(Person.id))
            .select_from(Unit)
            .join(Person, Person.unit_id == Unit.id)
            .where(subtree_of(within_path))
            .group_by(Unit.id, Unit.path)
        )
    ]
    if sum(n for _path, n in members) < SQLITE_SET_DRIVEN_MIN:
        return None
    titled = titled_people(campaign_id).subquery()
    by_path: dict[str, int] = {}
    for path, n in await session.execute(
        select(Unit.path, func.count())
        .select_from(titled)
        .join(Person, Person.id == titled.c[0])
        .join(Unit, Unit.id == Person.unit_id)
        .where(subtree_of(within_path))
        .group_by(Unit.id, Unit.path)
    ):
        by_path[str(path)] = int(n)
    # Authors and co-authors of initiatives (few) who registered no title.
    authors = initiative_people(campaign_id).subquery()
    titled_ids = titled_people(campaign_id).where(Registration.person_id == authors.c[0])
    for path, n in await session.execute(
        select(Unit.path, func.count())
        .select_from(authors)
        .join(Person, Person.id == authors.c[0])
        .join(Unit, Unit.id == Person.unit_id)
        .where(subtree_of(within_path), ~exists(titled_ids))
        .group_by(Unit.id, Unit.path)
    ):
        by_path[str(path)] = by_path.get(str(path), 0) + int(n)
    return [(path, n, by_path.get(path, 0)) for path, n in members]


# --- the digest -------------------------------------------------------------------------------


async def _title_counts(session: AsyncSession, campaign_id: int, path: str) -> list[TitleCount]:
    # Counted per unit first, then added up: per unit, the rows come in the order of the
    # (campaign_id, unit_id, title_code, is_collective, status) index, so neither database
    # sorts or hashes a million registrations to group them (bench/plans/digest-*.txt).
    per_unit = (
        select(Registration.title_code, Registration.is_collective, func.count().label("n"))
        .select_from(Unit)
        .join(
            Registration,
            and_(Registration.campaign_id == campaign_id, Registration.unit_id == Unit.id),
        )
        .where(Registration.status.in_(COUNTED), subtree_of(path))
        .group_by(Unit.id, Registration.title_code, Registration.is_collective)
        .subquery()
    )
    rows = await session.execute(
        select(per_unit.c.title_code, per_unit.c.is_collective, func.sum(per_unit.c.n)).group_by(
            per_unit.c.title_code, per_unit.c.is_collective
        )
    )
    counts: dict[str, list[int]] = {}
    for code, collective, count in rows:
        counts.setdefault(code, [0, 0])[0 if collective else 1] += int(count)
    titles = {
        t.code: t for t in await session.scalars(select(Title).where(Title.code.in_(list(counts))))
    }
    result = []
    for code, (collectives, individuals) in counts.items():
        title = titles.get(code)
        result.append(
            TitleCount(
                code,
                title.name if title else code,
                title.rank if title else 1000,
                collectives,
                individuals,
            )
        )
    # From the highest award level down (rank), then collectives before individual titles.
    result.sort(key=lambda t: (t.rank, -t.collectives, t.code))
    return result


async def _works(session: AsyncSession, campaign_id: int, path: str) -> tuple[int, int]:
    row = (
        await session.execute(
            select(func.count(Work.id), func.coalesce(func.sum(Work.value), 0))
            .join(Unit, Unit.id == Work.unit_id)
            .where(Work.campaign_id == campaign_id, Work.status.in_(COUNTED), subtree_of(path))
        )
    ).one()
    return int(row[0]), int(row[1])


async def _initiatives(session: AsyncSession, campaign_id: int, path: str) -> tuple[int, int]:
    row = (
        await session.execute(
            select(func.count(Initiative.id), func.coalesce(func.sum(Initiative.benefit), 0))
            .join(Unit, Unit.id == Initiative.unit_id)
            .where(
                Initiative.campaign_id == campaign_id,
                Initiative.status.in_(COUNTED),
                subtree_of(path),
            )
        )
    ).one()
    return int(row[0]), int(row[1] or 0)


async def _submissions(
    session: AsyncSession, campaign_id: int, root: Unit, cap: int
) -> Submissions:
    status = func.coalesce(UnitSubmission.status, literal(SubmissionStatus.NOT_SENT.value))
    joined = and_(UnitSubmission.unit_id == Unit.id, UnitSubmission.campaign_id == campaign_id)
    # The units below the root send lists to it; the root's own list goes further up and is
    # not part of its digest (unless the root is itself the grassroots union).
    expected = and_(
        subtree_of(root.path),
        or_(Unit.kind == UnitKind.GRASSROOTS, UnitSubmission.id.is_not(None)),
        or_(Unit.id != root.id, literal(root.kind == UnitKind.GRASSROOTS)),
    )
    counts = {
        str(st): int(n)
        for st, n in (
            await session.execute(
                select(status, func.count(Unit.id))
                .select_from(Unit)
                .outerjoin(UnitSubmission, joined)
                .where(expected)
                .group_by(status)
            )
        )
    }

    async def names(wanted: str) -> list[str]:
        rows = await session.scalars(
            select(Unit.name)
            .select_from(Unit)
            .outerjoin(UnitSubmission, joined)
            .where(expected, status == wanted)
        )
        # In natural order ("số 2" before "số 10", "Điện lực" among the D's): the names are
        # short, so all of them are read and the first few kept.
        return sorted(rows, key=natural_key)[:cap]

    summary = Submissions(
        expected=sum(counts.values()),
        pending=counts.get(SubmissionStatus.PENDING, 0),
        approved=counts.get(SubmissionStatus.APPROVED, 0),
        returned=counts.get(SubmissionStatus.RETURNED, 0),
        missing=counts.get(SubmissionStatus.NOT_SENT, 0),
        missing_names=await names(SubmissionStatus.NOT_SENT),
        returned_names=await names(SubmissionStatus.RETURNED),
    )
    return summary


async def _breakdown_level(session: AsyncSession, root: Unit) -> tuple[Unit, list[Unit]]:
    """The unit whose children the breakdown lists: the root, or the first unit below it
    with more than one child (a chart of a single bar says nothing)."""
    parent = root
    for _depth in range(20):
        children = sorted(
            await session.scalars(select(Unit).where(Unit.parent_id == parent.id)),
            key=lambda u: (natural_key(u.name), u.id),
        )
        if len(children) != 1:
            return parent, children
        parent = children[0]
    return parent, []


async def digest_data(
    session: AsyncSession, campaign: Campaign, root: Unit, *, name_cap: int = 10
) -> DigestData:
    """Everything the digest of ``root``'s subtree says, for one campaign."""
    titles = await _title_counts(session, campaign.id, root.path)
    works, works_value = await _works(session, campaign.id, root.path)
    initiatives, benefit = await _initiatives(session, campaign.id, root.path)
    submissions = await _submissions(session, campaign.id, root, name_cap)
    parent, children = await _breakdown_level(session, root)
    progress = await progress_under(
        session, campaign.id, root.path, [root.id, *(c.id for c in children)]
    )
    statuses = {
        int(uid): str(st)
        for uid, st in (
            await session.execute(
                select(UnitSubmission.unit_id, UnitSubmission.status).where(
                    UnitSubmission.campaign_id == campaign.id,
                    UnitSubmission.unit_id.in_([c.id for c in children]),
                )
            )
        )
    }
    data = DigestData(
        campaign_id=campaign.id,
        campaign_code=campaign.code,
        campaign_name=campaign.name,
        deadline=campaign.registration_deadline,
        unit_id=root.id,
        unit_code=root.code,
        unit_name=root.name,
        titles=titles,
        works=works,
        works_value=works_value,
        initiatives=initiatives,
        initiatives_benefit=benefit,
        submissions=submissions,
        progress=progress[root.id],
        breakdown_parent=parent.name,
        children=[
            UnitLine(c.id, c.code, c.name, progress[c.id], statuses.get(c.id)) for c in children
        ],
    )
    return await with_campaign_plan(session, campaign, root, data)


# --- what the launch plan adds to the digest --------------------------------------------------


async def collectives_under(session: AsyncSession, path: str) -> int:
    """The collectives a target "90 % tập thể" counts against: the grassroots unions of the
    subtree (each registers its collective titles)."""
    count = await session.scalar(
        select(func.count(Unit.id)).where(subtree_of(path), Unit.kind == UnitKind.GRASSROOTS)
    )
    return int(count or 0)


async def works_by_occasion(
    session: AsyncSession, campaign_id: int, path: str
) -> list[OccasionTotal]:
    """The counted works of a subtree by occasion, the earliest occasion first (undated last)."""
    rows = await session.execute(
        select(
            Work.occasion,
            Work.occasion_on,
            func.count(Work.id),
            func.coalesce(func.sum(Work.value), 0),
            func.sum(case((Work.plaque_requested, 1), else_=0)),
            func.sum(case((Work.plaque_installed_on.is_not(None), 1), else_=0)),
        )
        .join(Unit, Unit.id == Work.unit_id)
        .where(Work.campaign_id == campaign_id, Work.status.in_(COUNTED), subtree_of(path))
        .group_by(Work.occasion, Work.occasion_on)
    )
    totals = [
        OccasionTotal(
            str(name), on, int(n), int(value or 0), int(requested or 0), int(installed or 0)
        )
        for name, on, n, value, requested, installed in rows
    ]
    totals.sort(key=lambda o: (o.on is None, o.on or date.min, natural_key(o.name)))
    return totals


async def with_campaign_plan(
    session: AsyncSession, campaign: Campaign, root: Unit, data: DigestData
) -> DigestData:
    """The digest numbers with the plan's parts: the issuer's award names, progress against
    each target (counted from the same title counts and members), works by occasion."""
    names = await title_names(session, campaign)
    titles = [replace(t, name=names.get(t.code, t.name)) for t in data.titles]
    targets: list[TargetProgress] = []
    wanted = campaign_targets(campaign)
    if wanted:
        catalogue = {
            t.code: t
            for t in await session.scalars(
                select(Title).where(Title.code.in_([t.code for t in wanted]))
            )
        }
        counted = {t.code: t for t in data.titles}
        collectives = None
        for target in wanted:
            count = counted.get(target.code)
            if target.of == "collectives":
                if collectives is None:
                    collectives = await collectives_under(session, root.path)
                done, base = (count.collectives if count else 0), collectives
            else:
                done, base = (count.individuals if count else 0), data.progress.members
            title = catalogue.get(target.code)
            label = (title.abbreviation or title.name) if title else target.code
            targets.append(TargetProgress(target.code, label, done, base, target.share, target.of))
    occasions = await works_by_occasion(session, campaign.id, root.path) if data.works else []
    return replace(data, titles=titles, targets=targets, occasions=occasions)


# --- who gets which digest ----------------------------------------------------------------------


async def officer_units(session: AsyncSession, person_id: int) -> list[Unit]:
    rows = await session.scalars(
        select(Unit)
        .join(UnitRole, UnitRole.unit_id == Unit.id)
        .where(UnitRole.person_id == person_id, UnitRole.role == Role.OFFICER)
        .order_by(Unit.path)
    )
    return list(rows)


async def campaigns_covering(session: AsyncSession, unit: Unit, today: date) -> list[Campaign]:
    """Running campaigns with registrations in the unit's subtree: launched by the unit, by
    one of its ancestors, or by a unit below it."""
    rows = await session.scalars(
        select(Campaign)
        .join(Unit, Unit.id == Campaign.issuer_unit_id)
        .where(
            or_(Campaign.issuer_unit_id.in_(ancestor_ids(unit)), subtree_of(unit.path)),
            Campaign.year >= today.year - 1,
        )
        .options(selectinload(Campaign.phases))
        .order_by(Campaign.registration_deadline, Campaign.id)
    )
    return [c for c in rows if campaign_end(c) >= today]
