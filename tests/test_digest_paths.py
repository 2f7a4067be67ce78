"""The digest's progress counted two ways on SQLite (a small subtree looks each member up, a
large one walks the registered people once) gives the same numbers, co-authors included."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import storage.counts
from storage.models import Campaign, Initiative, InitiativeAuthor, Unit
from storage.stats import digest_data, progress_under
from tests.factories import add_unit, make_org
from tests.test_digest import Builder, digest_numbers, independent_counts, person


async def scene(sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[int, list[int]]:
    """Units with members registering titles and initiatives; returns (campaign, unit ids)."""
    org = await make_org(sessionmaker)
    rng = random.Random(7)
    statuses = ["submitted", "approved", "returned", "withdrawn", "draft"]
    async with sessionmaker() as session, session.begin():
        b = Builder(session, org)
        units = [org.garment, org.school]
        units += [
            await add_unit(session, f"G{i}", f"Công đoàn cơ sở {i}", "grassroots", org.upper)
            for i in range(3)
        ]
        units.append(await add_unit(session, "TEAM", "Tổ 1", "team", units[2]))
        people = []
        for unit in units:
            for k in range(rng.randint(3, 9)):
                p = await person(session, f"Người {unit.code}-{k}", unit)
                people.append(p)
                for code in rng.sample(["LDTT", "CSTDCS", "BK_TINH"], rng.randint(0, 2)):
                    b.title(unit, code, p, status=rng.choice(statuses))
                if rng.random() < 0.3:
                    b.initiative(p, 10_000_000, rng.choice(statuses))
        await session.flush()
        # A co-author without a title of their own counts as registered too.
        for initiative in await session.scalars(select(Initiative)):
            helper = rng.choice(people)
            session.add(
                InitiativeAuthor(initiative_id=initiative.id, person_id=helper.id, name="x")
            )
        ids = [u.id for u in (org.province, org.upper, *units)]
    return org.campaign.id, ids


async def test_both_ways_of_counting_progress_agree(
    sessionmaker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign_id, unit_ids = await scene(sessionmaker)
    async with sessionmaker() as session:
        province = await session.get(Unit, unit_ids[0])
        campaign = await session.get(Campaign, campaign_id)
        assert province is not None and campaign is not None
        looked_up = await progress_under(session, campaign_id, province.path, unit_ids)
        digest = digest_numbers(await digest_data(session, campaign, province))
        monkeypatch.setattr(storage.counts, "SQLITE_SET_DRIVEN_MIN", 0)
        walked = await progress_under(session, campaign_id, province.path, unit_ids)
        assert digest_numbers(await digest_data(session, campaign, province)) == digest
    assert walked == looked_up
    assert looked_up[province.id].registered > 0
    assert looked_up[province.id].members > looked_up[province.id].registered


async def test_numbers_of_the_set_driven_way_match_a_direct_count(
    sessionmaker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    org = await make_org(sessionmaker)
    async with sessionmaker() as session, session.begin():
        b = Builder(session, org)
        garment = await session.get(Unit, org.garment.id)
        assert garment is not None
        workers = [await person(session, f"Công nhân {i}", garment) for i in range(5)]
        b.title(garment, "LDTT", workers[0])
        b.title(garment, "CSTDCS", workers[0])
        b.title(garment, "LDTT", workers[1], status="withdrawn")
        b.initiative(workers[2], 5_000_000)
        b.initiative(workers[0], 5_000_000)
    monkeypatch.setattr(storage.counts, "SQLITE_SET_DRIVEN_MIN", 0)
    async with sessionmaker() as session:
        campaign = await session.get(Campaign, org.campaign.id)
        province = await session.get(Unit, org.province.id)
        assert campaign is not None and province is not None
        data = await digest_data(session, campaign, province)
        expected = await independent_counts(session, campaign.id, province.path)
    assert digest_numbers(data) == expected
    # make_org's rostered member, and the five workers of whom two registered something.
    assert (data.progress.members, data.progress.registered) == (6, 2)
