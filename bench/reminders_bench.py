"""How long a reminder pass and a digest take on a large union (not a test: run it by hand).

    python -m bench.reminders_bench --url sqlite+aiosqlite:////tmp/bench.db --members 100000
    python -m bench.reminders_bench --url postgresql+asyncpg://postgres@127.0.0.1/bench

Builds a province with 10 upper-level unions, 1,000 grassroots unions, ``--members`` members
who all have a chat, a third of them registered and 2 % with a draft, then times: the dry
run of the first reminder pass, the real pass (log and outbox rows written), the second pass
(nothing left to send), and the digest numbers of the whole province. The database must be
empty (a new SQLite file, or a new PostgreSQL database).

Targets (what "fast enough" means here): a pass over 100,000 members within a minute, the
repeated pass and the province digest within a few seconds. Measured on a 2-core test
machine, PostgreSQL 100,000 members: dry run 14 s, first pass 48 s (68,705 messages; the
ORM inserts of the outbox rows are most of it), second pass 2.6 s, province digest 0.4 s.
The script runs ANALYZE after loading: without statistics PostgreSQL picks a per-unit
nested loop and the pass takes minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from datetime import UTC, date, datetime

from sqlalchemy import func, insert, select, text

from handlers.reminders import ReminderPolicy, reminder_pass
from storage.db import make_engine, make_sessionmaker
from storage.models import (
    Campaign,
    ChannelIdentity,
    Conversation,
    OutboxMessage,
    Person,
    Registration,
    Role,
    Unit,
    UnitRole,
)
from storage.seed import prepare_database
from storage.stats import digest_data

AT = datetime(2027, 1, 18, 1, 0, tzinfo=UTC)  # 08:00 in Hà Nội, the 7-day reminder


async def build(url: str, members: int) -> int:
    engine = make_engine(url)
    await prepare_database(engine)
    sessions = make_sessionmaker(engine)
    rng = random.Random(1)
    async with sessions() as session, session.begin():
        province = Unit(code="P", name="LĐLĐ tỉnh", search_name="ldld tinh", kind="province")
        session.add(province)
        await session.flush()
        province.path = f"/{province.id}/"
        grassroots: list[Unit] = []
        for u in range(10):
            upper = Unit(
                code=f"U{u}",
                name=f"Công đoàn KCN {u}",
                search_name=f"cong doan kcn {u}",
                kind="upper",
                parent_id=province.id,
            )
            session.add(upper)
            await session.flush()
            upper.path = f"{province.path}{upper.id}/"
            for g in range(100):
                unit = Unit(
                    code=f"G{u}-{g}",
                    name=f"CĐCS {u}-{g}",
                    search_name=f"cdcs {u}-{g}",
                    kind="grassroots",
                    parent_id=upper.id,
                )
                session.add(unit)
                grassroots.append(unit)
            await session.flush()
            for unit in grassroots[-100:]:
                unit.path = f"{upper.path}{unit.id}/"
        campaign = Campaign(
            code="TD2027",
            name="Phong trào thi đua năm 2027",
            issuer_unit_id=province.id,
            year=2027,
            registration_deadline=date(2027, 1, 25),
            title_codes=["LDTT"],
            settings={},
        )
        session.add(campaign)
        await session.flush()
        campaign_id = campaign.id
        unit_ids = [u.id for u in grassroots]
    chunk = 5000
    for start in range(0, members, chunk):
        count = min(chunk, members - start)
        async with sessions() as session, session.begin():
            ids = list(
                await session.scalars(
                    insert(Person).returning(Person.id),
                    [
                        {
                            "full_name": f"Đoàn viên {start + i}",
                            "unit_id": unit_ids[(start + i) % len(unit_ids)],
                            "source": "roster",
                        }
                        for i in range(count)
                    ],
                )
            )
            identities = list(
                await session.scalars(
                    insert(ChannelIdentity).returning(ChannelIdentity.id),
                    [
                        {"channel": "telegram", "external_id": str(pid), "person_id": pid}
                        for pid in ids
                    ],
                )
            )
            registered = [pid for pid in ids if rng.random() < 0.33]
            if registered:
                await session.execute(
                    insert(Registration),
                    [
                        {
                            "receipt_no": f"R{pid}",
                            "campaign_id": campaign_id,
                            "title_code": "LDTT",
                            "person_id": pid,
                            "unit_id": unit_ids[0],
                        }
                        for pid in registered
                    ],
                )
            drafts = [iid for iid in identities if rng.random() < 0.02]
            if drafts:
                await session.execute(
                    insert(Conversation),
                    [
                        {
                            "identity_id": iid,
                            "flow": "title",
                            "step": "commitment",
                            "data": {"draft": {"campaign_id": campaign_id}},
                        }
                        for iid in drafts
                    ],
                )
    async with sessions() as session, session.begin():
        leaders = [
            {"person_id": i + 1, "unit_id": uid, "role": Role.LEADER}
            for i, uid in enumerate(unit_ids)
            if i < members
        ]
        await session.execute(insert(UnitRole), leaders)
    # Statistics, as autovacuum would gather them on a live database after a while.
    async with engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
        await conn.commit()
    await engine.dispose()
    return campaign_id


async def measure(url: str, campaign_id: int) -> None:
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    policy = ReminderPolicy()

    async def timed(label: str, work):  # type: ignore[no-untyped-def]
        began = time.perf_counter()
        result = await work
        print(f"{label:<34} {time.perf_counter() - began:7.2f} s")
        return result

    report = await timed(
        "first pass, dry run", reminder_pass(sessions, campaign_id, AT, policy, dry_run=True)
    )
    print(f"  would send {len(report.messages)} reminder(s)")
    report = await timed("first pass", reminder_pass(sessions, campaign_id, AT, policy))
    report = await timed("second pass (all sent)", reminder_pass(sessions, campaign_id, AT, policy))
    assert report.messages == []
    async with sessions() as session:
        queued = await session.scalar(select(func.count()).select_from(OutboxMessage))
        print(f"  outbox rows: {queued}")
        campaign = await session.get(Campaign, campaign_id)
        root = await session.scalar(select(Unit).where(Unit.code == "P"))
        assert campaign is not None and root is not None
        data = await timed("province digest numbers", digest_data(session, campaign, root))
        print(f"  {data.progress.registered}/{data.progress.members} registered")
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--members", type=int, default=100_000)
    args = parser.parse_args()

    async def run() -> None:
        began = time.perf_counter()
        campaign_id = await build(args.url, args.members)
        print(
            f"{'built ' + str(args.members) + ' members':<34} {time.perf_counter() - began:7.2f} s"
        )
        await measure(args.url, campaign_id)

    asyncio.run(run())


if __name__ == "__main__":
    main()
