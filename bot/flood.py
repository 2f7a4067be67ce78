"""The flood guard shared by several bot processes through Redis (REDIS_URL).

Behind a load balancer one person's messages reach different processes; with a bucket per
process their budget would be multiplied by the number of processes. Here the bucket of
:class:`handlers.engine.flood.LocalFloodGuard` lives in Redis instead (one hash per person,
updated by a Lua script on Redis's clock, so checks of two processes never interleave).

Redis being away must not silence the bot: a failed check falls back to this process's own
buckets, and the failure is logged once until Redis answers again.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from handlers.engine.flood import (
    DEFAULT_BURST,
    DEFAULT_RATE,
    FloodGuard,
    LocalFloodGuard,
    Verdict,
)

log = logging.getLogger(__name__)

REDIS_PREFIX = "thidua:flood:"

_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local v = redis.call('HMGET', KEYS[1], 'tokens', 'at', 'warned')
local tokens = tonumber(v[1])
local warned = v[3] == '1'
if tokens == nil then
  tokens = burst
else
  tokens = math.min(burst, tokens + (now - tonumber(v[2])) * rate)
  if tokens >= burst then warned = false end
end
local verdict = 'pass'
if tokens >= 1 then
  tokens = tokens - 1
elseif warned then
  verdict = 'drop'
else
  warned = true
  verdict = 'warn'
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens),
  'at', string.format('%.6f', now), 'warned', warned and '1' or '0')
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return verdict
"""


class RedisFloodGuard:
    """Per-person buckets in Redis, the same rule as the local guard."""

    def __init__(
        self,
        url: str,
        burst: int = DEFAULT_BURST,
        rate: float = DEFAULT_RATE,
        *,
        prefix: str = REDIS_PREFIX,
    ) -> None:
        from redis.asyncio import Redis  # only when Redis is configured

        self._redis: Any = Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._script: Any = self._redis.register_script(_SCRIPT)
        self._fallback = LocalFloodGuard(burst, rate)
        self.burst, self.rate, self.prefix = burst, rate, prefix
        # A bucket untouched this long is full again: Redis may forget it.
        self._ttl = math.ceil(burst / rate) + 1
        self._failing = False

    async def check(self, key: str) -> Verdict:
        try:
            raw = await self._script(
                keys=[self.prefix + key], args=[self.burst, self.rate, self._ttl]
            )
        except Exception as exc:  # redis errors, timeouts, a refused connection
            if not self._failing:
                log.warning("flood guard: Redis unavailable (%s), using local buckets", exc)
                self._failing = True
            return self._fallback.take(key)
        if self._failing:
            log.info("flood guard: Redis is back")
            self._failing = False
        return Verdict(raw.decode() if isinstance(raw, bytes) else str(raw))

    async def close(self) -> None:
        await self._redis.aclose()


def make_flood_guard(
    burst: int = DEFAULT_BURST, rate: float = DEFAULT_RATE, redis_url: str | None = None
) -> FloodGuard:
    """Redis-based when ``redis_url`` is given (several processes), in-process otherwise."""
    if redis_url:
        return RedisFloodGuard(redis_url, burst, rate)
    return LocalFloodGuard(burst, rate)
