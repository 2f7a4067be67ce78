"""The officers' digest's numbers, gathered: every count comes from :mod:`storage.counts`
(the one definition of what is counted, shared with the leader's view and the exports).

Everything is an aggregate over one subtree of units (a prefix match on ``Unit.path``):
GROUP BY statements return a row per title, per unit status or per unit, never a row per
registration, so a province's digest costs the same few statements as a small union's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.campaigns import campaign_targets, title_names
from storage.counts import (
    OccasionTotal,
    Progress,
    TitleCount,
    collectives_under,
    covering_approvals,
    initiatives_total,
    progress_under,
    subtree_of,
    title_counts,
    unit_lists,
    works_by_occasion,
    works_total,
)
from storage.models import (
    Campaign,
    Role,
    SubmissionStatus,
    Title,
    Unit,
    UnitKind,
    UnitRole,
    UnitSubmission,
)
from storage.normalize import natural_key
from storage.repo import ancestor_ids, campaign_end


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


# --- the digest -------------------------------------------------------------------------------


async def _submissions(
    session: AsyncSession, campaign_id: int, root: Unit, cap: int
) -> Submissions:
    status: ColumnElement[str] = func.coalesce(
        UnitSubmission.status, literal(SubmissionStatus.NOT_SENT.value)
    )
    # A list under an approved one reads approved, as everywhere (storage.counts.list_states).
    covering = await covering_approvals(session, campaign_id, root)
    if covering:
        covered = or_(
            *(
                and_(Unit.path.startswith(path, autoescape=True), Unit.path != path)
                for path in covering
            )
        )
        status = case((covered, literal(SubmissionStatus.APPROVED.value)), else_=status)
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
    titles = await title_counts(session, campaign.id, root.path)
    works, works_value = await works_total(session, campaign.id, root.path)
    initiatives, benefit = await initiatives_total(session, campaign.id, root.path)
    submissions = await _submissions(session, campaign.id, root, name_cap)
    parent, children = await _breakdown_level(session, root)
    progress = await progress_under(
        session, campaign.id, root.path, [root.id, *(c.id for c in children)]
    )
    # Each unit's list as every view shows it (storage.counts.unit_lists); said for the
    # units that send one (grassroots unions, or any unit that did send one).
    lists = await unit_lists(session, campaign.id, children)
    statuses = {
        c.id: lists[c.id][0] for c in children if c.kind == UnitKind.GRASSROOTS or lists[c.id][1]
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
