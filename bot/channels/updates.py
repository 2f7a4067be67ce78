"""Running platform updates for channels that parse them by hand (Zalo Bot, Zalo OA).

Three promises, the same for polling and webhooks:

- each update is taken once, even across restarts: its platform id is recorded in the
  database before the engine sees it (Zalo re-sends webhooks it thinks were lost and has no
  update offsets). Recorded *before*, not after: on a text-only channel a repeated "1" could
  answer the next question too, so a message lost in a crash (the person types it again) is
  the lesser harm;
- one person's updates run one after another, so two quick typed answers are answered in the
  order they were typed (the engine would keep the state right either way, but the replies
  could come out swapped);
- at most ``max_concurrent`` updates run at a time, so a burst cannot open more database
  sessions than the pool has; stop() lets those in hand finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.channel_state import claim_update, forget_updates_before
from storage.types import utcnow

log = logging.getLogger(__name__)

# Zalo retries a webhook for minutes, not days: a week of receipts is plenty.
RECEIPTS_KEPT = timedelta(days=7)


@dataclass
class _ChatQueue:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0


class UpdateRunner:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        channel: str,
        *,
        max_concurrent: int = 64,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.channel = channel
        self._slots = asyncio.Semaphore(max_concurrent)
        self._chats: dict[str, _ChatQueue] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.duplicates = 0

    def submit(self, chat_id: str, key: str, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` in the background unless update ``key`` was taken before."""
        task = asyncio.create_task(self._run(chat_id, key, work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, chat_id: str, key: str, work: Callable[[], Awaitable[None]]) -> None:
        try:
            async with self._one_at_a_time(chat_id), self._slots:
                if not await self._claim(key):
                    self.duplicates += 1
                    log.info("%s: update %s already handled, ignored", self.channel, key)
                    return
                await work()
        except Exception:
            # Nobody awaits these tasks: a failure must at least leave a trace.
            log.exception("%s: update %s failed", self.channel, key)

    async def _claim(self, key: str) -> bool:
        async with self.sessionmaker() as session, session.begin():
            return await claim_update(session, self.channel, key, utcnow())

    @contextlib.asynccontextmanager
    async def _one_at_a_time(self, chat_id: str) -> AsyncIterator[None]:
        queue = self._chats.get(chat_id)
        if queue is None:
            queue = self._chats[chat_id] = _ChatQueue()
        queue.waiting += 1
        try:
            async with queue.lock:
                yield
        finally:
            queue.waiting -= 1
            if queue.waiting == 0:
                del self._chats[chat_id]

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - a deadline, not a wait
        """Let the updates in hand finish (up to ``timeout`` seconds), then cancel the rest."""
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        if pending:
            log.warning("%s: %d updates still running at shutdown", self.channel, len(pending))
            for task in pending:
                task.cancel()
            await asyncio.wait(pending)

    async def forget_old(self, kept: timedelta = RECEIPTS_KEPT) -> None:
        """Drop receipts no platform would re-deliver any more; best effort."""
        try:
            async with self.sessionmaker() as session, session.begin():
                dropped = await forget_updates_before(session, self.channel, utcnow() - kept)
        except Exception as exc:  # the bot works without this; the next start tries again
            log.warning("%s: could not prune old update receipts: %s", self.channel, exc)
            return
        if dropped:
            log.info("%s: pruned %d old update receipts", self.channel, dropped)


def as_dict(value: Any) -> dict[str, Any]:
    """A JSON object from a platform, or an empty one for anything else."""
    return value if isinstance(value, dict) else {}


# --- webhook bodies --------------------------------------------------------------------------

# Platform JSON is a few levels deep; thousands of levels are an attack on the parser
# (Python's json raises RecursionError, which would surface as a 500 with a traceback).
MAX_JSON_DEPTH = 32


class BadBody(ValueError):
    """A webhook body that is not an acceptable JSON document; answered with a 4xx."""


async def read_body(request: web.Request, limit: int) -> bytes | None:
    """The request body, or None when it is over ``limit`` bytes.

    Read from the stream, not with ``request.read()``: the webhooks share the web chat's
    server, whose 16 KB ``client_max_size`` is right for the page but not for a platform
    that allows 256 KB.
    """
    if request.content_length is not None and request.content_length > limit:
        return None
    body = bytearray()
    while chunk := await request.content.read(64 * 1024):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


# Strings (their brackets are text) and every byte that is not a bracket, dropped in C before
# the nesting is counted in Python: a 256 KB body is scanned in well under a millisecond.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(raw: bytes) -> int:
    """How deeply arrays and objects nest in ``raw`` (strings skipped), without parsing."""
    depth = deepest = 0
    for byte in _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS):
        if byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def load_json(raw: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a webhook body that has passed its secret or signature check."""
    if json_depth(raw) > max_depth:
        raise BadBody("nested too deeply")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise BadBody("not JSON") from exc
