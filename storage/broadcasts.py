"""Broadcasts in the database: who an audience is, the delivery log, the sender's lease.

Everything here is set-based so an announcement to a whole province (a million members)
costs a few hundred statements: recipients are written into the delivery log with
``INSERT ... SELECT`` in batches of people ordered by id, counts are ``GROUP BY`` queries
over the log's index. No commits: the caller owns the transaction (the sender commits after
every state change of a row, which is what makes a crash lose nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    cast,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

# "Not registered yet" is storage.counts' definition, as every view counts it.
from storage.counts import COUNTED
from storage.models import (
    Broadcast,
    BroadcastDelivery,
    BroadcastStatus,
    Campaign,
    ChannelIdentity,
    Conversation,
    DeliveryState,
    Initiative,
    InitiativeAuthor,
    Person,
    Registration,
    Unit,
    UnitRole,
)

ROLE_ALL = "all"
ROLE_LEADER = "leader"
ROLE_OFFICER = "officer"
ROLES = (ROLE_ALL, ROLE_LEADER, ROLE_OFFICER)

# People per materialisation batch: one INSERT ... SELECT and one commit each.
MATERIALISE_BATCH = 5000
FINAL_STATES = (
    DeliveryState.SENT,
    DeliveryState.BLOCKED,
    DeliveryState.UNREACHABLE,
    DeliveryState.FAILED,
)


# --- the audience --------------------------------------------------------------------------


@dataclass(frozen=True)
class Audience:
    """Who gets a broadcast: people of some subtrees, with a role, perhaps not registered yet.

    ``unit_paths`` are the materialised paths of the chosen units; each means "this unit and
    everything below it". ``role`` "all" is everyone whose unit is there; "leader" and
    "officer" are people holding that role on a unit there.
    """

    unit_paths: tuple[str, ...]
    role: str = ROLE_ALL
    unregistered_in: int | None = None  # a campaign id

    def __post_init__(self) -> None:
        if not self.unit_paths:
            raise ValueError("an audience needs at least one unit")
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}")


def _in_paths(column: Any, paths: Sequence[str]) -> ColumnElement[bool]:
    return or_(*(column.startswith(path, autoescape=True) for path in paths))


def registered_in(campaign_id: int) -> ColumnElement[bool]:
    """A condition on ``Person``: registered a title, or (co-)authored an initiative."""
    title = select(literal(1)).where(
        Registration.person_id == Person.id,
        Registration.campaign_id == campaign_id,
        Registration.status.in_(COUNTED),
    )
    authored = select(literal(1)).where(
        Initiative.person_id == Person.id,
        Initiative.campaign_id == campaign_id,
        Initiative.status.in_(COUNTED),
    )
    coauthored = (
        select(literal(1))
        .select_from(InitiativeAuthor)
        .join(Initiative, Initiative.id == InitiativeAuthor.initiative_id)
        .where(
            InitiativeAuthor.person_id == Person.id,
            Initiative.campaign_id == campaign_id,
            Initiative.status.in_(COUNTED),
        )
    )
    return or_(exists(title), exists(authored), exists(coauthored))


def audience_condition(audience: Audience) -> ColumnElement[bool]:
    """A condition on ``Person`` selecting the audience."""
    if audience.role == ROLE_ALL:
        units = select(Unit.id).where(_in_paths(Unit.path, audience.unit_paths))
        condition: ColumnElement[bool] = Person.unit_id.in_(units)
    else:
        role_unit = aliased(Unit)
        condition = exists(
            select(literal(1))
            .select_from(UnitRole)
            .join(role_unit, role_unit.id == UnitRole.unit_id)
            .where(
                UnitRole.person_id == Person.id,
                UnitRole.role == audience.role,
                _in_paths(role_unit.path, audience.unit_paths),
            )
        )
    if audience.unregistered_in is not None:
        condition = and_(condition, ~registered_in(audience.unregistered_in))
    return condition


def latest_address_query(person_ids: Select[Any]) -> Select[Any]:
    """(person_id, channel, external_id) of each person's chat used last, for people in
    ``person_ids`` (a select of ids). The same choice as handlers.notify makes."""
    last_used = (
        select(Conversation.updated_at)
        .where(Conversation.identity_id == ChannelIdentity.id)
        .scalar_subquery()
    )
    ranked = (
        select(
            ChannelIdentity.person_id.label("person_id"),
            ChannelIdentity.channel.label("channel"),
            ChannelIdentity.external_id.label("external_id"),
            func.row_number()
            .over(
                partition_by=ChannelIdentity.person_id,
                order_by=(last_used.desc().nulls_last(), ChannelIdentity.id.desc()),
            )
            .label("rank"),
        )
        .where(ChannelIdentity.person_id.in_(person_ids))
        .subquery()
    )
    return select(ranked.c.person_id, ranked.c.channel, ranked.c.external_id).where(
        ranked.c.rank == 1
    )


@dataclass
class AudienceCount:
    people: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)

    @property
    def reachable(self) -> int:
        return sum(self.by_channel.values())

    @property
    def no_chat(self) -> int:
        return self.people - self.reachable


async def count_audience(session: AsyncSession, audience: Audience) -> AudienceCount:
    """How many people the audience has, on which channel each would get it, and how many
    have never talked to the bot (no chat to send to)."""
    condition = audience_condition(audience)
    people = await session.scalar(select(func.count()).select_from(Person).where(condition))
    addresses = latest_address_query(select(Person.id).where(condition)).subquery()
    rows = await session.execute(
        select(addresses.c.channel, func.count()).group_by(addresses.c.channel)
    )
    return AudienceCount(int(people or 0), {str(ch): int(n) for ch, n in rows})


def audience_of(broadcast: Broadcast, unit: Unit, chosen: Sequence[Unit]) -> Audience:
    """The Audience a broadcast row describes (``chosen`` are its ``unit_ids`` loaded)."""
    spec = broadcast.audience or {}
    paths = tuple(u.path for u in chosen) or (unit.path,)
    unregistered = bool(spec.get("unregistered")) and broadcast.campaign_id is not None
    return Audience(
        unit_paths=paths,
        role=str(spec.get("role") or ROLE_ALL),
        unregistered_in=broadcast.campaign_id if unregistered else None,
    )


async def broadcast_audience(session: AsyncSession, broadcast: Broadcast) -> Audience:
    unit = await session.get(Unit, broadcast.unit_id)
    if unit is None:
        raise LookupError(f"unit {broadcast.unit_id} of broadcast {broadcast.id} is gone")
    ids = [int(i) for i in (broadcast.audience or {}).get("unit_ids") or []]
    chosen = list(await session.scalars(select(Unit).where(Unit.id.in_(ids)))) if ids else []
    # A chosen unit must still be in the issuer's subtree (the tree may have changed).
    chosen = [u for u in chosen if u.path.startswith(unit.path)]
    if ids and not chosen:
        # Every chosen unit left the subtree: nobody, rather than the whole subtree.
        return Audience(unit_paths=("/nowhere/",), role=ROLE_ALL)
    return audience_of(broadcast, unit, chosen)


# --- writing the delivery log ----------------------------------------------------------------


@dataclass(frozen=True)
class MaterialiseStep:
    added: int
    no_chat: int
    done: bool


def _insert(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(BroadcastDelivery)


async def materialise_batch(
    session: AsyncSession,
    broadcast: Broadcast,
    audience: Audience,
    now: datetime,
    batch: int = MATERIALISE_BATCH,
) -> MaterialiseStep:
    """Write the next batch of recipients into the delivery log and move the cursor.

    People are taken in id order after ``materialised_upto``; the cursor moves in the same
    transaction as the rows, so a crash repeats at most an uncommitted batch. Whoever
    matches the audience when the batch is written is in (a snapshot taken batch by batch).
    """
    condition = audience_condition(audience)
    window = (
        select(Person.id)
        .where(condition, Person.id > broadcast.materialised_upto)
        .order_by(Person.id)
        .limit(batch)
        .subquery()
    )
    row = (await session.execute(select(func.count(), func.max(window.c.id)))).one()
    people, last_id = int(row[0] or 0), row[1]
    if not people:
        broadcast.materialised = True
        return MaterialiseStep(0, 0, True)
    in_batch = select(Person.id).where(
        condition, Person.id > broadcast.materialised_upto, Person.id <= last_id
    )
    addresses = latest_address_query(in_batch).subquery()
    source = select(
        literal(broadcast.id),
        addresses.c.person_id,
        addresses.c.channel,
        addresses.c.external_id,
        literal(str(DeliveryState.PENDING)),
        literal(0),
        literal(0),
        false(),
        literal(now, BroadcastDelivery.not_before.type),
    ).where(true())  # SQLite reads "SELECT ... ON CONFLICT" as a join without a WHERE
    insert = (
        _insert(session)
        .from_select(
            [
                "broadcast_id",
                "person_id",
                "channel",
                "external_id",
                "state",
                "parts_done",
                "attempts",
                "maybe_twice",
                "not_before",
            ],
            source,
        )
        .on_conflict_do_nothing()
    )
    result = await session.execute(insert)
    added = max(int(result.rowcount or 0), 0)  # type: ignore[attr-defined]
    broadcast.materialised_upto = int(last_id)
    broadcast.total += added
    broadcast.no_chat += people - added
    done = people < batch
    if done:
        broadcast.materialised = True
    return MaterialiseStep(added, people - added, done)


# --- the sender's side -------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    person_id: int
    channel: str
    external_id: str
    attempts: int
    maybe_twice: bool
    locale: str | None


async def due_rows(
    session: AsyncSession,
    broadcast_id: int,
    now: datetime,
    channels: Sequence[str] | None = None,
    *,
    after_id: int = 0,
    limit: int = 200,
) -> list[DeliveryRow]:
    """Pending recipients (on ``channels``, or any) whose time has come, in log order after
    ``after_id``."""
    rows = await session.execute(
        select(
            BroadcastDelivery.id,
            BroadcastDelivery.person_id,
            BroadcastDelivery.channel,
            BroadcastDelivery.external_id,
            BroadcastDelivery.attempts,
            BroadcastDelivery.maybe_twice,
            Person.locale,
        )
        .join(Person, Person.id == BroadcastDelivery.person_id)
        .where(
            BroadcastDelivery.broadcast_id == broadcast_id,
            BroadcastDelivery.state == DeliveryState.PENDING,
            BroadcastDelivery.not_before <= now,
            BroadcastDelivery.id > after_id,
            _on(channels),
        )
        .order_by(BroadcastDelivery.id)
        .limit(limit)
    )
    return [DeliveryRow(*r) for r in rows]


async def next_wake(
    session: AsyncSession, broadcast_id: int, channels: Sequence[str] | None = None
) -> datetime | None:
    """When the earliest pending recipient on ``channels`` may be sent (None: none left)."""
    return await session.scalar(
        select(func.min(BroadcastDelivery.not_before)).where(
            BroadcastDelivery.broadcast_id == broadcast_id,
            BroadcastDelivery.state == DeliveryState.PENDING,
            _on(channels),
        )
    )


def _on(channels: Sequence[str] | None) -> ColumnElement[bool]:
    if channels is None:
        return true()
    return BroadcastDelivery.channel.in_(list(channels))


async def unsettled_on(
    session: AsyncSession, broadcast_id: int, channels: Sequence[str] | None = None
) -> int:
    """Recipients on ``channels`` not yet settled (pending or in flight)."""
    count = await session.scalar(
        select(func.count()).where(
            BroadcastDelivery.broadcast_id == broadcast_id,
            BroadcastDelivery.state.in_((DeliveryState.PENDING, DeliveryState.IN_FLIGHT)),
            _on(channels),
        )
    )
    return int(count or 0)


async def mark_in_flight(
    session: AsyncSession, row_id: int, now: datetime
) -> tuple[int, int] | None:
    """pending → in_flight, if the row is pending and due; returns how many of its parts
    have arrived already and how many attempts this one makes (None when the row was not
    there to take)."""
    result = await session.execute(
        update(BroadcastDelivery)
        .where(
            BroadcastDelivery.id == row_id,
            BroadcastDelivery.state == DeliveryState.PENDING,
            BroadcastDelivery.not_before <= now,
        )
        .values(
            state=DeliveryState.IN_FLIGHT,
            claimed_at=now,
            attempts=BroadcastDelivery.attempts + 1,
        )
        .returning(BroadcastDelivery.parts_done, BroadcastDelivery.attempts)
        .execution_options(synchronize_session=False)
    )
    row = result.one_or_none()
    return None if row is None else (int(row[0]), int(row[1]))


async def record_outcome(
    session: AsyncSession,
    row_id: int,
    *,
    state: str,
    parts_done: int,
    now: datetime,
    error: str | None = None,
    not_before: datetime | None = None,
) -> None:
    """in_flight → the outcome (or back to pending for the next part or a retry)."""
    values: dict[str, Any] = {"state": state, "parts_done": parts_done, "error": error}
    if state == DeliveryState.PENDING:
        values["not_before"] = not_before or now
    else:
        values["finished_at"] = now
    await session.execute(
        update(BroadcastDelivery)
        .where(BroadcastDelivery.id == row_id, BroadcastDelivery.state == DeliveryState.IN_FLIGHT)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def recover_in_flight(session: AsyncSession, broadcast_id: int) -> int:
    """Rows a crashed sender left in flight: their fate is unknown, so they go back to
    pending (nobody may miss the announcement) marked "maybe twice" for the report."""
    result = await session.execute(
        update(BroadcastDelivery)
        .where(
            BroadcastDelivery.broadcast_id == broadcast_id,
            BroadcastDelivery.state == DeliveryState.IN_FLIGHT,
        )
        .values(state=DeliveryState.PENDING, maybe_twice=True)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- the lease: one sender per broadcast ---------------------------------------------------


async def take_lease(
    session: AsyncSession,
    broadcast_id: int,
    owner: str,
    now: datetime,
    lease: timedelta,
    *,
    dead_owner: str | None = None,
) -> bool:
    """Become the sender of a due broadcast (scheduled, or sending with a lapsed lease, or
    held by ``dead_owner``, a process known to be gone). Marks it sending."""
    free = or_(
        Broadcast.owner.is_(None),
        Broadcast.owner == owner,
        Broadcast.lease_until.is_(None),
        Broadcast.lease_until < now,
    )
    if dead_owner is not None:
        free = or_(free, Broadcast.owner == dead_owner)
    result = await session.execute(
        update(Broadcast)
        .where(
            Broadcast.id == broadcast_id,
            Broadcast.status.in_((BroadcastStatus.SCHEDULED, BroadcastStatus.SENDING)),
            or_(Broadcast.scheduled_at.is_(None), Broadcast.scheduled_at <= now),
            free,
        )
        .values(
            owner=owner,
            lease_until=now + lease,
            status=BroadcastStatus.SENDING,
            started_at=func.coalesce(Broadcast.started_at, now),
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def renew_lease(
    session: AsyncSession, broadcast_id: int, owner: str, now: datetime, lease: timedelta
) -> bool:
    """Keep the lease; False when it was lost (cancelled, or taken over after a stall)."""
    result = await session.execute(
        update(Broadcast)
        .where(
            Broadcast.id == broadcast_id,
            Broadcast.owner == owner,
            Broadcast.status == BroadcastStatus.SENDING,
        )
        .values(lease_until=now + lease)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def release_lease(session: AsyncSession, broadcast_id: int, owner: str) -> None:
    await session.execute(
        update(Broadcast)
        .where(Broadcast.id == broadcast_id, Broadcast.owner == owner)
        .values(owner=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )


async def due_broadcasts(session: AsyncSession, now: datetime) -> list[Broadcast]:
    """Scheduled broadcasts whose time has come, and sending ones nobody holds any more."""
    rows = await session.scalars(
        select(Broadcast)
        .where(
            or_(
                and_(
                    Broadcast.status == BroadcastStatus.SCHEDULED,
                    or_(Broadcast.scheduled_at.is_(None), Broadcast.scheduled_at <= now),
                ),
                and_(
                    Broadcast.status == BroadcastStatus.SENDING,
                    or_(Broadcast.lease_until.is_(None), Broadcast.lease_until < now),
                ),
            )
        )
        .order_by(Broadcast.scheduled_at, Broadcast.id)
    )
    return list(rows)


async def sending_broadcasts(session: AsyncSession) -> list[Broadcast]:
    rows = await session.scalars(
        select(Broadcast).where(Broadcast.status == BroadcastStatus.SENDING).order_by(Broadcast.id)
    )
    return list(rows)


# --- reports ---------------------------------------------------------------------------------


@dataclass
class DeliveryCounts:
    by_state: dict[str, int] = field(default_factory=dict)
    maybe_twice: int = 0

    def __getitem__(self, state: str) -> int:
        return self.by_state.get(state, 0)

    @property
    def total(self) -> int:
        return sum(self.by_state.values())

    @property
    def done(self) -> int:
        return sum(self[s] for s in FINAL_STATES)

    @property
    def left(self) -> int:
        return self[DeliveryState.PENDING] + self[DeliveryState.IN_FLIGHT]

    @property
    def not_delivered(self) -> int:
        return (
            self[DeliveryState.BLOCKED]
            + self[DeliveryState.UNREACHABLE]
            + self[DeliveryState.FAILED]
        )

    def as_json(self) -> dict[str, Any]:
        return {**self.by_state, "maybe_twice": self.maybe_twice}


async def delivery_counts(session: AsyncSession, broadcast_id: int) -> DeliveryCounts:
    rows = await session.execute(
        select(
            BroadcastDelivery.state,
            func.count(),
            func.sum(cast(BroadcastDelivery.maybe_twice, Integer)),
        )
        .where(BroadcastDelivery.broadcast_id == broadcast_id)
        .group_by(BroadcastDelivery.state)
    )
    counts = DeliveryCounts()
    for state, n, twice in rows:
        counts.by_state[str(state)] = int(n)
        counts.maybe_twice += int(twice or 0)
    return counts


async def failure_reasons(
    session: AsyncSession, broadcast_id: int, limit: int = 8
) -> list[tuple[str, str, int]]:
    """(state, error, how many) of the recipients not reached, the commonest first."""
    rows = await session.execute(
        select(BroadcastDelivery.state, BroadcastDelivery.error, func.count().label("n"))
        .where(
            BroadcastDelivery.broadcast_id == broadcast_id,
            BroadcastDelivery.state.in_(
                (DeliveryState.BLOCKED, DeliveryState.UNREACHABLE, DeliveryState.FAILED)
            ),
        )
        .group_by(BroadcastDelivery.state, BroadcastDelivery.error)
        .order_by(func.count().desc())
        .limit(limit)
    )
    return [(str(state), str(error or ""), int(n)) for state, error, n in rows]


@dataclass(frozen=True)
class NamedRecipient:
    person_id: int
    full_name: str
    unit: str | None
    channel: str
    external_id: str


async def maybe_twice(
    session: AsyncSession, broadcast_id: int, limit: int = 50
) -> list[NamedRecipient]:
    """Recipients that were in flight at a crash and were sent again."""
    rows = await session.execute(
        select(
            Person.id,
            Person.full_name,
            Unit.name,
            BroadcastDelivery.channel,
            BroadcastDelivery.external_id,
        )
        .join(Person, Person.id == BroadcastDelivery.person_id)
        .outerjoin(Unit, Unit.id == Person.unit_id)
        .where(BroadcastDelivery.broadcast_id == broadcast_id, BroadcastDelivery.maybe_twice)
        .order_by(BroadcastDelivery.id)
        .limit(limit)
    )
    return [NamedRecipient(int(a), str(b), c, str(d), str(e)) for a, b, c, d, e in rows]


# --- units for the audience ------------------------------------------------------------------


async def child_units(session: AsyncSession, unit: Unit) -> list[Unit]:
    rows = await session.scalars(
        select(Unit).where(Unit.parent_id == unit.id).order_by(Unit.search_name, Unit.id)
    )
    return list(rows)


async def units_in_subtree(session: AsyncSession, unit: Unit, ids: Sequence[int]) -> list[Unit]:
    """The units of ``ids`` that are in ``unit``'s subtree (ids from a draft are re-checked)."""
    if not ids:
        return []
    rows = await session.scalars(
        select(Unit)
        .where(Unit.id.in_(list(ids)), Unit.path.startswith(unit.path, autoescape=True))
        .order_by(Unit.search_name, Unit.id)
    )
    return list(rows)


# --- the announcement of a campaign file -------------------------------------------------------

# A campaign file's ``announcement:`` goes out when the campaign starts: the first phase's
# first day at this hour, local time (the organisation's zone; storage knows no settings).
CAMPAIGN_TIMEZONE = "Asia/Ho_Chi_Minh"
ANNOUNCEMENT_TIME = time(8, 0)
MAX_ANNOUNCEMENT = 3500  # as handlers.broadcasts.MAX_TEXT: one Telegram message


def campaign_key(code: str) -> str:
    return f"campaign:{code}"


def announcement_problems(settings: dict[str, Any]) -> list[str]:
    """What is wrong with a campaign file's ``announcement:`` (a text), as loader messages."""
    value = settings.get("announcement")
    if value is None:
        return []
    if not isinstance(value, str) or not value.strip():
        return ["announcement: must be the text of the announcement"]
    if len(value.strip()) > MAX_ANNOUNCEMENT:
        return [f"announcement: at most {MAX_ANNOUNCEMENT} characters ({len(value.strip())})"]
    return []


async def schedule_campaign_announcement(
    session: AsyncSession, campaign: Campaign, now: datetime
) -> Broadcast | None:
    """Create or update the broadcast of a campaign file's ``announcement:``.

    From the issuing unit to its whole subtree, with "📝 Đăng ký ngay", at the campaign
    start (08:00 on the first phase's first day; at once if that has passed, as long as
    registration is open). Loading the file again updates a broadcast still waiting; one
    that is sending or sent is left alone. Removing the text cancels a waiting one.
    """
    text = str((campaign.settings or {}).get("announcement") or "").strip()
    existing = await session.scalar(
        select(Broadcast).where(Broadcast.key == campaign_key(campaign.code))
    )
    waiting = existing is not None and existing.status in (
        BroadcastStatus.DRAFT,
        BroadcastStatus.SCHEDULED,
    )
    if not text:
        if existing is not None and waiting:
            existing.status = BroadcastStatus.CANCELLED
            existing.cancelled_at = now
        return None
    tz = ZoneInfo(CAMPAIGN_TIMEZONE)
    starts = [p.starts_on for p in campaign.phases]
    at = datetime.combine(min(starts), ANNOUNCEMENT_TIME, tzinfo=tz) if starts else now
    at = max(at, now)
    if existing is not None:
        if waiting:
            existing.text = text
            existing.unit_id = campaign.issuer_unit_id
            existing.campaign_id = campaign.id
            existing.scheduled_at = at
        return existing
    if campaign.registration_deadline < now.astimezone(tz).date():
        return None  # an old campaign loaded again: its launch is long past
    broadcast = Broadcast(
        key=campaign_key(campaign.code),
        source="campaign",
        unit_id=campaign.issuer_unit_id,
        campaign_id=campaign.id,
        text=text,
        register_button=True,
        audience={"unit_ids": [], "role": ROLE_ALL, "unregistered": False},
        status=BroadcastStatus.SCHEDULED,
        scheduled_at=at,
        created_at=now,
    )
    session.add(broadcast)
    return broadcast
