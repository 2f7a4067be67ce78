"""The flood guard: one person sending dozens of messages a second is slowed down.

Every address (channel and id) has a token bucket: ``burst`` updates at once, refilled at
``rate`` per second. An update beyond it is dropped before it reaches the database. The first
dropped update of a flood is answered with one polite notice; the rest are dropped silently
until the person has slowed down (their bucket is full again), so a flood never turns into a
flood of replies.

Dropped rather than queued, on purpose:
- a queued flood would be answered message by message long after it was sent, each answer
  to a question already gone (on text-only channels a repeated "1" would even answer the
  next questions), and it would hold a worker and a database connection meanwhile;
- nothing of a dropped update has been committed, so the conversation waits at the same
  question and the person simply sends the answer again, as the notice asks.
A person typing, or tapping buttons as fast as the replies come, stays far below the limit.

The state lives in memory: a restart loses only the buckets, which costs nothing that must
survive. Several processes each keep their own (a person's budget is then up to N times as
large); ``bot.flood.RedisFloodGuard`` shares the buckets through Redis instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

# A person may send this many updates at once (a fast journey of taps fits in easily)...
DEFAULT_BURST = 20
# ...and keep sending this many per second for as long as they like.
DEFAULT_RATE = 2.0
# Buckets kept before idle ones (full again) are forgotten.
PRUNE_FROM = 10_000


class Verdict(StrEnum):
    PASS = "pass"  # handle the update
    WARN = "warn"  # over the limit: drop it, and say once that it was too fast
    DROP = "drop"  # over the limit, and already told: drop it silently


class FloodGuard(Protocol):
    async def check(self, key: str) -> Verdict:
        """Take one update of ``key`` (a person's address) into account; say what to do."""
        ...

    async def close(self) -> None: ...


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    # Told already during this flood; cleared once the bucket is full again.
    warned: bool = False


class LocalFloodGuard:
    """The buckets of this process, in a dict; checking costs a few arithmetic operations."""

    def __init__(
        self,
        burst: int = DEFAULT_BURST,
        rate: float = DEFAULT_RATE,
        *,
        clock: Callable[[], float] = time.monotonic,
        prune_from: int = PRUNE_FROM,
    ) -> None:
        if burst < 1 or rate <= 0:
            raise ValueError("burst must be at least 1 and rate positive")
        self.burst = burst
        self.rate = rate
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._prune_from = prune_from
        self._prune_at = prune_from

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> Verdict:
        """The synchronous check (no await between reading and writing the bucket)."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            if len(self._buckets) > self._prune_at:
                self._prune(now)
        else:
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            if bucket.tokens >= self.burst:
                bucket.warned = False  # slowed down: a new flood gets a new notice
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return Verdict.PASS
        if bucket.warned:
            return Verdict.DROP
        bucket.warned = True
        return Verdict.WARN

    async def check(self, key: str) -> Verdict:
        return self.take(key)

    async def close(self) -> None:
        return None

    def _prune(self, now: float) -> None:
        """Forget buckets that are full again: they would start over exactly the same."""
        refill = self.burst / self.rate
        self._buckets = {
            key: bucket for key, bucket in self._buckets.items() if now - bucket.at < refill
        }
        # Pruning is O(n): do it again only when the dict has doubled.
        self._prune_at = max(self._prune_from, 2 * len(self._buckets))
