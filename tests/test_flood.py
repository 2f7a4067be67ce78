"""Flooding: one person sending 50 messages a second gets one polite notice, and nobody else
waits for it.

The guard drops the excess (see handlers.engine.flood for why not a queue): what passes is
answered as usual, the first dropped message gets "bạn gửi nhanh quá", the rest nothing.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.flood import RedisFloodGuard, make_flood_guard
from handlers.engine.flood import LocalFloodGuard, Verdict
from handlers.engine.flow import EngineConfig
from handlers.engine.runner import Engine
from handlers.flows import build_engine
from storage.db import make_engine, make_sessionmaker
from storage.models import ChannelIdentity, Conversation, Registration
from storage.seed import prepare_database
from tests.chat import Chat
from tests.factories import make_org

JAN_10 = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)
SLOW_DOWN = "gửi tin nhắn nhanh quá"
BURST, RATE = 20, 2.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_lets_a_burst_through_then_one_per_refill_and_warns_once() -> None:
    clock = Clock()
    guard = LocalFloodGuard(burst=5, rate=1.0, clock=clock)
    verdicts = [guard.take("telegram:1") for _ in range(8)]
    assert verdicts == [Verdict.PASS] * 5 + [Verdict.WARN, Verdict.DROP, Verdict.DROP]
    assert guard.take("telegram:2") is Verdict.PASS  # everyone has a bucket of their own
    clock.now += 1.0
    assert guard.take("telegram:1") is Verdict.PASS  # one more per second, even mid-flood
    assert guard.take("telegram:1") is Verdict.DROP  # the same flood: no second notice
    clock.now += 5.0  # slowed down long enough: the bucket is full again
    assert [guard.take("telegram:1") for _ in range(6)] == [Verdict.PASS] * 5 + [Verdict.WARN]


def test_idle_buckets_are_forgotten_so_memory_stays_bounded() -> None:
    clock = Clock()
    guard = LocalFloodGuard(burst=2, rate=1.0, clock=clock, prune_from=100)
    for i in range(100):
        guard.take(f"zalo:{i}")
    clock.now += 3.0  # all of them are full again
    for i in range(300):
        guard.take(f"web:{i}")
    assert len(guard) <= 300


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        LocalFloodGuard(burst=0)
    with pytest.raises(ValueError):
        LocalFloodGuard(rate=0)
    assert isinstance(make_flood_guard(5, 1.0, None), LocalFloodGuard)


def guarded(sessionmaker: async_sessionmaker[AsyncSession]) -> Engine:
    engine = build_engine(sessionmaker, EngineConfig(now=lambda: JAN_10))
    engine.flood = LocalFloodGuard(BURST, RATE)
    return engine


async def onboard_hoa(engine: Engine) -> Chat:
    chat = Chat(engine, "hoa")
    await chat.say("/start")
    await chat.contact("+84912345678")
    await chat.tap("là tôi")
    return chat


async def flood(chat: Chat, count: int, per_second: float) -> list[int]:
    """``count`` messages at ``per_second``, each sent without waiting for the last answer."""
    tasks = []
    for i in range(count):
        tasks.append(asyncio.create_task(chat.say(f"alo alo {i}")))
        await asyncio.sleep(1 / per_second)
    answers = await asyncio.gather(*tasks)
    return [len(a) for a in answers]


async def handled_updates(sessionmaker: async_sessionmaker[AsyncSession], user_id: str) -> int:
    """How many updates of a person reached the database (each bumps the version once)."""
    async with sessionmaker() as session:
        version = await session.scalar(
            select(Conversation.version)
            .join(ChannelIdentity, ChannelIdentity.id == Conversation.identity_id)
            .where(ChannelIdentity.external_id == user_id)
        )
    return int(version or 0)


async def test_a_flood_gets_one_notice_and_the_others_journey_goes_on(sessionmaker) -> None:
    await make_org(sessionmaker)
    engine = guarded(sessionmaker)
    hoa = await onboard_hoa(engine)
    before = await handled_updates(sessionmaker, "hoa")

    async def other_person() -> None:
        binh = Chat(engine, "binh")
        await binh.say("/start")
        await binh.contact("0987654321")
        await binh.say("may bac kan")
        await binh.tap("Công ty May")
        await binh.say("trần văn bình")
        await binh.tap("Đăng ký danh hiệu")
        await binh.say("lao dong tien tien")
        await binh.tap("Bỏ qua")
        await binh.tap("Xác nhận")
        assert "TD2027-" in binh.text()
        assert SLOW_DOWN not in binh.transcript()

    started = time.monotonic()
    await asyncio.gather(flood(hoa, 50, 50.0), other_person())
    elapsed = time.monotonic() - started

    notices = [r for r in hoa.replies if SLOW_DOWN in r.text]
    assert len(notices) == 1
    assert "gửi lại" in notices[0].text  # says what to do
    handled = await handled_updates(sessionmaker, "hoa") - before
    # The burst left after onboarding, plus what refilled meanwhile: the rest never reached
    # the database.
    assert handled <= BURST - 3 + RATE * elapsed + 1
    assert handled < 40

    # Slowed down, she is answered as usual, at the question where she was.
    await asyncio.sleep(1.0)
    await hoa.tap("Đăng ký của tôi")
    assert "chưa có đăng ký" in hoa.text().lower()
    async with sessionmaker() as session:
        codes = list(await session.scalars(select(Registration.title_code)))
    assert codes == ["LDTT"]  # Bình's, and nothing of the flood


async def timed(chat: Chat, text: str) -> float:
    start = time.perf_counter()
    await chat.say(text)
    assert chat.last, text
    return time.perf_counter() - start


async def test_others_latency_is_not_affected_by_a_flood(sqlite_url: str) -> None:
    """Timing on SQLite only: the shared PostgreSQL serves other test runs at the same time."""
    db = make_engine(sqlite_url)
    try:
        await prepare_database(db)
        sessionmaker = make_sessionmaker(db)
        await make_org(sessionmaker)
        engine = guarded(sessionmaker)
        hoa = await onboard_hoa(engine)
        other = Chat(engine, "other")
        await other.say("/start")
        # A person waits for each answer before typing the next, and stays well inside
        # their own budget (a burst of 20): 1 + 8 + 8 messages.
        alone: list[float] = []
        for i in range(8):
            alone.append(await timed(other, f"0912 34{i:02d}"))
            await asyncio.sleep(0.1)

        flooding = asyncio.create_task(flood(hoa, 100, 50.0))
        await asyncio.sleep(0.5)  # the flood's burst has passed; now it is dropped
        during: list[float] = []
        while not flooding.done() and len(during) < 8:
            during.append(await timed(other, "không phải số"))
            await asyncio.sleep(0.1)
        await flooding
    finally:
        await db.dispose()
    assert len(during) >= 5
    assert sum(SLOW_DOWN in r.text for r in hoa.replies) == 1
    assert statistics.median(during) <= 2 * statistics.median(alone) + 0.05, (alone, during)


async def test_the_redis_guard_is_shared_between_processes() -> None:
    redis = pytest.importorskip("redis.asyncio")
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        await client.ping()
    except Exception:
        pytest.skip("no Redis on 127.0.0.1:6379")
    finally:
        await client.aclose()
    prefix = f"thidua:test-flood:{uuid.uuid4().hex[:8]}:"
    # Two guards stand for two bot processes behind a load balancer: one budget, not two.
    first = RedisFloodGuard("redis://127.0.0.1:6379/0", 4, 0.5, prefix=prefix)
    second = RedisFloodGuard("redis://127.0.0.1:6379/0", 4, 0.5, prefix=prefix)
    try:
        verdicts = []
        for i in range(7):
            verdicts.append(await (first if i % 2 else second).check("telegram:9"))
        assert verdicts == [Verdict.PASS] * 4 + [Verdict.WARN, Verdict.DROP, Verdict.DROP]
        assert await first.check("telegram:10") is Verdict.PASS
    finally:
        await first.close()
        await second.close()


async def test_without_redis_the_guard_keeps_working_on_its_own() -> None:
    # Nothing listens on port 1: every check falls back to this process's buckets.
    guard = RedisFloodGuard("redis://127.0.0.1:1/0", 2, 1.0)
    try:
        verdicts = [await guard.check("zalo:1") for _ in range(4)]
    finally:
        await guard.close()
    assert verdicts == [Verdict.PASS, Verdict.PASS, Verdict.WARN, Verdict.DROP]
