"""Who is on a unit's list: the people behind its registrations, for the messages about it.

Counts live in storage.stats (one truth for every number); this module only answers "who",
for the names an officer or a leader reads and for telling members about their list.
No commits here: the caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from storage import refcache
from storage.models import Person, Registration, SubmissionStatus, Unit, UnitSubmission
from storage.repo import LIVE_STATUSES, ancestor_ids
from storage.units import in_subtree


@dataclass(frozen=True)
class ListEntry:
    """One individual registration on a unit's list."""

    registration_id: int
    person_id: int
    full_name: str
    title_code: str
    status: str


async def approved_list_covering(
    session: AsyncSession, campaign_id: int, unit_id: int
) -> UnitSubmission | None:
    """The approved list (the unit's own or an ancestor's) that stops changes in ``unit_id``.

    The same rule as storage.units.registrations_locked, with the decision itself: who
    approved it is the person to ask to reopen it.
    """

    async def covering() -> UnitSubmission | None:
        unit = await session.get(Unit, unit_id)
        if unit is None:
            return None
        return await session.scalar(_covering_list(campaign_id, ancestor_ids(unit)))

    # Most units have none, most of the time: known without a statement (storage.refcache).
    return await refcache.approved_list_absent(session, campaign_id, unit_id, covering)


def _covering_list(campaign_id: int, unit_ids: list[int]) -> Select[UnitSubmission]:
    return (
        select(UnitSubmission)
        .where(
            UnitSubmission.campaign_id == campaign_id,
            UnitSubmission.status == SubmissionStatus.APPROVED,
            UnitSubmission.unit_id.in_(unit_ids),
        )
        # Its unit is named to the member (an ancestor's list: not in the session yet).
        .options(joinedload(UnitSubmission.unit))
        .order_by(UnitSubmission.id)
        .limit(1)
    )


async def list_entries(session: AsyncSession, campaign_id: int, unit: Unit) -> list[ListEntry]:
    """The individual registrations of the unit's subtree, by title, then name."""
    rows = await session.execute(
        select(
            Registration.id,
            Person.id,
            Person.full_name,
            Registration.title_code,
            Registration.status,
        )
        .join(Person, Person.id == Registration.person_id)
        .join(Unit, Unit.id == Registration.unit_id)
        .where(
            Registration.campaign_id == campaign_id,
            Registration.status.in_(LIVE_STATUSES),
            Registration.is_collective.is_(False),
            in_subtree(unit),
        )
        .order_by(Registration.title_code, Person.full_name, Registration.id)
    )
    return [ListEntry(*row) for row in rows]


async def registrants_of(
    session: AsyncSession, campaign_id: int, unit: Unit
) -> dict[int, list[str]]:
    """The people with a live individual registration on the unit's list: their title codes."""
    people: dict[int, list[str]] = {}
    for entry in await list_entries(session, campaign_id, unit):
        people.setdefault(entry.person_id, []).append(entry.title_code)
    return people
