"""How fast the bot may talk to a platform: one shared pace per platform, across processes.

Telegram allows about 30 messages a second over all chats and answers 429 with
``retry_after`` beyond that. A limiter hands out send slots per platform key ("telegram"):

- evenly spaced (a token bucket of depth one, written as GCRA: one "theoretical arrival
  time" per key). A deeper bucket would allow bursts that the platform, which counts
  arrivals in a sliding second, answers with 429;
- a little under the configured rate (``headroom``, 2.5 %: 29.25 of Telegram's 30 a
  second): the platform counts requests as they arrive, and network or scheduling jitter
  moves a request into the next second; 30 evenly spaced sends then span 1.026 s, so a
  request may arrive 25 ms late without a 429 (1.5 % left 15 ms: too little on a busy
  machine, and a 429 costs a whole second of sending);
- never more than that count in any second of actual sends (in-process): senders that woke
  late on a busy machine go at once rather than lose their turn, but cannot catch up in a
  burst;
- after a 429 every sender waits ``retry_after`` and the pace drops to ``SLOW_FACTOR`` of
  the rate, coming back linearly over ``RECOVERY_SECONDS``.

:class:`LocalRateLimiter` keeps the state in this process. :class:`RedisRateLimiter` keeps it
in Redis (one hash per key, updated by a Lua script on Redis's clock), so several bot
processes together stay under the limit. :func:`make_limiter` picks one from the settings.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)

# Telegram's documented overall limit; other platforms do not publish theirs.
DEFAULT_RATE = 30.0
HEADROOM = 0.975
# Mild: most 429s at this pace come from jitter, not from a wrong rate, and the pause
# itself (retry_after for every sender) already costs a second of sending.
SLOW_FACTOR = 0.95
RECOVERY_SECONDS = 10.0
# Chats that are not a remote platform need no pace (the web chat writes to our database).
UNLIMITED = frozenset({"web", "console", "test"})
REDIS_PREFIX = "thidua:ratelimit:"
# Two sends of one process are never closer than this share of the even spacing.
MIN_GAP_SHARE = 0.5
# A sender that wakes this much after its Redis slot takes a new one instead: the slots of
# other processes are already spoken for, and using a stale one would bunch with them.
LATE_SECONDS = 0.005
# Idle keys disappear from Redis after this long.
REDIS_TTL_SECONDS = 3600


class RateLimiter(Protocol):
    async def acquire(self, key: str) -> None:
        """Wait for this process's turn to send one message on platform ``key``."""
        ...

    async def penalize(self, key: str, retry_after: float) -> None:
        """The platform answered 429: everyone waits ``retry_after``, then goes slower."""
        ...

    async def close(self) -> None: ...


def _factor(start: float, slowed_at: float | None) -> float:
    if slowed_at is None:
        return 1.0
    recovered = max(0.0, start - slowed_at) / RECOVERY_SECONDS
    return min(1.0, SLOW_FACTOR + (1.0 - SLOW_FACTOR) * recovered)


@dataclass
class _Bucket:
    tat: float = 0.0  # the earliest moment the next message may go
    blocked_until: float = 0.0
    slowed_at: float | None = None
    sent: deque[float] = field(default_factory=deque)  # the last second's sends
    last_sent: float = float("-inf")


class LocalRateLimiter:
    """One process's limiter: exact, but blind to other processes."""

    def __init__(
        self,
        rate: float = DEFAULT_RATE,
        *,
        rates: Mapping[str, float | None] | None = None,
        headroom: float = HEADROOM,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self.rates = dict(rates or {})
        self.headroom = headroom
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[str, _Bucket] = {}

    def rate_of(self, key: str) -> float | None:
        """Messages per second aimed at for ``key``; None when it needs no limit."""
        default = None if key in UNLIMITED else self.rate
        rate = self.rates.get(key, default)
        return None if rate is None or rate <= 0 else rate * self.headroom

    async def acquire(self, key: str) -> None:
        rate = self.rate_of(key)
        if rate is None:
            return
        bucket = self._buckets.setdefault(key, _Bucket())
        # At most the platform's own count in any second of actual sends: the even pace
        # alone would let senders that woke late (a busy machine) catch up in a burst.
        most = max(1, math.floor(rate / self.headroom + 1e-9))
        while True:
            now = self._clock()
            # Reserve the slot before sleeping: waiters queue up in order, no lock needed
            # (nothing awaits between reading and writing the bucket).
            start = max(now, bucket.tat, bucket.blocked_until)
            bucket.tat = start + 1.0 / (rate * _factor(start, bucket.slowed_at))
            if start > now:
                await self._sleep(start - now)
            woke = self._clock()
            # Late (the process stalled): the slot is still ours, but not right on the heels
            # of the previous send, or the senders released together arrive as a burst.
            min_gap = MIN_GAP_SHARE / rate
            while woke - bucket.last_sent < min_gap:
                await self._sleep(min_gap - (woke - bucket.last_sent))
                woke = self._clock()
            while bucket.sent and woke - bucket.sent[0] >= 1.0:
                bucket.sent.popleft()
            if len(bucket.sent) >= most:
                # The last second is full: wait for its oldest send to age out, then take a
                # fresh slot.
                await self._sleep(1.0 - (woke - bucket.sent[0]) + 0.001)
                continue
            # A 429 while this one slept: its slot fell in the pause, take a new one.
            if woke >= bucket.blocked_until:
                bucket.sent.append(woke)
                bucket.last_sent = woke
                return

    async def penalize(self, key: str, retry_after: float) -> None:
        bucket = self._buckets.setdefault(key, _Bucket())
        until = self._clock() + max(retry_after, 0.0)
        bucket.blocked_until = max(bucket.blocked_until, until)
        bucket.slowed_at = bucket.blocked_until
        bucket.tat = max(bucket.tat, bucket.blocked_until)

    async def close(self) -> None:
        return None


# The same algorithm as LocalRateLimiter, on Redis's clock, atomic per key.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1])
local slow = tonumber(ARGV[2])
local recovery = tonumber(ARGV[3])
local v = redis.call('HMGET', KEYS[1], 'tat', 'blocked', 'slowed')
local tat = tonumber(v[1]) or 0
local blocked = tonumber(v[2]) or 0
local slowed = tonumber(v[3])
local wait = 0
if ARGV[4] == 'penalize' then
  local till = now + tonumber(ARGV[5])
  if till > blocked then blocked = till end
  slowed = blocked
  if tat < blocked then tat = blocked end
else
  local start = math.max(now, tat, blocked)
  local factor = 1
  if slowed then
    factor = math.min(1, slow + (1 - slow) * math.max(0, start - slowed) / recovery)
  end
  tat = start + 1 / (rate * factor)
  wait = start - now
end
local fields = {'tat', string.format('%.6f', tat), 'blocked', string.format('%.6f', blocked)}
if slowed then
  table.insert(fields, 'slowed')
  table.insert(fields, string.format('%.6f', slowed))
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[6]))
return {string.format('%.6f', wait), string.format('%.6f', blocked - now)}
"""


class RedisRateLimiter:
    """The limiter shared by every process that uses the same Redis."""

    def __init__(
        self,
        url: str,
        rate: float = DEFAULT_RATE,
        *,
        rates: Mapping[str, float | None] | None = None,
        headroom: float = HEADROOM,
        prefix: str = REDIS_PREFIX,
    ) -> None:
        from redis.asyncio import Redis  # only when Redis is configured

        self._redis: Any = Redis.from_url(url)
        self._script: Any = self._redis.register_script(_SCRIPT)
        self._local = LocalRateLimiter(rate, rates=rates, headroom=headroom)
        self.prefix = prefix

    def rate_of(self, key: str) -> float | None:
        return self._local.rate_of(key)

    async def _call(self, key: str, mode: str, retry_after: float = 0.0) -> tuple[float, float]:
        rate = self.rate_of(key) or 1.0
        wait, blocked_left = await self._script(
            keys=[self.prefix + key],
            args=[rate, SLOW_FACTOR, RECOVERY_SECONDS, mode, retry_after, REDIS_TTL_SECONDS],
        )
        return float(wait), float(blocked_left)

    async def acquire(self, key: str) -> None:
        if self.rate_of(key) is None:
            return
        while True:
            wait, _blocked = await self._call(key, "acquire")
            if wait <= 0:
                return
            woke_at = time.monotonic() + wait
            await asyncio.sleep(wait)
            if time.monotonic() - woke_at > LATE_SECONDS:
                continue  # woken late: the slot is gone (see LATE_SECONDS)
            # Ask again only if a 429 (from any process) arrived while this one slept.
            _wait, blocked_left = await self._peek(key)
            if blocked_left <= 0:
                return

    async def _peek(self, key: str) -> tuple[float, float]:
        raw = await self._redis.hget(self.prefix + key, "blocked")
        now_s, now_us = await self._redis.time()
        now = float(now_s) + float(now_us) / 1e6
        return 0.0, (float(raw) - now) if raw is not None else 0.0

    async def penalize(self, key: str, retry_after: float) -> None:
        await self._call(key, "penalize", retry_after)

    async def close(self) -> None:
        await self._redis.aclose()


def make_limiter(
    rate: float = DEFAULT_RATE, redis_url: str | None = None, **kwargs: Any
) -> RateLimiter:
    """Redis-based when ``redis_url`` is given (several processes), in-process otherwise."""
    if redis_url:
        log.info("broadcast rate limit shared through Redis")
        return RedisRateLimiter(redis_url, rate, **kwargs)
    return LocalRateLimiter(rate, **kwargs)
