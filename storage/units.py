"""Queries about a unit as a whole: its roster, its registrations, its list sent upward.

A grassroots union's roster includes the people of its departments and teams, so every
"of the unit" query here covers the unit's subtree (``Unit.path`` prefix match). No commits:
the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage import refcache
from storage.models import (
    ChannelIdentity,
    Person,
    Registration,
    Role,
    SubmissionStatus,
    Unit,
    UnitRole,
    UnitSubmission,
)
from storage.repo import LIVE_STATUSES, ancestor_ids

# --- the tree ------------------------------------------------------------------------------


def in_subtree(unit: Unit) -> ColumnElement[bool]:
    """A condition on ``Unit``: the unit itself or one of its descendants."""
    return Unit.path.startswith(unit.path, autoescape=True)


async def units_with_role(session: AsyncSession, person_id: int, role: str) -> list[Unit]:
    """Units in which the person has ``role``, by name (kept per process in a conversation's
    unit of work: storage.refcache)."""
    return await refcache.units_with_role(session, person_id, role)


async def has_role_on(
    session: AsyncSession, person_id: int, unit_ids: Sequence[int], role: str
) -> bool:
    if not unit_ids:
        return False
    found = await session.scalar(
        select(UnitRole.id)
        .where(
            UnitRole.person_id == person_id,
            UnitRole.unit_id.in_(unit_ids),
            UnitRole.role == role,
        )
        .limit(1)
    )
    return found is not None


async def is_officer_above(session: AsyncSession, person_id: int, unit: Unit) -> bool:
    """An officer of a strict ancestor of the unit: who may review the unit's list."""
    return await has_role_on(session, person_id, ancestor_ids(unit)[:-1], Role.OFFICER)


async def people_with_role(session: AsyncSession, unit_id: int, role: str) -> list[int]:
    rows = await session.scalars(
        select(UnitRole.person_id)
        .where(UnitRole.unit_id == unit_id, UnitRole.role == role)
        .order_by(UnitRole.person_id)
    )
    return list(rows)


async def officers_above(session: AsyncSession, unit: Unit) -> list[int]:
    """The officers of the nearest ancestor that has any (usually the parent unit)."""
    above = ancestor_ids(unit)[:-1]
    if not above:
        return []
    # Every level above in one statement, not one per level.
    rows = await session.execute(
        select(UnitRole.unit_id, UnitRole.person_id)
        .where(UnitRole.unit_id.in_(above), UnitRole.role == Role.OFFICER)
        .order_by(UnitRole.person_id)
    )
    return _first_unit_with_people(rows, reversed(above))


def _first_unit_with_people(rows: Iterable[Any], candidates: Iterable[int]) -> list[int]:
    """Of (unit id, person id) rows, the people of the first candidate unit that has any."""
    found: dict[int, list[int]] = {}
    for unit_id, person_id in rows:
        found.setdefault(unit_id, []).append(person_id)
    for candidate in candidates:
        if found.get(candidate):
            return found[candidate]
    return []


# Built once: sign-up asks it for every claim.
_LEADERS_OR_OFFICERS = (
    select(UnitRole.unit_id, UnitRole.person_id)
    .where(
        or_(
            and_(UnitRole.unit_id == bindparam("unit_id"), UnitRole.role == Role.LEADER),
            and_(
                UnitRole.unit_id.in_(bindparam("above", expanding=True)),
                UnitRole.role == Role.OFFICER,
            ),
        )
    )
    .order_by(UnitRole.person_id)
)


async def leaders_or_officers_above(session: AsyncSession, unit: Unit) -> list[int]:
    """The unit's leaders; when it has none, the officers of the nearest ancestor that has
    any (people_with_role, then officers_above, in one statement)."""
    above = ancestor_ids(unit)[:-1]
    rows = await session.execute(_LEADERS_OR_OFFICERS, {"unit_id": unit.id, "above": above})
    return _first_unit_with_people(rows, (unit.id, *reversed(above)))


# --- the roster ----------------------------------------------------------------------------


async def roster(session: AsyncSession, unit: Unit) -> list[Person]:
    rows = await session.scalars(
        select(Person)
        .join(Unit, Person.unit_id == Unit.id)
        .where(in_subtree(unit))
        .order_by(Person.full_name, Person.id)
    )
    return list(rows)


async def sub_units(session: AsyncSession, unit: Unit, limit: int = 20) -> list[Unit]:
    """The units below ``unit`` in the org tree (công đoàn bộ phận, tổ công đoàn): the
    collectives a TTLĐXS / TTLĐTT can be conferred on, in tree order."""
    rows = await session.scalars(
        select(Unit)
        .where(in_subtree(unit), Unit.id != unit.id)
        .order_by(Unit.path, Unit.name)
        .limit(limit)
    )
    return list(rows)


async def person_in_unit(session: AsyncSession, person_id: int, unit: Unit) -> Person | None:
    """The person, only if on the unit's roster (ids kept in a draft are checked again)."""
    return await session.scalar(
        select(Person)
        .join(Unit, Person.unit_id == Unit.id)
        .where(Person.id == person_id, in_subtree(unit))
        .options(selectinload(Person.unit))
    )


async def leads_unit_of(session: AsyncSession, leader_id: int, person: Person) -> bool:
    """Whether ``leader_id`` leads the person's unit or one of its ancestors."""
    unit = await session.get(Unit, person.unit_id) if person.unit_id else None
    if unit is None:
        return False
    return await has_role_on(session, leader_id, ancestor_ids(unit), Role.LEADER)


async def with_chat(session: AsyncSession, person_ids: Sequence[int]) -> set[int]:
    """Which of these people the bot can reach (they have a chat identity)."""
    if not person_ids:
        return set()
    rows = await session.scalars(
        select(ChannelIdentity.person_id).where(ChannelIdentity.person_id.in_(person_ids))
    )
    return {pid for pid in rows if pid is not None}


# --- registrations of the unit -------------------------------------------------------------


async def collective_registrations(
    session: AsyncSession, campaign_id: int, unit_id: int
) -> list[Registration]:
    rows = await session.scalars(
        select(Registration)
        .where(
            Registration.campaign_id == campaign_id,
            Registration.unit_id == unit_id,
            Registration.is_collective.is_(True),
            Registration.status.in_(LIVE_STATUSES),
        )
        .order_by(Registration.id)
    )
    return list(rows)


# --- the list sent upward ------------------------------------------------------------------


async def submission_for(
    session: AsyncSession, campaign_id: int, unit_id: int
) -> UnitSubmission | None:
    return await session.scalar(
        select(UnitSubmission)
        .where(UnitSubmission.campaign_id == campaign_id, UnitSubmission.unit_id == unit_id)
        .options(selectinload(UnitSubmission.unit))
    )


async def submission_by_id(session: AsyncSession, submission_id: int) -> UnitSubmission | None:
    return await session.scalar(
        select(UnitSubmission)
        .where(UnitSubmission.id == submission_id)
        .options(selectinload(UnitSubmission.unit))
    )


async def move_submission(
    session: AsyncSession, submission: UnitSubmission, expected: str, **values: Any
) -> bool:
    """Change a list's status only if it is still ``expected``, in one UPDATE.

    Two officers tapping "Duyệt" and "Trả lại" at once, or two leaders sending the same list:
    the row lock makes the second UPDATE see the first one's status and change nothing, so
    exactly one decision wins and the loser is told. The object is refreshed afterwards.
    """
    result = await session.execute(
        update(UnitSubmission)
        .where(UnitSubmission.id == submission.id, UnitSubmission.status == expected)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(submission)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def submissions_below(
    session: AsyncSession, units: Sequence[Unit], status: str, limit: int = 50
) -> list[UnitSubmission]:
    """Lists in a status from units strictly below any of ``units`` (an officer's subtree)."""
    if not units:
        return []
    below = or_(*(in_subtree(u) & (Unit.id != u.id) for u in units))
    rows = await session.scalars(
        select(UnitSubmission)
        .join(Unit, UnitSubmission.unit_id == Unit.id)
        .where(UnitSubmission.status == status, below)
        .options(selectinload(UnitSubmission.unit))
        .order_by(UnitSubmission.submitted_at, UnitSubmission.id)
        .limit(limit)
    )
    return list(rows)


async def registrations_locked(
    session: AsyncSession, campaign_id: int, unit_id: int
) -> Unit | None:
    """The unit (the person's own or an ancestor) whose approved list covers ``unit_id``.

    After the upper level approves a unit's list, nobody below changes registrations of that
    campaign until an officer reopens it.
    """

    async def covering() -> Unit | None:
        unit = await session.get(Unit, unit_id)
        if unit is None:
            return None
        return await session.scalar(
            select(Unit)
            .join(UnitSubmission, UnitSubmission.unit_id == Unit.id)
            .where(
                UnitSubmission.campaign_id == campaign_id,
                UnitSubmission.status == SubmissionStatus.APPROVED,
                Unit.id.in_(ancestor_ids(unit)),
            )
            .limit(1)
        )

    # Most units have none, most of the time: known without a statement (storage.refcache).
    return await refcache.approved_list_absent(session, campaign_id, unit_id, covering)
