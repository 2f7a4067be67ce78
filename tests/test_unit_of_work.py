"""The conversation's unit of work: all or nothing, however lean.

On PostgreSQL a unit of work reads without a transaction and sends BEGIN just before its
first write (storage.late_begin); an answer that writes only its conversation sends neither
BEGIN nor COMMIT. What a person would notice if that went wrong: half an answer saved (a
registration without the conversation moving on, or the other way round), or some other
work of the bot no longer rolled back because its pooled connection was left in autocommit.
The reference cache hands campaigns out detached and shared: an officer's change must still
show in the very next answer.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import asyncpg
import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from handlers.engine.flow import EngineConfig
from handlers.flows import build_engine
from storage import late_begin
from storage.db import make_engine, make_sessionmaker
from storage.models import Campaign, Person, Registration
from storage.seed import prepare_database
from tests.chat import Chat
from tests.factories import Org, make_org

JAN_10 = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)  # 09:00 in Hà Nội, registration open


async def _state_of(url: str, pid: int) -> str:
    """What PostgreSQL says the backend ``pid`` is doing ("idle", "idle in transaction")."""
    admin = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        return str(await admin.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1", pid))
    finally:
        await admin.close()


async def test_reads_need_no_transaction_and_the_first_write_opens_one(
    db_url: str, engine: AsyncEngine, backend: str
) -> None:
    sessions = make_sessionmaker(engine)
    await make_org(sessions)
    async with sessions() as session:
        connection = await session.connection()
        started = await connection.run_sync(late_begin.start)
        assert started is (backend == "postgresql")
        if backend == "postgresql":
            pid = await session.scalar(select(func.pg_backend_pid()))
            assert pid is not None
            # A read left nothing open on the server...
            assert await _state_of(db_url, pid) == "idle"
            session.add(Person(full_name="Lê Văn Tạm", phone="0911000001", source="chat"))
            await session.flush()
            # ...a write began the transaction, and the next statements are in it.
            assert await _state_of(db_url, pid) == "idle in transaction"
        await session.execute(
            update(Person).where(Person.phone == "0912345678").values(position="changed")
        )
        await session.rollback()
    async with sessions() as session:
        # All or nothing: neither write of the rolled back unit of work is there.
        assert await session.scalar(select(Person.id).where(Person.phone == "0911000001")) is None
        assert await session.scalar(
            select(Person.position).where(Person.phone == "0912345678")
        ) == ("Tổ trưởng tổ may 1")


async def test_a_connection_goes_back_to_the_pool_as_it_came(db_url: str) -> None:
    # One connection in the pool: the bot's other work gets the very one the answers used.
    db = make_engine(db_url, pool_size=1, max_overflow=0) if "postgresql" in db_url else None
    db = db or make_engine(db_url)
    try:
        await prepare_database(db)
        sessions = make_sessionmaker(db)
        await make_org(sessions)
        chat = Chat(build_engine(sessions, EngineConfig(now=lambda: JAN_10)), "100")
        await chat.say("/start")
        await chat.contact("+84912345678")
        await chat.tap("là tôi")
        await chat.tap("Đăng ký danh hiệu")  # an answer that writes its conversation only
        await chat.say("/khongco")  # and one that ends in a re-ask
        with pytest.raises(RuntimeError):
            async with sessions() as session, session.begin():
                session.add(Person(full_name="Lê Văn Tạm", phone="0911000001", source="chat"))
                await session.flush()
                raise RuntimeError("the command failed half way")
        async with sessions() as session:
            found = await session.scalar(select(Person.id).where(Person.phone == "0911000001"))
        assert found is None, "a pooled connection was left in autocommit"
    finally:
        await db.dispose()


async def test_a_registration_and_its_conversation_are_saved_together_or_not_at_all(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A confirmation racing another message of the same person: whichever wins, the
    registration is there exactly when the confirmation's answer was saved."""
    org = await make_org(sessionmaker)
    bot = build_engine(sessionmaker, EngineConfig(now=lambda: JAN_10))
    people = []
    for n in range(4):
        async with sessionmaker() as session, session.begin():
            session.add(
                Person(
                    full_name=f"Nguyễn Văn Thử {n}",
                    phone=f"091200000{n}",
                    unit_id=org.garment.id,
                    source="roster",
                )
            )
        chat = Chat(bot, str(200 + n))
        await chat.say("/start")
        await chat.contact(f"091200000{n}")
        await chat.tap("là tôi")
        await chat.tap("Đăng ký danh hiệu")
        await chat.say("lao dong tien tien")
        await chat.tap("Bỏ qua")
        people.append(chat)
    # Each press is made on the summary as shown, while the "/huy" of the same person runs.
    results = await asyncio.gather(
        *(chat.tap("Xác nhận") for chat in people), *(chat.say("/huy") for chat in people)
    )
    assert len(results) == 2 * len(people)
    async with sessionmaker() as session:
        saved = set(
            await session.scalars(
                select(Person.phone)
                .join(Registration, Registration.person_id == Person.id)
                .where(Registration.campaign_id == org.campaign.id)
            )
        )
    for n, chat in enumerate(people):
        told_done = any(f"{org.campaign.code}-" in r.text for r in chat.replies)
        assert (f"091200000{n}" in saved) is told_done, chat.transcript()


async def test_a_campaign_changed_by_an_officer_shows_in_the_next_answer(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    org: Org = await make_org(sessionmaker)
    chat = Chat(build_engine(sessionmaker, EngineConfig(now=lambda: JAN_10)), "100")
    await chat.say("/start")
    await chat.contact("+84912345678")
    await chat.tap("là tôi")
    await chat.tap("Đăng ký danh hiệu")
    await chat.say("lao dong tien tien")
    await chat.tap("Bỏ qua")
    # The campaign (kept by the process, shared by its answers) is closed meanwhile.
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Campaign)
            .where(Campaign.id == org.campaign.id)
            .values(registration_deadline=date(2027, 1, 5))
        )
    await chat.tap("Xác nhận")
    assert "05/01/2027" in chat.last[0].text, chat.transcript()
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Registration)) == 0
        # The shared campaign was not written through: the table has the officer's date.
        assert await session.scalar(
            select(Campaign.registration_deadline).where(Campaign.id == org.campaign.id)
        ) == date(2027, 1, 5)
    assert await _no_open_transactions(sessionmaker)


async def _no_open_transactions(sessionmaker: async_sessionmaker[AsyncSession]) -> bool:
    async with sessionmaker() as session:
        if session.get_bind().dialect.name != "postgresql":
            return True
        found = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state = 'idle in transaction' AND pid <> pg_backend_pid()"
            )
        )
        return found == 0
