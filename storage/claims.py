"""Who is behind a chat: claims waiting for a leader, failed proofs, unlinking and merging.

A chat becomes a roster person only with proof: the platform's verified phone (Telegram's
own contact), a personal code from the leader or a /lienket code (storage.links), or a
leader's "yes" to a claim kept here. Failed proofs are rows, counted per phone and per chat
over a day, so /huy, a restart or a second process does not give a guesser more tries.

No commits here: the caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import and_, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, selectinload

from storage.models import (
    AuditEntry,
    Base,
    BroadcastDelivery,
    ChannelIdentity,
    ClaimStatus,
    Conversation,
    IdentityClaim,
    Person,
    ProofFailure,
    Registration,
    RegistrationStatus,
    ReminderLog,
    Role,
    UnitRole,
)
from storage.repo import grant_role, person_by_phone

# Five wrong codes in a day lock the phone and the chat out of codes for the rest of the day.
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(hours=24)


def phone_key(phone: str) -> str:
    return f"phone:{phone}"


def chat_key(channel: str, external_id: str) -> str:
    return f"chat:{channel}:{external_id}"[:140]


async def failure_count(session: AsyncSession, keys: list[str], now: datetime) -> int:
    """The most failures any of these keys had in the last day."""
    return await count_since(session, keys, now - FAILURE_WINDOW)


async def record_failure(session: AsyncSession, keys: list[str], now: datetime) -> int:
    """Count one failed proof against every key; returns the new highest count."""
    await record_attempts(session, keys, now)
    return await failure_count(session, keys, now)


async def count_since(session: AsyncSession, keys: list[str], since: datetime) -> int:
    """How many attempts these keys had since ``since`` (the most of any one key)."""
    rows = await session.execute(
        select(ProofFailure.key, func.count())
        .where(ProofFailure.key.in_(keys), ProofFailure.at > since)
        .group_by(ProofFailure.key)
    )
    return max((int(n) for _key, n in rows), default=0)


async def record_attempts(session: AsyncSession, keys: list[str], now: datetime) -> None:
    """Count one attempt (a sign-in, a failed proof) against every key."""
    session.add_all(ProofFailure(key=key, at=now) for key in keys)
    # Old rows are of no use to any limit: dropped as new ones come, a day after.
    await session.execute(delete(ProofFailure).where(ProofFailure.at < now - 2 * FAILURE_WINDOW))
    await session.flush()


async def clear_failures(session: AsyncSession, keys: list[str]) -> None:
    await session.execute(delete(ProofFailure).where(ProofFailure.key.in_(keys)))


# --- claims --------------------------------------------------------------------------------


# The statements of sign-up, built once: building one costs more CPU than running it.
_PENDING_CLAIM = (
    select(IdentityClaim)
    .where(
        IdentityClaim.identity_id == bindparam("identity_id"),
        IdentityClaim.status == ClaimStatus.PENDING,
    )
    .order_by(IdentityClaim.id.desc())
    .limit(1)
)
# Without a phone (None) the second condition is never true: the chat's claims alone.
_RECENT_CLAIMS = (
    select(func.count())
    .select_from(IdentityClaim)
    .where(
        or_(
            IdentityClaim.identity_id == bindparam("identity_id"),
            IdentityClaim.phone == bindparam("phone", type_=IdentityClaim.phone.type),
        ),
        IdentityClaim.created_at > bindparam("since", type_=IdentityClaim.created_at.type),
    )
)
_WITHDRAW_CLAIMS = (
    update(IdentityClaim)
    .where(
        # Not "identity_id": an UPDATE keeps its columns' names for its own parameters.
        IdentityClaim.identity_id == bindparam("claimant_id"),
        IdentityClaim.status == ClaimStatus.PENDING,
    )
    .values(
        status=ClaimStatus.WITHDRAWN,
        decided_at=bindparam("now", type_=IdentityClaim.decided_at.type),
    )
    .execution_options(synchronize_session=False)
)


async def pending_claim(session: AsyncSession, identity_id: int) -> IdentityClaim | None:
    return await session.scalar(_PENDING_CLAIM, {"identity_id": identity_id})


async def open_claim(
    session: AsyncSession,
    identity: ChannelIdentity,
    *,
    person_id: int | None,
    unit_id: int,
    full_name: str,
    phone: str | None,
    now: datetime,
    withdrawn: bool = False,
) -> IdentityClaim:
    """A new claim of this chat (an earlier pending one of the same chat is withdrawn, unless
    ``withdrawn`` says the caller did it in this unit of work: attach_identity does)."""
    if not withdrawn:
        await withdraw_claims(session, identity.id, now)
    claim = IdentityClaim(
        identity_id=identity.id,
        person_id=person_id,
        unit_id=unit_id,
        full_name=full_name,
        phone=phone,
        status=ClaimStatus.PENDING,
        created_at=now,
    )
    session.add(claim)
    await session.flush()
    return claim


async def recent_claims(
    session: AsyncSession, identity_id: int, phone: str | None, since: datetime
) -> int:
    """Claims made since ``since`` from this chat or for this phone (any outcome)."""
    found = await session.scalar(
        _RECENT_CLAIMS, {"identity_id": identity_id, "phone": phone or None, "since": since}
    )
    return int(found or 0)


async def withdraw_claims(session: AsyncSession, identity_id: int, now: datetime) -> None:
    await session.execute(_WITHDRAW_CLAIMS, {"claimant_id": identity_id, "now": now})


async def claim_by_id(session: AsyncSession, claim_id: int) -> IdentityClaim | None:
    return await session.get(IdentityClaim, claim_id)


async def decide_claim(
    session: AsyncSession,
    claim: IdentityClaim,
    status: ClaimStatus,
    by_id: int | None,
    now: datetime,
) -> bool:
    """Settle a pending claim; False when another leader (or the claimant) settled it first."""
    done = await session.execute(
        update(IdentityClaim)
        .where(IdentityClaim.id == claim.id, IdentityClaim.status == ClaimStatus.PENDING)
        .values(status=status, decided_at=now, decided_by_id=by_id)
        .execution_options(synchronize_session=False)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Settled:
    """What a decision did: the claimant's chat, its person now, and a chat signed out."""

    identity: ChannelIdentity
    person: Person | None
    signed_out: ChannelIdentity | None = None


async def confirm_claim(
    session: AsyncSession, claim: IdentityClaim, by_id: int | None, now: datetime
) -> Settled | None:
    """The claimant becomes the roster person it named (or a new member of the unit).

    None when the claim was settled meanwhile (another leader, or the claimant's code).
    """
    identity = await session.get(ChannelIdentity, claim.identity_id)
    if identity is None or not await decide_claim(
        session, claim, ClaimStatus.CONFIRMED, by_id, now
    ):
        return None
    person = await session.get(Person, claim.person_id) if claim.person_id else None
    if person is None:
        # A newcomer, made a person now; with their phone unless someone has it meanwhile.
        phone = claim.phone
        if phone and await person_by_phone(session, phone) is not None:
            phone = None
        person = Person(
            full_name=claim.full_name, phone=phone, unit_id=claim.unit_id, source="chat"
        )
        session.add(person)
        await session.flush()
    await grant_role(session, person.id, person.unit_id or claim.unit_id, Role.MEMBER)
    old = None
    if identity.person_id != person.id:
        old = await attach_identity(session, identity, person, now)
    return Settled(identity, person, old)


async def refuse_claim(
    session: AsyncSession, claim: IdentityClaim, by_id: int | None, now: datetime
) -> Settled | None:
    """The claim is dropped; a verified newcomer who named this unit stays, without it."""
    identity = await session.get(ChannelIdentity, claim.identity_id)
    if identity is None or not await decide_claim(session, claim, ClaimStatus.REFUSED, by_id, now):
        return None
    newcomer = await session.get(Person, claim.person_id) if claim.person_id else None
    if (
        newcomer is not None
        and identity.person_id == newcomer.id
        and newcomer.unit_id == claim.unit_id
        and newcomer.source == "chat"
    ):
        newcomer.unit_id = None
    return Settled(identity, None)


async def pending_claims(session: AsyncSession) -> list[IdentityClaim]:
    """Every claim still waiting, oldest first (for the operator)."""
    return list(
        await session.scalars(
            select(IdentityClaim)
            .where(IdentityClaim.status == ClaimStatus.PENDING)
            .order_by(IdentityClaim.created_at, IdentityClaim.id)
        )
    )


async def roster_without_chat(
    session: AsyncSession, unit_id: int, limit: int | None = None
) -> list[Person]:
    """People of the unit's own roster who do not use the bot yet (for personal codes)."""
    has_chat = select(ChannelIdentity.id).where(ChannelIdentity.person_id == Person.id).exists()
    query = (
        select(Person)
        .where(Person.unit_id == unit_id, ~has_chat)
        .order_by(Person.full_name, Person.id)
    )
    return list(await session.scalars(query.limit(limit) if limit else query))


# --- linking a chat to a person ------------------------------------------------------------


# Another chat of a person on the same app as a given chat.
_OTHER_CHAT = select(ChannelIdentity).where(
    ChannelIdentity.person_id == bindparam("person_id"),
    ChannelIdentity.channel == bindparam("channel"),
    ChannelIdentity.id != bindparam("identity_id"),
)
# Unknown: attach_identity looks the other chat up itself.
LOOK_UP = object()


async def attach_identity(
    session: AsyncSession,
    identity: ChannelIdentity,
    person: Person,
    now: datetime,
    *,
    other_chat: ChannelIdentity | object | None = LOOK_UP,
) -> ChannelIdentity | None:
    """Link this chat to the person, after proof.

    A person has one chat per app: an older chat of theirs on the same app (a lost cookie,
    a new browser, a new Telegram account) is unlinked and returned, so the person gets back
    in instead of being locked out by their own old account. A caller that already knows
    that chat (read with the person: person_and_other_chat; None for a person created in
    this unit of work, who has no chat yet) passes it as ``other_chat``.
    """
    if other_chat is LOOK_UP:
        old = await session.scalar(
            _OTHER_CHAT,
            {"person_id": person.id, "channel": identity.channel, "identity_id": identity.id},
        )
    else:
        old = cast(ChannelIdentity | None, other_chat)
    if old is not None:
        await unlink_identity(session, old)
    identity.person_id = person.id
    identity.person = person
    await withdraw_claims(session, identity.id, now)
    return old


# A person by id, with their other chat on an app (if any) and whether they hold a role other
# than membership (storage.refcache keeps the roles of people who have one).
_PERSON_AND_OTHER_CHAT = (
    select(
        Person,
        ChannelIdentity,
        select(UnitRole.id)
        .where(UnitRole.person_id == Person.id, UnitRole.role != Role.MEMBER)
        .exists()
        .label("has_roles"),
    )
    .outerjoin(
        ChannelIdentity,
        and_(
            ChannelIdentity.person_id == Person.id,
            ChannelIdentity.channel == bindparam("channel"),
            ChannelIdentity.id != bindparam("identity_id"),
        ),
    )
    .where(Person.id == bindparam("person_id"))
)


@dataclass(frozen=True)
class PersonAndChat:
    person: Person
    # Another chat of theirs on the same app as the asking one (attach_identity unlinks it).
    other_chat: ChannelIdentity | None
    has_roles: bool


async def person_and_other_chat(
    session: AsyncSession, person_id: int, identity: ChannelIdentity
) -> PersonAndChat | None:
    """The person a chat is about to be linked to, with what linking needs to know, in one
    statement (attach_identity's ``other_chat``, the menu's roles)."""
    row = (
        await session.execute(
            _PERSON_AND_OTHER_CHAT,
            {"person_id": person_id, "channel": identity.channel, "identity_id": identity.id},
        )
    ).first()
    if row is None:
        return None
    return PersonAndChat(row[0], row[1], bool(row[2]))


async def unlink_identity(session: AsyncSession, identity: ChannelIdentity) -> None:
    """Detach a chat from its person; its conversation starts over (as someone unknown)."""
    identity.person_id = None
    await session.execute(
        update(Conversation)
        .where(Conversation.identity_id == identity.id)
        .values(flow=None, step=None, data={}, version=Conversation.version + 1)
        .execution_options(synchronize_session=False)
    )
    await session.flush()


async def identities_of(session: AsyncSession, person_id: int) -> list[ChannelIdentity]:
    return list(
        await session.scalars(
            select(ChannelIdentity)
            .where(ChannelIdentity.person_id == person_id)
            .order_by(ChannelIdentity.id)
        )
    )


# --- merging two persons of one human ------------------------------------------------------


class MergeError(ValueError):
    """Two persons that cannot be merged as they are; the message is meant for the operator."""


@dataclass(frozen=True)
class MergeResult:
    keep: Person
    gone_id: int
    moved: dict[str, int]


async def merge_people(
    session: AsyncSession, keep: Person, gone: Person, *, via: str = "cli"
) -> MergeResult:
    """Move everything of ``gone`` to ``keep`` and delete ``gone``.

    Every column that refers to a person is moved, found from the model, so a table added
    later is not forgotten. The audit log keeps its entries (their actor becomes ``keep``)
    and gains one "person.merge" entry naming both ids. Refused when both have a live
    registration of the same title in the same campaign: the operator withdraws one first.
    """
    if keep.id == gone.id:
        raise MergeError("the two ids are the same person")
    withdrawn = RegistrationStatus.WITHDRAWN
    other = aliased(Registration)
    clash = await session.scalar(
        select(func.count())
        .select_from(Registration)
        .join(
            other,
            and_(
                other.campaign_id == Registration.campaign_id,
                other.title_code == Registration.title_code,
                other.person_id == keep.id,
                other.status != withdrawn,
            ),
        )
        .where(Registration.person_id == gone.id, Registration.status != withdrawn)
    )
    if clash:
        raise MergeError(
            f"both persons have a live registration of the same title ({clash}); "
            "withdraw one of them first"
        )
    # Rows that would collide with a unique key once moved: the kept person's copy wins.
    kept_roles = {
        (r.unit_id, r.role)
        for r in await session.scalars(select(UnitRole).where(UnitRole.person_id == keep.id))
    }
    for role in list(await session.scalars(select(UnitRole).where(UnitRole.person_id == gone.id))):
        if (role.unit_id, role.role) in kept_roles:
            await session.delete(role)
    kept_reminders = {
        (r.campaign_id, r.kind, r.due_key)
        for r in await session.scalars(select(ReminderLog).where(ReminderLog.person_id == keep.id))
    }
    for row in list(
        await session.scalars(select(ReminderLog).where(ReminderLog.person_id == gone.id))
    ):
        if (row.campaign_id, row.kind, row.due_key) in kept_reminders:
            await session.delete(row)
    kept_broadcasts = set(
        await session.scalars(
            select(BroadcastDelivery.broadcast_id).where(BroadcastDelivery.person_id == keep.id)
        )
    )
    if kept_broadcasts:
        await session.execute(
            delete(BroadcastDelivery).where(
                and_(
                    BroadcastDelivery.person_id == gone.id,
                    BroadcastDelivery.broadcast_id.in_(kept_broadcasts),
                )
            )
        )
    await session.flush()
    moved: dict[str, int] = {}
    people = Person.__table__
    for table in Base.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table is not people or table is people:
                continue
            column = fk.parent
            result = await session.execute(
                update(table)
                .where(column == gone.id)
                .values({column.name: keep.id})
                .execution_options(synchronize_session=False)
            )
            count = int(result.rowcount or 0)  # type: ignore[attr-defined]
            if count:
                moved[f"{table.name}.{column.name}"] = count
    if not keep.phone and gone.phone:
        keep.phone = gone.phone
    if keep.unit_id is None and gone.unit_id is not None:
        keep.unit_id = gone.unit_id
    if not keep.position and gone.position:
        keep.position = gone.position
    gone_id = gone.id
    session.add(
        AuditEntry(
            via=via,
            action="person.merge",
            entity="person",
            entity_id=keep.id,
            details={"merged_id": gone_id, "moved": moved},
        )
    )
    await session.flush()
    session.expunge(gone)
    await session.execute(delete(Person).where(Person.id == gone_id))
    await session.flush()
    return MergeResult(keep, gone_id, moved)


async def person_with_unit(session: AsyncSession, person_id: int) -> Person | None:
    return await session.scalar(
        select(Person).where(Person.id == person_id).options(selectinload(Person.unit))
    )
