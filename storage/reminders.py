"""Who is due a reminder or a digest, and the delivery log that keeps each one single.

Every query here is set-based: one statement selects a batch of recipients with everything
needed to write to them (name, language, latest chat), so a campaign of a million members
costs a few hundred statements, not a million. Nothing commits: the caller owns the
transaction, and writes the log rows (:func:`claim`) together with the outbox rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    union,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from storage.counts import (
    custom_plans,
    initiative_people,
    subtree_of,
    titled_people,
)
from storage.models import (
    Campaign,
    ChannelIdentity,
    Conversation,
    Person,
    Registration,
    RegistrationStatus,
    ReminderLog,
    Role,
    Unit,
    UnitRole,
    UnitSubmission,
)
from storage.types import utcnow

# Flows in which a conversation is not a registration in progress.
NOT_DRAFT_FLOWS = ("menu", "onboarding")

KIND_MEMBER = "member"
KIND_LEADER = "leader"
KIND_DIGEST = "digest"
# Before any conversation moved: what a chat without one sorts as.
NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Recipient:
    person_id: int
    full_name: str
    locale: str | None
    channel: str
    external_id: str


@dataclass(frozen=True)
class OfficerDue(Recipient):
    unit_id: int


# --- building blocks --------------------------------------------------------------------------


def _draft_people(campaign_id: int) -> Select[tuple[int | None]]:
    """Ids of people with a registration for this campaign left half-way: a chat in a
    registration flow whose draft already names the campaign, or a registration row still
    marked as draft (both few)."""
    in_chat = (
        select(ChannelIdentity.person_id)
        .select_from(Conversation)
        .join(ChannelIdentity, ChannelIdentity.id == Conversation.identity_id)
        .where(
            ChannelIdentity.person_id.is_not(None),
            Conversation.flow.is_not(None),
            Conversation.flow.not_in(NOT_DRAFT_FLOWS),
            Conversation.data[("draft", "campaign_id")].as_integer() == campaign_id,
        )
    )
    draft_row = select(Registration.person_id).where(
        Registration.campaign_id == campaign_id,
        Registration.person_id.is_not(None),
        Registration.status == RegistrationStatus.DRAFT,
    )
    return select(union(in_chat, draft_row).subquery().c[0])


def _reachable() -> ColumnElement[bool]:
    return exists(select(literal(1)).where(ChannelIdentity.person_id == Person.id))


def _not_logged(campaign_id: int, kind: str, due_key: str) -> ColumnElement[bool]:
    return ~exists(
        select(literal(1)).where(
            ReminderLog.campaign_id == campaign_id,
            ReminderLog.person_id == Person.id,
            ReminderLog.kind == kind,
            ReminderLog.due_key == due_key,
        )
    )


async def latest_addresses(
    session: AsyncSession, person_ids: Sequence[int]
) -> dict[int, tuple[str, str]]:
    """Each person's chat used last (as handlers.notify picks it), for a batch at once."""
    if not person_ids:
        return {}
    last_used = (
        select(Conversation.updated_at)
        .where(Conversation.identity_id == ChannelIdentity.id)
        .scalar_subquery()
    )
    ranked = (
        select(
            ChannelIdentity.person_id,
            ChannelIdentity.channel,
            ChannelIdentity.external_id,
            func.row_number()
            .over(
                partition_by=ChannelIdentity.person_id,
                order_by=(last_used.desc().nulls_last(), ChannelIdentity.id.desc()),
            )
            .label("rank"),
        )
        .where(ChannelIdentity.person_id.in_(list(person_ids)))
        .subquery()
    )
    rows = await session.execute(
        select(ranked.c.person_id, ranked.c.channel, ranked.c.external_id).where(ranked.c.rank == 1)
    )
    return {int(pid): (str(ch), str(ext)) for pid, ch, ext in rows if pid is not None}


# --- members and leaders ----------------------------------------------------------------------


class Candidate(NamedTuple):
    """Someone due a reminder, with their chats if the statement that found them carried
    them (members); :func:`addressed` picks the latest one, or looks it up (leaders).

    A named tuple: a pass makes one per member, and a frozen dataclass took a tenth of the
    selection's time just to be built.
    """

    person_id: int
    full_name: str
    locale: str | None
    has_draft: bool = False
    chats: tuple[tuple[int, str, str], ...] = ()  # (identity id, channel, external id)


async def _stream_rows(
    session: AsyncSession, query: Executable, size: int
) -> AsyncIterator[Sequence[Any]]:
    # One statement streamed through a server-side cursor, cut into batches: the sets it
    # anti-joins (people who registered, chats with a draft) are built once per pass, not
    # once per batch. On the session's connection, not through the ORM: these are plain
    # rows, and the ORM's row handling cost a fifth of the selection (bench/digest.py).
    connection = await session.connection()
    async with custom_plans(session):
        result = await connection.stream(query.execution_options(yield_per=size))
    async for rows in result.partitions(size):
        yield rows


async def _stream(
    session: AsyncSession, query: Executable, size: int
) -> AsyncIterator[list[Candidate]]:
    async for rows in _stream_rows(session, query, size):
        yield [Candidate(r[0], r[1], r[2]) for r in rows]


async def _stream_with_chats(
    session: AsyncSession, query: Executable, size: int
) -> AsyncIterator[list[Candidate]]:
    """Rows ``(person, name, locale, has_draft, identity, channel, external id)``, one per
    chat and in person order, as batches of people with their chats.

    A person's rows are never split between two batches, so a batch may end up a few
    people larger than ``size``.
    """
    batch: list[Candidate] = []
    person: Sequence[Any] | None = None
    chats: tuple[tuple[int, str, str], ...] = ()
    async for rows in _stream_rows(session, query, size):
        for row in rows:
            if person is not None and row[0] == person[0]:
                chats += ((row[4], row[5], row[6]),)
                continue
            if person is not None:
                batch.append(Candidate(person[0], person[1], person[2], person[3], chats))
                if len(batch) >= size:
                    yield batch
                    batch = []
            person, chats = row, ((row[4], row[5], row[6]),)
    if person is not None:
        batch.append(Candidate(person[0], person[1], person[2], person[3], chats))
    if batch:
        yield batch


def members_due(
    session: AsyncSession, campaign_id: int, issuer_path: str, due_key: str, *, batch: int = 500
) -> AsyncIterator[list[Candidate]]:
    """Members of the campaign's units to remind for ``due_key``, in batches by person id:
    not muted, reachable in a chat, not reminded for it yet, and either with nothing
    registered or with an unfinished registration.

    Read with its own session: the caller writes each batch in another transaction while
    the stream goes on (the log's unique key settles a race with another process).
    """
    # The three sets are outer-joined (each id once), not tested per person: "NOT IN (a
    # million ids)" is re-scanned for every person once it outgrows PostgreSQL's work_mem,
    # and EXISTS under OR is a subquery per person (bench/plans/reminders-postgresql.txt).
    titled = titled_people(campaign_id).subquery("titled")
    authors = initiative_people(campaign_id).subquery("authors")
    drafts = _draft_people(campaign_id).subquery("drafts")
    has_draft = drafts.c[0].is_not(None)
    # The person's chats come along (the join also keeps only people with one), so a batch
    # needs no address lookup: a lookup per batch of 500 cost more than the whole
    # selection (bench/plans/reminders-*.txt). The rows stay in person order, which every
    # merge join above already reads them in.
    query = (
        select(
            Person.id,
            Person.full_name,
            Person.locale,
            has_draft.label("has_draft"),
            ChannelIdentity.id,
            ChannelIdentity.channel,
            ChannelIdentity.external_id,
        )
        .join(Unit, Unit.id == Person.unit_id)
        .join(ChannelIdentity, ChannelIdentity.person_id == Person.id)
        .outerjoin(titled, titled.c[0] == Person.id)
        .outerjoin(authors, authors.c[0] == Person.id)
        .outerjoin(drafts, drafts.c[0] == Person.id)
        .where(
            subtree_of(issuer_path),
            Person.reminders_muted.is_(False),
            _not_logged(campaign_id, KIND_MEMBER, due_key),
            or_(has_draft, and_(titled.c[0].is_(None), authors.c[0].is_(None))),
        )
        .order_by(Person.id)
    )
    return _stream_with_chats(session, query, batch)


def leaders_due(
    session: AsyncSession, campaign_id: int, issuer_path: str, due_key: str, *, batch: int = 500
) -> AsyncIterator[list[Candidate]]:
    """Leaders of units of the campaign not yet sent ``due_key``, in batches (see
    :func:`members_due`); :func:`led_units` gives each one's units."""
    query = (
        select(Person.id, Person.full_name, Person.locale)
        .where(
            Person.reminders_muted.is_(False),
            _reachable(),
            _not_logged(campaign_id, KIND_LEADER, due_key),
            exists(
                select(literal(1))
                .select_from(UnitRole)
                .join(Unit, Unit.id == UnitRole.unit_id)
                .where(
                    UnitRole.person_id == Person.id,
                    UnitRole.role == Role.LEADER,
                    subtree_of(issuer_path),
                )
            ),
        )
        .order_by(Person.id)
    )
    return _stream(session, query, batch)


async def led_units(
    session: AsyncSession, person_ids: Sequence[int], issuer_path: str
) -> dict[int, list[int]]:
    """The units of the campaign each of these people leads (one message covers them all)."""
    units: dict[int, list[int]] = {}
    for pid, uid in await session.execute(
        select(UnitRole.person_id, UnitRole.unit_id)
        .join(Unit, Unit.id == UnitRole.unit_id)
        .where(
            UnitRole.person_id.in_(list(person_ids)),
            UnitRole.role == Role.LEADER,
            subtree_of(issuer_path),
        )
        .order_by(UnitRole.person_id, Unit.search_name, Unit.id)
    ):
        units.setdefault(pid, []).append(uid)
    return units


def _last_used(identity_id: int, used: dict[int, datetime]) -> tuple[bool, datetime, int]:
    # handlers.notify's order: the conversation moved last, then chats without one (newest
    # identity first).
    at = used.get(identity_id)
    return (at is not None, at or NEVER, identity_id)


async def addressed(session: AsyncSession, batch: Sequence[Candidate]) -> list[Recipient]:
    """The batch with each person's latest chat; people without one are left out.

    A candidate's only chat needs no lookup; of several, the conversation moved last wins
    (as handlers.notify picks it), read for just those people.
    """
    addresses: dict[int, tuple[str, str]] = {}
    several = [c for c in batch if len(c.chats) > 1]
    for c in batch:
        if len(c.chats) == 1:
            addresses[c.person_id] = (c.chats[0][1], c.chats[0][2])
    if several:
        used: dict[int, datetime] = {
            int(iid): at
            for iid, at in await session.execute(
                select(Conversation.identity_id, Conversation.updated_at).where(
                    Conversation.identity_id.in_([chat[0] for c in several for chat in c.chats])
                )
            )
        }
        for c in several:
            _iid, channel, external_id = max(c.chats, key=lambda chat: _last_used(chat[0], used))
            addresses[c.person_id] = (channel, external_id)
    unknown = [c.person_id for c in batch if not c.chats]
    if unknown:
        addresses.update(await latest_addresses(session, unknown))
    return [
        Recipient(c.person_id, c.full_name, c.locale, *addresses[c.person_id])
        for c in batch
        if c.person_id in addresses
    ]


async def leader_unit_ids(session: AsyncSession, issuer_path: str) -> set[int]:
    """Every unit of the campaign that has a leader (for one progress count per pass)."""
    rows = await session.scalars(
        select(UnitRole.unit_id)
        .join(Unit, Unit.id == UnitRole.unit_id)
        .where(UnitRole.role == Role.LEADER, subtree_of(issuer_path))
        .distinct()
    )
    return set(rows)


async def submission_statuses(
    session: AsyncSession, campaign_id: int, unit_ids: Iterable[int]
) -> dict[int, str]:
    ids = list(unit_ids)
    if not ids:
        return {}
    rows = await session.execute(
        select(UnitSubmission.unit_id, UnitSubmission.status).where(
            UnitSubmission.campaign_id == campaign_id, UnitSubmission.unit_id.in_(ids)
        )
    )
    return {int(uid): str(status) for uid, status in rows}


# --- officers ---------------------------------------------------------------------------------


async def officers_due(
    session: AsyncSession,
    campaign: Campaign,
    issuer_path: str,
    due_key_prefix: str,
) -> list[OfficerDue]:
    """Officers of units in the campaign's tree who have not had this digest yet.

    The log key is ``{due_key_prefix}:u{unit_id}``: an officer of two units gets both.
    Officers are few (one or two per upper-level unit), so they come in one query.
    """
    key = literal(due_key_prefix + ":u") + cast(UnitRole.unit_id, String)
    logged = exists(
        select(literal(1)).where(
            ReminderLog.campaign_id == campaign.id,
            ReminderLog.person_id == Person.id,
            ReminderLog.kind == KIND_DIGEST,
            ReminderLog.due_key == key,
        )
    )
    rows = list(
        await session.execute(
            select(Person.id, Person.full_name, Person.locale, UnitRole.unit_id)
            .join(UnitRole, UnitRole.person_id == Person.id)
            .join(Unit, Unit.id == UnitRole.unit_id)
            .where(
                UnitRole.role == Role.OFFICER,
                subtree_of(issuer_path),
                Person.reminders_muted.is_(False),
                ~logged,
            )
            .order_by(Unit.path, Person.id)
        )
    )
    addresses = await latest_addresses(session, sorted({r[0] for r in rows}))
    return [
        OfficerDue(pid, name, locale, *addresses[pid], uid)
        for pid, name, locale, uid in rows
        if pid in addresses
    ]


# --- the log ----------------------------------------------------------------------------------


async def claim(
    session: AsyncSession,
    campaign_id: int,
    kind: str,
    entries: Sequence[tuple[int, str, str | None]],
) -> set[tuple[int, str]]:
    """Write log rows ``(person_id, due_key, detail)``; returns the (person, key) pairs that
    were new. A pair already logged, by an earlier pass or by another process running the
    same pass right now, is skipped by the unique key (ON CONFLICT DO NOTHING): only the
    transaction whose insert succeeds goes on to queue the message.

    People who turned reminders off (or were erased, which mutes) since the pass read them
    are left out: the pass reads everyone in one long statement, so its view can be minutes
    old by the last batch."""
    if not entries:
        return set()
    muted = set(
        await session.scalars(
            select(Person.id).where(
                Person.id.in_({person_id for person_id, _key, _detail in entries}),
                Person.reminders_muted.is_(True),
            )
        )
    )
    entries = [entry for entry in entries if entry[0] not in muted]
    if not entries:
        return set()
    now = utcnow()
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    # One statement executed for many rows (SQLAlchemy batches it with RETURNING), rather
    # than one statement compiled with thousands of VALUES.
    statement = (
        insert(ReminderLog)
        .on_conflict_do_nothing()
        .returning(ReminderLog.person_id, ReminderLog.due_key)
    )
    rows = await session.execute(
        statement,
        [
            {
                "campaign_id": campaign_id,
                "person_id": person_id,
                "kind": kind,
                "due_key": due_key,
                "detail": detail,
                "created_at": now,
            }
            for person_id, due_key, detail in entries
        ],
    )
    return {(int(pid), str(key)) for pid, key in rows}
