"""How the bot counts: the one definition every number an officer or a leader reads comes from.

The leader's "Tình hình đơn vị" (/donvi), the officers' digest (/tonghop, the scheduled one,
``thidua digest``) and its chart, the reminders ("not registered yet") and the exports' rows
and totals all read the queries of this module, so that at any moment they agree.

**Active.** A title registration, an initiative or a work is *active* when it was sent and
not taken back: status ``submitted``, ``approved`` or ``returned`` (:data:`COUNTED`). A draft
was never sent and a withdrawn one was taken back: neither is counted nor listed.

**Registered member.** A member counts as registered in a campaign when they have at least
one active *individual* title registration, **or** are the author or a co-author of an
active initiative. Someone who registered only an initiative is registered; a collective
registration makes nobody registered (it has no person: ``person_id`` is NULL, which lets the
person-ordered index answer :func:`titled_people` without a filter on ``is_collective``).

**Where people and registrations count.** Members are counted in the unit the roster puts
them in now (``Person.unit_id``), with every unit below it: a grassroots union's roster
includes its departments and teams. Registrations, initiatives and works are counted in the
unit they were made for (their own ``unit_id``), which is also the list they are on and the
unit the exports show them under.

**Individual registrations** are the number of active individual title registrations (a
member with LĐTT and CSTĐCS is two); **collective registrations** likewise for collective
titles; **initiatives** and **works** are the active ones, with their total benefit / value.

**A unit's list** (domain.md §6): :func:`list_states`. The state of a registration is two
things side by side, never mixed: its own (:func:`registration_state`: registered, or
withdrawn; recognised once its title is achieved) and that of the unit list it is on (not
sent, waiting, returned, approved). Approving a list does not change the
registrations' own status: ``approved`` on a registration means the title was achieved
(shown "Đã công nhận"), which the CSTĐ history rules count.

Everything is an aggregate in SQL over one subtree of units (a prefix match on ``Unit.path``):
GROUP BY statements return a row per title or per unit, never a row per registration, so a
province costs the same few statements as a small union (bench/digest.py: 1M registrations).
Nothing commits: the caller owns the transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Initiative,
    InitiativeAuthor,
    Person,
    Registration,
    RegistrationStatus,
    SubmissionStatus,
    Title,
    Unit,
    UnitKind,
    UnitSubmission,
    Work,
)
from storage.normalize import natural_key

# Sent and not taken back (a list returned for completion still counts its rows). A draft row
# is an unfinished registration: it earns the reminders' "resume" nudge instead.
COUNTED = (
    RegistrationStatus.SUBMITTED,
    RegistrationStatus.APPROVED,
    RegistrationStatus.RETURNED,
)

# --- the two states shown side by side --------------------------------------------------------

# A registration's own state, as the lists show it. "achieved" is a registration whose title
# the unit recognised at the year's end (status ``approved``; the CSTĐ history rules count
# those): never the consequence of an approved list.
REGISTERED, ACHIEVED, WITHDRAWN, DRAFT = "registered", "achieved", "withdrawn", "draft"
# The words of the officers' own software (domain.md §6), for the files; the chat says them
# through its catalogue (handlers.status).
REGISTRATION_STATE_LABELS: dict[str, str] = {
    REGISTERED: "Đã đăng ký",
    ACHIEVED: "Đã công nhận",
    WITHDRAWN: "Đã rút",
    DRAFT: "Nháp",
}
LIST_STATE_LABELS: dict[str, str] = {
    SubmissionStatus.NOT_SENT: "Chưa gửi",
    SubmissionStatus.PENDING: "Chờ duyệt",
    SubmissionStatus.RETURNED: "Trả lại (bổ sung)",
    SubmissionStatus.APPROVED: "Đã duyệt",
}


def registration_state(status: str) -> str:
    """The registration's own state: registered (whatever the upper level did with its
    list; a returned one too, returning is the list's business), its title recognised,
    withdrawn, or an unsent draft."""
    if status == RegistrationStatus.WITHDRAWN:
        return WITHDRAWN
    if status == RegistrationStatus.DRAFT:
        return DRAFT
    if status == RegistrationStatus.APPROVED:
        return ACHIEVED
    return REGISTERED


# --- building blocks --------------------------------------------------------------------------


def subtree_of(path: str) -> ColumnElement[bool]:
    """``Unit`` rows of the subtree whose root has ``path`` (one indexed prefix match)."""
    return Unit.path.startswith(path, autoescape=True)


def registered_people(campaign_id: int) -> Select[tuple[int | None]]:
    """Ids of the registered people of the campaign (see the module's definition): an
    active individual title, or an active initiative as its author or a co-author."""
    titles = select(Registration.person_id).where(
        Registration.campaign_id == campaign_id,
        Registration.person_id.is_not(None),
        Registration.status.in_(COUNTED),
    )
    return select(union(titles, *_initiative_authors(campaign_id)).subquery().c[0])


def titled_people(campaign_id: int) -> Select[int | None]:
    """Ids of people with an active title registration in the campaign, each once.

    DISTINCT over the (campaign_id, person_id, status) index reads them in id order, so
    PostgreSQL merges them with people without sorting or hashing a million ids. Collective
    registrations have no person, so they need no filter here.
    """
    return (
        select(Registration.person_id)
        .where(
            Registration.campaign_id == campaign_id,
            Registration.person_id.is_not(None),
            Registration.status.in_(COUNTED),
        )
        .distinct()
    )


def initiative_people(campaign_id: int) -> Select[tuple[int | None]]:
    """Ids of the authors and co-authors of the campaign's active initiatives."""
    return select(union(*_initiative_authors(campaign_id)).subquery().c[0])


def _initiative_authors(campaign_id: int) -> tuple[Select[int | None], Select[int | None]]:
    """The authors, and the co-authors, of the campaign's active initiatives."""
    authored = select(Initiative.person_id).where(
        Initiative.campaign_id == campaign_id,
        Initiative.person_id.is_not(None),
        Initiative.status.in_(COUNTED),
    )
    coauthored = (
        select(InitiativeAuthor.person_id)
        .join(Initiative, Initiative.id == InitiativeAuthor.initiative_id)
        .where(
            Initiative.campaign_id == campaign_id,
            InitiativeAuthor.person_id.is_not(None),
            Initiative.status.in_(COUNTED),
        )
    )
    return authored, coauthored


@asynccontextmanager
async def custom_plans(session: AsyncSession) -> AsyncIterator[None]:
    """On PostgreSQL, plan the statements run inside for their parameters, every time.

    asyncpg prepares every statement, and from the sixth run on a connection PostgreSQL may
    switch to a generic plan, blind to the subtree's path: the reminder selection read
    people unit by unit and sorted a million rows (3 s instead of 0.7 s), the province's
    progress took 1.4 s instead of 0.6 s. A statement is planned when it starts (for a
    stream, when its cursor opens), so the setting is only needed that long.
    """
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    previous = await session.scalar(
        select(
            func.current_setting("plan_cache_mode"),
            func.set_config("plan_cache_mode", "force_custom_plan", True),
        )
    )
    yield
    # Not in a finally: after an error the transaction is aborted, and the setting with it.
    await session.execute(select(func.set_config("plan_cache_mode", previous, True)))


# --- members registered -----------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """Members of a unit's whole subtree, and how many of them are registered."""

    members: int = 0
    registered: int = 0

    @property
    def missing(self) -> int:
        return self.members - self.registered


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


async def registered_ids(
    session: AsyncSession, campaign_id: int, person_ids: Sequence[int]
) -> set[int]:
    """Which of these people are registered (a leader's roster): the same three sets as
    :func:`registered_people`, each narrowed to the people asked about, so a unit's look-up
    reads its own rows, not the whole campaign's."""
    found: set[int] = set()
    ids = list(person_ids)
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        titles = select(Registration.person_id).where(
            Registration.campaign_id == campaign_id,
            Registration.person_id.in_(chunk),
            Registration.status.in_(COUNTED),
        )
        authored, coauthored = _initiative_authors(campaign_id)
        query = union(
            titles,
            authored.where(Initiative.person_id.in_(chunk)),
            coauthored.where(InitiativeAuthor.person_id.in_(chunk)),
        )
        found.update(int(pid) for (pid,) in await session.execute(query) if pid is not None)
    return found


# --- registrations by title -------------------------------------------------------------------


@dataclass(frozen=True)
class TitleCount:
    code: str
    name: str
    rank: int
    collectives: int
    individuals: int


async def title_counts(session: AsyncSession, campaign_id: int, path: str) -> list[TitleCount]:
    """Active registrations per title in the subtree, collectives and individuals apart,
    from the highest award level down (catalogue rank)."""
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


async def works_total(session: AsyncSession, campaign_id: int, path: str) -> tuple[int, int]:
    """Active commemorative works of the subtree: (how many, total value)."""
    row = (
        await session.execute(
            select(func.count(Work.id), func.coalesce(func.sum(Work.value), 0))
            .join(Unit, Unit.id == Work.unit_id)
            .where(Work.campaign_id == campaign_id, Work.status.in_(COUNTED), subtree_of(path))
        )
    ).one()
    return int(row[0]), int(row[1])


async def initiatives_total(session: AsyncSession, campaign_id: int, path: str) -> tuple[int, int]:
    """Active initiatives of the subtree: (how many, total expected benefit)."""
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


# --- one unit, for its leader -----------------------------------------------------------------


@dataclass
class UnitProgress:
    """Who of the roster is registered, and the unit's registrations by title."""

    roster: list[Person]
    # title code -> active individual registrations of it made in the unit's subtree
    counts: Counter[str] = field(default_factory=Counter)
    registered_ids: set[int] = field(default_factory=set)

    @property
    def missing(self) -> list[Person]:
        return [p for p in self.roster if p.id not in self.registered_ids]


async def unit_progress(session: AsyncSession, campaign_id: int, unit: Unit) -> UnitProgress:
    """The leader's view of a unit: the same definitions as the digest's line of the unit."""
    people = list(
        await session.scalars(
            select(Person)
            .join(Unit, Person.unit_id == Unit.id)
            .where(subtree_of(unit.path))
            .order_by(Person.full_name, Person.id)
        )
    )
    progress = UnitProgress(roster=people)
    progress.registered_ids = await registered_ids(session, campaign_id, [p.id for p in people])
    for count in await title_counts(session, campaign_id, unit.path):
        if count.individuals:
            progress.counts[count.code] += count.individuals
    return progress


@dataclass
class UnitTotals:
    initiatives: int = 0
    works: int = 0
    works_value: int = 0
    initiatives_benefit: int = 0


async def unit_totals(session: AsyncSession, campaign_id: int, unit: Unit) -> UnitTotals:
    """Active initiatives and commemorative works of the unit's subtree."""
    initiatives, benefit = await initiatives_total(session, campaign_id, unit.path)
    works, value = await works_total(session, campaign_id, unit.path)
    return UnitTotals(
        initiatives=initiatives, works=works, works_value=value, initiatives_benefit=benefit
    )


# --- the lists sent upward --------------------------------------------------------------------


def _ancestors(unit: Unit) -> list[int]:
    """The unit's ancestors and itself, from the root down."""
    return [int(part) for part in unit.path.strip("/").split("/") if part]


async def list_states(
    session: AsyncSession, campaign_id: int, units: Iterable[Unit]
) -> dict[int, str]:
    """The state of the list each unit's registrations are on: see :func:`unit_lists`."""
    return {
        uid: state for uid, (state, _own) in (await unit_lists(session, campaign_id, units)).items()
    }


async def unit_lists(
    session: AsyncSession, campaign_id: int, units: Iterable[Unit]
) -> dict[int, tuple[str, bool]]:
    """For each unit: the state of the list its registrations are on (a SubmissionStatus
    value), and whether the unit has a list of its own in the campaign.

    The list a registration is on is the one its grassroots union sends (a team's rows go up
    with it), or the list of a department or team between them that sent one of its own:
    the nearest list from the unit up to its grassroots union; a unit above any grassroots
    union (an upper level's own registrations) is on its own list. No list there: not sent.
    An approved list covers everything below it, as it locks it
    (storage.units.registrations_locked): under an approved list, at any level, the state
    is approved whatever the lists below say.
    """
    wanted = {u.id: u for u in units}
    if not wanted:
        return {}
    ids = sorted({a for u in wanted.values() for a in _ancestors(u)})
    own: dict[int, str] = {}
    grassroots: set[int] = set()
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        for uid, kind, status in await session.execute(
            select(Unit.id, Unit.kind, UnitSubmission.status)
            .outerjoin(
                UnitSubmission,
                and_(UnitSubmission.unit_id == Unit.id, UnitSubmission.campaign_id == campaign_id),
            )
            .where(Unit.id.in_(chunk))
        ):
            if status is not None:
                own[int(uid)] = str(status)
            if kind == UnitKind.GRASSROOTS:
                grassroots.add(int(uid))
    states: dict[int, tuple[str, bool]] = {}
    for uid, unit in wanted.items():
        chain = _ancestors(unit)
        if any(own.get(a) == SubmissionStatus.APPROVED for a in chain):
            states[uid] = (SubmissionStatus.APPROVED, uid in own)
            continue
        # From the unit up to its grassroots union (or the unit alone, above any).
        top = next((k for k in range(len(chain) - 1, -1, -1) if chain[k] in grassroots), None)
        sends = chain[top:] if top is not None else chain[-1:]
        nearest = next((own[a] for a in reversed(sends) if a in own), None)
        states[uid] = (nearest or SubmissionStatus.NOT_SENT, uid in own)
    return states


async def list_units(session: AsyncSession, units: Iterable[Unit]) -> dict[int, Unit]:
    """The unit whose list carries each unit's registrations when nobody has sent one yet:
    the nearest grassroots union, itself or above (it is the one that sends a list); a unit
    with none above it is its own."""
    wanted = {u.id: u for u in units}
    ids = sorted({a for u in wanted.values() for a in _ancestors(u)})
    grassroots: dict[int, Unit] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        grassroots.update(
            (u.id, u)
            for u in await session.scalars(
                select(Unit).where(Unit.id.in_(chunk), Unit.kind == UnitKind.GRASSROOTS)
            )
        )
    result: dict[int, Unit] = {}
    for uid, unit in wanted.items():
        nearest = next((a for a in reversed(_ancestors(unit)) if a in grassroots), None)
        result[uid] = grassroots[nearest] if nearest is not None else unit
    return result


async def covering_approvals(session: AsyncSession, campaign_id: int, root: Unit) -> list[str]:
    """Paths of the approved lists that cover other lists of ``root``'s digest: an approved
    list of ``root`` or above it, or of a unit inside the subtree with lists below it (an
    upper-level union's compiled list the province approved). Top-most only; usually none.

    :func:`unit_lists` calls everything below an approved list approved; the digest's count
    of lists does the same with these (a few prefix conditions, not a lookup per unit).
    Grassroots unions' own lists (thousands in a province) are read only when a department
    or team below one sent a list of its own.
    """
    above = _ancestors(root)
    rows = [
        (str(path), str(kind), str(status))
        for path, kind, status in await session.execute(
            select(Unit.path, Unit.kind, UnitSubmission.status)
            .join(UnitSubmission, UnitSubmission.unit_id == Unit.id)
            .where(
                UnitSubmission.campaign_id == campaign_id,
                Unit.id.in_(above) | ((Unit.kind != UnitKind.GRASSROOTS) & subtree_of(root.path)),
            )
        )
    ]
    covering = [
        path
        for path, kind, status in rows
        if status == SubmissionStatus.APPROVED
        # above the digest's root, or the root itself; or a level with lists below it
        and (root.path.startswith(path) or kind != UnitKind.GRASSROOTS)
    ]
    # Departments and teams that sent lists of their own: is their grassroots union's
    # list approved?
    below = {
        int(part)
        for path, kind, _status in rows
        if kind in (UnitKind.DEPARTMENT, UnitKind.TEAM)
        for part in path.strip("/").split("/")
        if part
    } - set(above)
    if below:
        covering += [
            str(path)
            for path in await session.scalars(
                select(Unit.path)
                .join(UnitSubmission, UnitSubmission.unit_id == Unit.id)
                .where(
                    UnitSubmission.campaign_id == campaign_id,
                    UnitSubmission.status == SubmissionStatus.APPROVED,
                    Unit.kind == UnitKind.GRASSROOTS,
                    Unit.id.in_(sorted(below)),
                )
            )
        ]
    return [p for p in covering if not any(q != p and p.startswith(q) for q in covering)]


# --- what the digest adds for the plan: collectives to count targets against, works by occasion --


@dataclass(frozen=True)
class OccasionTotal:
    """The works greeting one occasion, with their plaques (đề nghị gắn biển → đã gắn biển)."""

    name: str
    on: date | None
    works: int
    value: int
    plaques_requested: int
    plaques_installed: int


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
