"""Queries and writes the conversations need. No commits: the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from storage import refcache
from storage.models import (
    AuditEntry,
    Campaign,
    ChannelIdentity,
    Initiative,
    InitiativeAuthor,
    Invite,
    Person,
    Registration,
    RegistrationStatus,
    Role,
    Title,
    Unit,
    UnitKind,
    UnitRole,
    Work,
)

# text.py is pure (no platform, no database), as in the importers: the same fold() as the chat.
from storage.normalize import fold

MAX_SEARCH_WORDS = 10

LIVE_STATUSES = (
    RegistrationStatus.DRAFT,
    RegistrationStatus.SUBMITTED,
    RegistrationStatus.APPROVED,
    RegistrationStatus.RETURNED,
)


def audit(
    session: AsyncSession,
    *,
    action: str,
    entity: str,
    entity_id: int | None,
    actor_id: int | None,
    via: str,
    **details: Any,
) -> None:
    session.add(
        AuditEntry(
            action=action,
            entity=entity,
            entity_id=entity_id,
            actor_id=actor_id,
            via=via,
            details=details,
        )
    )


# --- units ---------------------------------------------------------------------------------


def ancestor_ids(unit: Unit) -> list[int]:
    """Ids from the root down to the unit itself, read off its materialised path."""
    return [int(part) for part in unit.path.strip("/").split("/") if part]


async def units_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, Unit]:
    # Kept per process in a conversation's unit of work (storage.refcache).
    return await refcache.units_by_ids(session, ids)


async def search_units(session: AsyncSession, folded_query: str, limit: int = 8) -> list[Unit]:
    """Units whose accent-free name contains every word of the query; grassroots first."""
    # Each word once, and a few: a pasted page of words would exceed SQLite's expression
    # depth (an OperationalError on every try) and finds nothing more than ten words do.
    words = list(dict.fromkeys(w for w in folded_query.split() if w))[:MAX_SEARCH_WORDS]
    if not words:
        return []
    conditions = [Unit.search_name.contains(w, autoescape=True) for w in words]
    grassroots_first = case((Unit.kind == UnitKind.GRASSROOTS, 0), else_=1)
    rows = await session.scalars(
        select(Unit)
        .where(and_(*conditions))
        .options(joinedload(Unit.parent))
        .order_by(grassroots_first, func.length(Unit.name), Unit.name)
        .limit(limit)
    )
    return list(rows)


async def unit_path_names(session: AsyncSession, unit: Unit) -> list[str]:
    units = await units_by_ids(session, ancestor_ids(unit))
    return [units[i].name for i in ancestor_ids(unit) if i in units]


# --- people --------------------------------------------------------------------------------


# Built once (as the other statements of a conversation's answers): building a statement
# costs more CPU than running it.
_PERSON_BY_PHONE = (
    select(Person)
    .where(Person.phone == bindparam("phone"))
    .options(joinedload(Person.unit))
    .order_by(Person.id)
    .limit(1)
)


async def person_by_phone(session: AsyncSession, phone: str) -> Person | None:
    return await session.scalar(_PERSON_BY_PHONE, {"phone": phone})


async def identity_on_channel(
    session: AsyncSession, person_id: int, channel: str
) -> ChannelIdentity | None:
    return await session.scalar(
        select(ChannelIdentity).where(
            ChannelIdentity.person_id == person_id, ChannelIdentity.channel == channel
        )
    )


async def has_any_identity(session: AsyncSession, person_id: int) -> bool:
    found = await session.scalar(
        select(ChannelIdentity.id).where(ChannelIdentity.person_id == person_id).limit(1)
    )
    return found is not None


async def grant_role(session: AsyncSession, person_id: int, unit_id: int, role: str) -> bool:
    """Give a role; False when the person already had it."""
    exists = await session.scalar(
        select(UnitRole.id).where(
            UnitRole.person_id == person_id, UnitRole.unit_id == unit_id, UnitRole.role == role
        )
    )
    if exists:
        return False
    session.add(UnitRole(person_id=person_id, unit_id=unit_id, role=role))
    return True


async def roles_of(session: AsyncSession, person_id: int) -> list[UnitRole]:
    return list(await session.scalars(select(UnitRole).where(UnitRole.person_id == person_id)))


# --- invites -------------------------------------------------------------------------------


async def usable_invite(session: AsyncSession, code: str, now: datetime) -> Invite | None:
    if not code or len(code) > 64:
        return None
    invite = await session.scalar(
        select(Invite).where(Invite.code == code).options(selectinload(Invite.unit))
    )
    if invite is None or invite.revoked_at is not None:
        return None
    if invite.expires_at is not None and invite.expires_at <= now:
        return None
    if invite.max_uses is not None and invite.uses >= invite.max_uses:
        return None
    return invite


async def use_invite(session: AsyncSession, invite: Invite) -> bool:
    """Count one use, atomically, so two people cannot both take the last one."""
    condition = [Invite.id == invite.id]
    if invite.max_uses is not None:
        condition.append(Invite.uses < Invite.max_uses)
    result = await session.execute(
        update(Invite)
        .where(*condition)
        .values(uses=Invite.uses + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# --- campaigns and titles ------------------------------------------------------------------


async def campaigns_for_unit(session: AsyncSession, unit: Unit, today: date) -> list[Campaign]:
    """Campaigns launched by the unit or one of its ancestors that are still running."""
    rows = await refcache.campaigns_issued_by(session, ancestor_ids(unit), today.year - 1)
    return [c for c in rows if campaign_end(c) >= today]


def campaign_end(campaign: Campaign) -> date:
    # A phase may take works after it ends (works_until): the campaign runs until then.
    ends = [max(p.ends_on, p.works_until or p.ends_on) for p in campaign.phases]
    return max([*ends, campaign.registration_deadline, date(campaign.year, 12, 31)])


async def campaign_by_id(session: AsyncSession, campaign_id: int) -> Campaign | None:
    # Kept per process in a conversation's unit of work (storage.refcache).
    return await refcache.campaign_by_id(session, campaign_id)


async def titles_by_code(session: AsyncSession, codes: Sequence[str]) -> dict[str, Title]:
    """Active titles by code (the catalogue is kept per process: storage.refcache)."""
    return await refcache.titles_by_code(session, codes)


async def next_receipt_no(session: AsyncSession, campaign: Campaign) -> str:
    """The next human receipt number (TD2027-000123), unique under concurrency."""
    seq = await session.scalar(
        update(Campaign)
        .where(Campaign.id == campaign.id)
        .values(receipt_seq=Campaign.receipt_seq + 1)
        .returning(Campaign.receipt_seq)
        .execution_options(synchronize_session=False)
    )
    return f"{campaign.code}-{seq:06d}"


async def receipt_unless_registered(
    session: AsyncSession, campaign: Campaign, person_id: int, title_code: str
) -> str | None:
    """The next receipt number, taken only if the person has no live registration of the
    title in the campaign; None if they have one (registered meanwhile, elsewhere).

    The duplicate check and the counter in one statement: saving a registration is one of
    the conversation's busiest writes. The unique index on live registrations still guards
    two saves at once (the second is redone and finds the first).
    """
    seq = await session.scalar(
        _RECEIPT_UNLESS_REGISTERED,
        {"campaign_id": campaign.id, "person_id": person_id, "title_code": title_code},
    )
    return None if seq is None else f"{campaign.code}-{seq:06d}"


def _receipt_unless_registered() -> Any:
    campaign_id: Any = bindparam("campaign_id", type_=Integer)
    registered = (
        select(Registration.id)
        .where(
            Registration.campaign_id == campaign_id,
            Registration.person_id == bindparam("person_id", type_=Integer),
            Registration.title_code == bindparam("title_code", type_=String),
            Registration.status.in_(LIVE_STATUSES),
        )
        .exists()
    )
    return (
        update(Campaign)
        .where(Campaign.id == campaign_id, ~registered)
        .values(receipt_seq=Campaign.receipt_seq + 1)
        .returning(Campaign.receipt_seq)
        .execution_options(synchronize_session=False)
    )


_RECEIPT_UNLESS_REGISTERED = _receipt_unless_registered()


# --- registrations -------------------------------------------------------------------------


async def live_registration(
    session: AsyncSession, campaign_id: int, person_id: int, title_code: str
) -> Registration | None:
    return await session.scalar(
        select(Registration).where(
            Registration.campaign_id == campaign_id,
            Registration.person_id == person_id,
            Registration.title_code == title_code,
            Registration.status.in_(LIVE_STATUSES),
        )
    )


async def person_title_codes(session: AsyncSession, campaign_id: int, person_id: int) -> set[str]:
    rows = await session.scalars(
        select(Registration.title_code).where(
            Registration.campaign_id == campaign_id,
            Registration.person_id == person_id,
            Registration.status.in_(LIVE_STATUSES),
        )
    )
    return set(rows)


async def approved_years(session: AsyncSession, person_id: int, title_code: str) -> set[int]:
    """Years in which the person's registration of a title was approved (for history rules)."""
    rows = await session.scalars(
        select(Campaign.year)
        .join(Registration, Registration.campaign_id == Campaign.id)
        .where(
            Registration.person_id == person_id,
            Registration.title_code == title_code,
            Registration.status == RegistrationStatus.APPROVED,
        )
    )
    return set(rows)


async def person_registrations(
    session: AsyncSession, person_id: int, limit: int = 20
) -> list[Registration]:
    rows = await session.scalars(
        select(Registration)
        .where(Registration.person_id == person_id)
        .options(selectinload(Registration.campaign))
        .order_by(
            case((Registration.status == RegistrationStatus.WITHDRAWN, 1), else_=0),
            Registration.created_at.desc(),
            Registration.id.desc(),
        )
        .limit(limit)
    )
    return list(rows)


async def registration_of(
    session: AsyncSession, registration_id: int, person_id: int
) -> Registration | None:
    """A registration, only if it belongs to the person (ids from chats are never trusted)."""
    return await session.scalar(
        select(Registration)
        .where(Registration.id == registration_id, Registration.person_id == person_id)
        .options(selectinload(Registration.campaign))
    )


@dataclass(frozen=True)
class LiveRegistration:
    id: int
    title_code: str
    receipt_no: str
    status: str


@dataclass(frozen=True)
class Standing:
    """What the rules ask of a person in a campaign, read in one statement: their live
    registrations there, the years each title of theirs was approved (any campaign), and
    their live initiatives there (as author or co-author)."""

    registered: dict[str, LiveRegistration] = field(default_factory=dict)
    approved: dict[str, set[int]] = field(default_factory=dict)
    initiatives: int = 0
    initiative_benefit: int = 0
    # The author category last given on one of their own initiatives (Bằng LĐ sáng tạo).
    author_category: str | None = None

    def approved_years(self, title_code: str) -> set[int]:
        return set(self.approved.get(title_code, ()))


def _standing_statement() -> Any:
    campaign_id: Any = bindparam("campaign_id", type_=Integer)
    person_id: Any = bindparam("person_id", type_=Integer)
    # One row shape for the three parts: kind, a number, a code, a text, two totals.
    live = select(
        literal("live", String).label("kind"),
        Registration.id.label("number"),
        Registration.title_code.label("code"),
        Registration.receipt_no.label("text"),
        Registration.status.label("status"),
        cast(null(), BigInteger).label("count"),
        cast(null(), BigInteger).label("total"),
    ).where(
        Registration.campaign_id == campaign_id,
        Registration.person_id == person_id,
        Registration.status.in_(LIVE_STATUSES),
    )
    approved = (
        select(
            literal("approved", String),
            Campaign.year,
            Registration.title_code,
            cast(null(), String),
            cast(null(), String),
            cast(null(), BigInteger),
            cast(null(), BigInteger),
        )
        .join(Campaign, Campaign.id == Registration.campaign_id)
        .where(
            Registration.person_id == person_id,
            Registration.status == RegistrationStatus.APPROVED,
        )
    )
    theirs = (
        Initiative.campaign_id == campaign_id,
        Initiative.status.in_(LIVE_STATUSES),
        or_(
            Initiative.person_id == person_id,
            Initiative.id.in_(
                select(InitiativeAuthor.initiative_id).where(
                    InitiativeAuthor.person_id == person_id
                )
            ),
        ),
    )
    category = (
        select(Initiative.author_category)
        .where(*theirs, Initiative.person_id == person_id, Initiative.author_category.is_not(None))
        .order_by(Initiative.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    initiatives = select(
        literal("initiatives", String),
        cast(null(), Integer),
        cast(null(), String),
        category,
        cast(null(), String),
        cast(func.count(Initiative.id), BigInteger),
        cast(func.coalesce(func.sum(Initiative.benefit), 0), BigInteger),
    ).where(*theirs)
    return union_all(live, approved, initiatives)


# Built once: the title step asks it on every title chosen.
_STANDING = _standing_statement()


async def person_standing(session: AsyncSession, campaign_id: int, person_id: int) -> Standing:
    """The person's registrations, approved history and initiatives (see Standing)."""
    connection = await session.connection()
    rows = await connection.execute(_STANDING, {"campaign_id": campaign_id, "person_id": person_id})
    registered: dict[str, LiveRegistration] = {}
    approved: dict[str, set[int]] = {}
    initiatives = benefit = 0
    category: str | None = None
    for kind, number, code, text, status, count, total in rows:
        if kind == "live":
            registered[code] = LiveRegistration(number, code, text, status)
        elif kind == "approved":
            approved.setdefault(code, set()).add(number)
        else:
            initiatives, benefit, category = int(count or 0), int(total or 0), text
    return Standing(registered, approved, initiatives, benefit, category)


# --- initiatives and works -----------------------------------------------------------------


async def unit_people_matching(
    session: AsyncSession,
    unit_id: int,
    folded_query: str,
    *,
    exclude_ids: Sequence[int] = (),
    limit: int = 6,
) -> list[Person]:
    """People of one unit whose name contains every word of the query, accents ignored.

    People have no folded-name column, so the unit's names are folded here; a unit is a few
    thousand people at most. Whole-word matches ("hoa" for "Nguyễn Thị Hoa") come first.
    """
    words = folded_query.split()
    if not words:
        return []
    query = select(Person).where(Person.unit_id == unit_id).order_by(Person.full_name, Person.id)
    if exclude_ids:
        query = query.where(Person.id.not_in(list(exclude_ids)))
    rows = await session.scalars(query)
    scored: list[tuple[int, Person]] = []
    for person in rows:
        name = fold(person.full_name)
        if all(w in name for w in words):
            parts = name.split()
            scored.append((sum(w not in parts for w in words), person))
    scored.sort(key=lambda item: item[0])
    return [person for _score, person in scored[:limit]]


async def units_led_by(session: AsyncSession, person_id: int) -> list[Unit]:
    """Units in which the person has the leader role, by name (roles are kept per process in
    a conversation's unit of work: storage.refcache)."""
    return await refcache.units_with_role(session, person_id, Role.LEADER)


def _initiatives_of_person(person_id: int) -> ColumnElement[bool]:
    """Initiatives the person registered or is named in as a co-author."""
    coauthored = select(InitiativeAuthor.initiative_id).where(
        InitiativeAuthor.person_id == person_id
    )
    return or_(Initiative.person_id == person_id, Initiative.id.in_(coauthored))


async def person_initiative_benefit(
    session: AsyncSession, campaign_id: int, person_id: int
) -> tuple[int, int, str | None]:
    """The person's live initiatives in a campaign (as author or co-author): how many, their
    total expected benefit, and the author category last given (Bằng Lao động sáng tạo)."""
    live = (
        Initiative.campaign_id == campaign_id,
        Initiative.status.in_(LIVE_STATUSES),
        _initiatives_of_person(person_id),
    )
    row = (
        await session.execute(
            select(func.count(Initiative.id), func.coalesce(func.sum(Initiative.benefit), 0)).where(
                *live
            )
        )
    ).one()
    category = await session.scalar(
        select(Initiative.author_category)
        .where(*live, Initiative.person_id == person_id, Initiative.author_category.is_not(None))
        .order_by(Initiative.id.desc())
        .limit(1)
    )
    return int(row[0]), int(row[1] or 0), category


async def person_initiatives(
    session: AsyncSession, person_id: int, limit: int = 20
) -> list[Initiative]:
    """The person's initiatives (as author or co-author), live ones first, newest first."""
    rows = await session.scalars(
        select(Initiative)
        .where(_initiatives_of_person(person_id))
        .options(selectinload(Initiative.campaign), selectinload(Initiative.authors))
        .order_by(
            case((Initiative.status == RegistrationStatus.WITHDRAWN, 1), else_=0),
            Initiative.created_at.desc(),
            Initiative.id.desc(),
        )
        .limit(limit)
    )
    return list(rows)


async def initiative_of(
    session: AsyncSession, initiative_id: int, person_id: int
) -> Initiative | None:
    """An initiative, only if the person registered it (co-authors cannot withdraw it)."""
    return await session.scalar(
        select(Initiative)
        .where(Initiative.id == initiative_id, Initiative.person_id == person_id)
        .options(selectinload(Initiative.campaign))
    )


async def unit_works(session: AsyncSession, unit_ids: Sequence[int], limit: int = 20) -> list[Work]:
    """Works of the given units, live ones first, newest first."""
    if not unit_ids:
        return []
    rows = await session.scalars(
        select(Work)
        .where(Work.unit_id.in_(unit_ids))
        .options(selectinload(Work.campaign).selectinload(Campaign.phases), selectinload(Work.unit))
        .order_by(
            case((Work.status == RegistrationStatus.WITHDRAWN, 1), else_=0),
            Work.created_at.desc(),
            Work.id.desc(),
        )
        .limit(limit)
    )
    return list(rows)


async def work_of(session: AsyncSession, work_id: int, unit_ids: Sequence[int]) -> Work | None:
    """A work, only if it belongs to one of the given units (those the person leads)."""
    if not unit_ids:
        return None
    return await session.scalar(
        select(Work)
        .where(Work.id == work_id, Work.unit_id.in_(unit_ids))
        .options(selectinload(Work.campaign).selectinload(Campaign.phases))
    )
