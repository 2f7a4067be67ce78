"""A roster member with a personal code, as `thidua person code` gives one (issue 12).

A typed phone is only a claim; end-to-end tests on channels without a verified contact
(Zalo, the web page) prove it with the code a leader hands out.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.links import PERSONAL_LIFETIME, issue_link_code
from storage.models import Person, Role, Unit, UnitRole
from storage.types import utcnow


async def personal_code(
    sessionmaker: async_sessionmaker[AsyncSession],
    name: str = "Trần Văn Bình",
    phone: str = "0987654321",
    unit_code: str = "CDCS-MAY",
    now: datetime | None = None,
) -> str:
    """The code of the roster member with this phone (added to the unit's roster if new)."""
    async with sessionmaker() as session, session.begin():
        person = await session.scalar(select(Person).where(Person.phone == phone))
        if person is None:
            unit = await session.scalar(select(Unit).where(Unit.code == unit_code))
            assert unit is not None, unit_code
            person = Person(full_name=name, phone=phone, unit_id=unit.id, source="roster")
            session.add(person)
            await session.flush()
            session.add(UnitRole(person_id=person.id, unit_id=unit.id, role=Role.MEMBER))
        code, _expires = await issue_link_code(
            session, person.id, "cli", now or utcnow(), PERSONAL_LIFETIME
        )
    return code
