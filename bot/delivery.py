"""Delivering messages through a platform API that fails now and then.

Telegram answers 429 with how long to wait, 5xx while it restarts, 403 once a person has
blocked the bot; aiogram raises these and retries nothing. :func:`call_with_retry` is the one
policy for every outgoing call: wait out rate limits, back off on transient failures, give up
at once on permanent ones, and always leave a log line. Other channels can reuse it by raising
:class:`RateLimited`, :class:`TransientError` or :class:`Blocked` from their HTTP code.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TypeVar

from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# A rate limit is not a failure: it has its own, larger budget so a burst (a broadcast to a
# whole union) is slowed down rather than dropped.
MAX_RATE_WAITS = 20
MAX_BACKOFF = 30.0

# Set by a sender that paces itself (bot.broadcast): on a 429 it is awaited instead of a
# plain sleep, so the wait is shared with every other sender and the retry takes a slot of
# the shared pace rather than jumping the queue. Takes ``retry_after`` in seconds.
rate_limit_waiter: ContextVar[Callable[[float], Awaitable[None]] | None] = ContextVar(
    "rate_limit_waiter", default=None
)


class RateLimited(Exception):
    """The platform asks to wait ``retry_after`` seconds before calling again."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited, retry after {retry_after}s")
        self.retry_after = retry_after


class TransientError(Exception):
    """A failure worth retrying: the server is restarting, the network dropped."""


class Blocked(Exception):
    """The recipient has blocked the bot (or left): retrying cannot help."""


class DeliveryError(Exception):
    """A call was given up; the reason has already been logged."""

    def __init__(
        self, what: str, reason: str, *, blocked: bool = False, unreachable: bool = False
    ) -> None:
        super().__init__(f"{what}: {reason}")
        self.what = what
        self.reason = reason
        # Callers that keep delivery reports (reminders, broadcasts) tell "blocked" apart.
        self.blocked = blocked
        # The platform refuses until the person writes again (Zalo OA: no interaction in 7
        # days); reports show it as "ngoài thời hạn tương tác", and retrying soon cannot help.
        self.unreachable = unreachable

    @property
    def kind(self) -> str:
        """The outcome a delivery report records: "blocked", "unreachable" or "failed"."""
        if self.blocked:
            return "blocked"
        return "unreachable" if self.unreachable else "failed"


async def call_with_retry(
    fn: Callable[[], Awaitable[T]],
    *,
    what: str,
    max_attempts: int = 5,
    base_delay: float = 0.5,
    max_rate_waits: int = MAX_RATE_WAITS,
) -> T:
    """Run ``fn()`` (a fresh call each time) until it succeeds or cannot succeed.

    Raises :class:`DeliveryError` when giving up: at once for a blocked recipient or a
    request the platform rejects, after ``max_attempts`` for transient failures, after
    ``max_rate_waits`` rate-limit waits.
    """
    failures = 0
    rate_waits = 0
    while True:
        try:
            return await fn()
        except (TelegramRetryAfter, RateLimited) as exc:
            rate_waits += 1
            wait = float(exc.retry_after)
            if rate_waits > max_rate_waits:
                log.error("%s: still rate limited after %d waits, giving up", what, rate_waits - 1)
                raise DeliveryError(what, "rate limited") from exc
            log.warning("%s: rate limited, waiting %.1fs", what, wait)
            waiter = rate_limit_waiter.get()
            await (waiter(wait) if waiter is not None else asyncio.sleep(wait))
        except (TelegramForbiddenError, Blocked) as exc:
            log.warning("%s: recipient blocked the bot, giving up (%s)", what, exc)
            raise DeliveryError(what, "blocked", blocked=True) from exc
        except TelegramEntityTooLarge as exc:
            # A subclass of the network error, but sending the same file again cannot help.
            log.error("%s: file too large (%s)", what, exc)
            raise DeliveryError(what, "too large") from exc
        except (
            TelegramServerError,
            TelegramNetworkError,
            # A proxy in front of the API answering 502 with an HTML page, not JSON.
            ClientDecodeError,
            TransientError,
        ) as exc:
            failures += 1
            if failures >= max_attempts:
                log.error("%s: giving up after %d attempts (%s)", what, failures, exc)
                raise DeliveryError(what, f"failed {failures} times: {exc}") from exc
            # Exponential back-off with jitter, so many senders do not retry in lockstep.
            delay = min(base_delay * 2 ** (failures - 1), MAX_BACKOFF)
            delay *= random.uniform(0.8, 1.2)
            log.warning("%s: attempt %d failed (%s), retrying in %.2fs", what, failures, exc, delay)
            await asyncio.sleep(delay)
        except TelegramAPIError as exc:
            # 400 and friends: the request itself is wrong, the same request fails again.
            log.error("%s: rejected by the platform (%s)", what, exc)
            raise DeliveryError(what, f"rejected: {exc}") from exc
