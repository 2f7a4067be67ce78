"""A campaign file's ``announcement:`` becomes a broadcast at the campaign start; and the
shared rate limiter (in-process, and through the real Redis) keeps its pace."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.ratelimit import LocalRateLimiter, RedisRateLimiter
from storage.campaigns import CampaignInvalid, load_campaign
from storage.models import Broadcast, BroadcastStatus
from tests.factories import make_org


def campaign(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "code": "TD2031",
        "name": "Phong trào thi đua năm 2031",
        "issuer": "LDLD-BK",
        "year": 2031,
        "registration_deadline": date(2031, 1, 25),
        "phases": [
            {"name": "Đợt 1", "start": date(2031, 1, 2), "end": date(2031, 6, 30)},
            {"name": "Đợt 2", "start": date(2031, 7, 1), "end": date(2031, 12, 31)},
        ],
        "titles": ["LDTT", "CSTDCS"],
        "announcement": "Kính gửi các đồng chí đoàn viên: LĐLĐ tỉnh phát động thi đua năm 2031.",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


async def load(sessionmaker: async_sessionmaker[AsyncSession], data: dict[str, Any]) -> None:
    async with sessionmaker() as session, session.begin():
        await load_campaign(session, data)


async def the_broadcast(sessionmaker: async_sessionmaker[AsyncSession]) -> Broadcast | None:
    async with sessionmaker() as session:
        return await session.scalar(select(Broadcast))


async def test_announcement_is_scheduled_at_the_campaign_start(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    org = await make_org(sessionmaker)
    await load(sessionmaker, campaign())
    broadcast = await the_broadcast(sessionmaker)
    assert broadcast is not None
    assert broadcast.status == BroadcastStatus.SCHEDULED
    # 08:00 on 02/01/2031 in Hà Nội is 01:00 UTC.
    assert broadcast.scheduled_at == datetime(2031, 1, 2, 1, 0, tzinfo=UTC)
    assert broadcast.unit_id == org.province.id and broadcast.register_button
    assert broadcast.audience == {"unit_ids": [], "role": "all", "unregistered": False}
    assert broadcast.key == "campaign:TD2031" and broadcast.source == "campaign"

    # Loading the file again updates the waiting broadcast rather than adding one.
    await load(sessionmaker, campaign(announcement="Nội dung mới của thông báo phát động."))
    async with sessionmaker() as session:
        rows = list(await session.scalars(select(Broadcast)))
    assert [b.text for b in rows] == ["Nội dung mới của thông báo phát động."]

    # Taking the text out of the file cancels it.
    await load(sessionmaker, campaign(announcement=None))
    broadcast = await the_broadcast(sessionmaker)
    assert broadcast is not None and broadcast.status == BroadcastStatus.CANCELLED


async def test_announcement_must_be_text(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await make_org(sessionmaker)
    with pytest.raises(CampaignInvalid) as caught:
        await load(sessionmaker, campaign(announcement=["a", "list"]))
    assert caught.value.problems == ["announcement: must be the text of the announcement"]
    assert await the_broadcast(sessionmaker) is None


# --- the limiter ---------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_local_limiter_spaces_sends_and_slows_down_after_a_429() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(10, headroom=1.0, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        await limiter.acquire("telegram")
    assert clock.now == pytest.approx(100.4)  # evenly spaced, no burst
    await limiter.penalize("telegram", 2.0)
    await limiter.acquire("telegram")
    assert clock.now == pytest.approx(102.4)  # everyone waits retry_after
    before = clock.now
    await limiter.acquire("telegram")
    assert clock.now - before > 0.1  # then slower than 10/s for a while
    await limiter.acquire("web")  # a local channel is never paced
    assert clock.now - before < 0.2


async def test_redis_limiter_is_shared_between_processes() -> None:
    redis = pytest.importorskip("redis.asyncio")
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        await client.ping()
    except Exception:
        pytest.skip("no Redis on 127.0.0.1:6379")
    finally:
        await client.aclose()
    prefix = f"thidua:test:{uuid.uuid4().hex[:8]}:"
    # Two limiters stand for two bot processes: 20/s together, not 20/s each.
    first = RedisRateLimiter("redis://127.0.0.1:6379/0", 20, headroom=1.0, prefix=prefix)
    second = RedisRateLimiter("redis://127.0.0.1:6379/0", 20, headroom=1.0, prefix=prefix)
    try:
        started = time.monotonic()

        async def sends(limiter: RedisRateLimiter) -> None:
            for _ in range(10):
                await limiter.acquire("telegram")

        await asyncio.gather(sends(first), sends(second))
        elapsed = time.monotonic() - started
        assert elapsed >= 19 / 20 - 0.05  # 20 sends at 20/s: the first at once
        # A 429 seen by one process makes the other wait too.
        await first.penalize("telegram", 0.5)
        paused = time.monotonic()
        await second.acquire("telegram")
        assert time.monotonic() - paused >= 0.45
    finally:
        await first.close()
        await second.close()
