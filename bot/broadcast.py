"""The broadcast sender: an announcement to every recipient at platform speed, losing nothing.

How one broadcast goes out (:class:`BroadcastSender`):

1. The sender takes the broadcast's lease (one sender per broadcast; renewed every few
   seconds; a crashed sender's lease runs out, or is taken over at once when its process is
   known to be dead on this host).
2. Rows a crashed sender left ``in_flight`` go back to pending, marked "maybe twice": their
   message may or may not have arrived, and no platform lets us ask. They are sent again:
   receiving a launch announcement twice is a nuisance, missing it is a failure. The report
   names them ("có thể đã nhận hai lần").
3. Recipients are written into the delivery log in batches (storage.broadcasts), while the
   first batches are already being sent.
4. Each message part: the row goes pending → in_flight (committed) → the platform call →
   sent / blocked / unreachable / failed, or back to pending for the next part or a retry
   (committed). At most ``window`` (3) calls are in flight, so a kill -9 leaves at most 3
   recipients of unknown fate. Parts to one chat are a second apart (Telegram's pace per
   chat), kept in the row's ``not_before`` so the pace survives a restart too.
5. Every call first takes a slot from the shared limiter (bot.ratelimit). On 429 the wait is
   shared by every sender and the pace slows down; 5xx and network errors are retried with
   back-off (bot.delivery), then the recipient is retried later, twice; 403 is "blocked" at
   once; Zalo's interaction window is "unreachable".
6. Progress is shown to the officer: their confirmation message is edited into a progress
   bar with an ETA where the channel can edit messages (Telegram), and the final report is
   queued in the outbox in the same transaction that marks the broadcast done.

:class:`BroadcastService` runs due broadcasts (scheduled ones when their time comes, and
interrupted ones after a restart) next to the channels; :func:`run_due_broadcasts` is the
same as one plain call.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import undefer

from bot import metrics
from bot.channels.base import Channel
from bot.delivery import DeliveryError, rate_limit_waiter
from bot.ratelimit import LocalRateLimiter, RateLimiter
from handlers.broadcasts import (
    Announcement,
    ReportData,
    announcement_parts,
    build_report,
    progress_text,
    report_text,
)
from handlers.engine.prompt import Address, Outgoing, Reply
from handlers.engine.runner import queue_outgoing
from handlers.i18n import use_locale
from storage.broadcasts import (
    DeliveryCounts,
    DeliveryRow,
    broadcast_audience,
    due_broadcasts,
    due_rows,
    mark_in_flight,
    materialise_batch,
    next_wake,
    record_outcome,
    recover_in_flight,
    release_lease,
    renew_lease,
    sending_broadcasts,
    take_lease,
    unsettled_on,
)
from storage.models import Broadcast, BroadcastStatus, DeliveryState, Person, Unit
from storage.types import utcnow

log = logging.getLogger(__name__)

WINDOW = 3  # platform calls in flight at once, per broadcast
LEASE = timedelta(seconds=30)
HEARTBEAT_SECONDS = 5.0
# Each edit of the progress message takes a send slot too: often enough to watch, no more.
PROGRESS_SECONDS = 10.0
# Telegram allows about one message a second to one chat; parts of one announcement wait.
PART_GAP = timedelta(seconds=1.1)
# A recipient whose send failed (after bot.delivery's own retries) is tried again later.
MAX_TRIES = 3
RETRY_AFTER = (timedelta(seconds=30), timedelta(minutes=2))
# Reasons for which trying again cannot help (bot.delivery's wording).
FINAL_REASONS = ("rejected", "too large", "bad address")
FETCH = 200
IDLE_POLL_SECONDS = 3.0
# Outcome writes retried while the database is briefly away, before leaving the row in
# flight (then it counts as "maybe twice" at the next start).
OUTCOME_WRITE_TRIES = 5
CRASH_PAUSE_SECONDS = 30.0

Clock = Callable[[], datetime]


@runtime_checkable
class EditableChannel(Protocol):
    """A channel that can change a message it sent (Telegram): progress in one message."""

    async def post(self, address_external_id: str, reply: Reply) -> str: ...

    async def edit(self, address_external_id: str, message_ref: str, reply: Reply) -> None: ...


def process_owner() -> str:
    """Who holds a lease: host, process id, and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _dead_here(owner: str | None) -> bool:
    """Whether ``owner`` names a process of this host that no longer exists (kill -9)."""
    if not owner:
        return False
    host, _sep, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return _is_zombie(int(pid_text))


def _is_zombie(pid: int) -> bool:
    # A killed child not yet reaped by its parent still answers kill(pid, 0).
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


@dataclass
class SendStats:
    """What this process saw while sending (the log in the database is the full truth)."""

    calls: int = 0
    rate_limited: int = 0
    retried: int = 0
    recovered: int = 0
    started: float = field(default_factory=time.monotonic)


class _Stop(Exception):
    """The lease was lost (cancelled, or taken over): stop sending this broadcast."""


class BroadcastSender:
    """Sends one broadcast to the end (or until stopped, cancelled or the lease is lost)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        channels: Mapping[str, Channel],
        limiter: RateLimiter | None = None,
        *,
        owner: str | None = None,
        window: int = WINDOW,
        timezone: str = "Asia/Ho_Chi_Minh",
        default_locale: str = "vi",
        clock: Clock = utcnow,
        progress_seconds: float = PROGRESS_SECONDS,
        on_queued: Callable[[], None] | None = None,
        all_channels: bool = True,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.channels = channels
        self.limiter = limiter or LocalRateLimiter()
        self.owner = owner or process_owner()
        self.window = window
        self.tz = ZoneInfo(timezone)
        self.default_locale = default_locale
        self.clock = clock
        self.progress_seconds = progress_seconds
        self.on_queued = on_queued
        self.all_channels = all_channels
        # How often the lease is renewed, which is also how soon a cancel is noticed.
        self.heartbeat_seconds = heartbeat_seconds
        self.stats = SendStats()
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Finish the calls in flight, record them, release the lease (resumed later)."""
        self._stopping.set()

    def nominal_rate(self) -> float:
        """Messages a second to expect before any have been measured (for the first ETA)."""
        rate_of = getattr(self.limiter, "rate_of", None)
        rate = rate_of("telegram") if rate_of is not None else None
        return float(rate or 25.0)

    # --- the whole broadcast --------------------------------------------------------------

    async def run(self, broadcast_id: int) -> str | None:
        """Send the broadcast; returns its status at the end, or None if it was not ours
        to send (not due, or another live sender holds it)."""
        if not await self._take(broadcast_id):
            return None
        try:
            return await self._send_all(broadcast_id)
        finally:
            with contextlib.suppress(Exception):
                async with self.sessionmaker() as session, session.begin():
                    await release_lease(session, broadcast_id, self.owner)

    async def _take(self, broadcast_id: int) -> bool:
        now = self.clock()
        async with self.sessionmaker() as session, session.begin():
            current = await session.scalar(
                select(Broadcast.owner).where(Broadcast.id == broadcast_id)
            )
            dead = current if _dead_here(current) else None
            if not await take_lease(session, broadcast_id, self.owner, now, LEASE, dead_owner=dead):
                return False
            recovered = await recover_in_flight(session, broadcast_id)
        if recovered:
            self.stats.recovered += recovered
            log.warning(
                "broadcast %s: %d recipient(s) were in flight when the last sender stopped; "
                "sending them again (they may receive it twice)",
                broadcast_id,
                recovered,
            )
        return True

    async def _send_all(self, broadcast_id: int) -> str:
        async with self.sessionmaker() as session:
            broadcast = await session.scalar(
                select(Broadcast)
                .where(Broadcast.id == broadcast_id)
                .options(undefer(Broadcast.file_content))
            )
            assert broadcast is not None
            unit = await session.get(Unit, broadcast.unit_id)
            audience = await broadcast_audience(session, broadcast)
            content = broadcast.file_content
        announcement = Announcement.of(broadcast, unit.name if unit else "", content)
        run = _Run(self, broadcast, announcement)
        materialiser = asyncio.create_task(run.materialise(audience))
        heartbeat = asyncio.create_task(run.heartbeat())
        try:
            await run.send_loop(materialiser)
        except _Stop:
            log.info("broadcast %s: stopped (cancelled or taken over)", broadcast_id)
        finally:
            for task in (materialiser, heartbeat):
                task.cancel()
            await asyncio.gather(materialiser, heartbeat, return_exceptions=True)
            await run.drain()
        return await run.finish()


class _Run:
    """The moving parts of one broadcast's sending, so the steps read simply."""

    def __init__(
        self, sender: BroadcastSender, broadcast: Broadcast, announcement: Announcement
    ) -> None:
        self.sender = sender
        self.id = broadcast.id
        self.broadcast = broadcast
        self.announcement = announcement
        self.materialised = broadcast.materialised
        self.lost = False
        self.active: set[int] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.slots = asyncio.Semaphore(sender.window)
        self.wake = asyncio.Event()
        self.parts_cache: dict[tuple[str, str], list[Reply]] = {}
        self.samples: deque[tuple[float, int]] = deque(maxlen=12)
        self.progress_ref = broadcast.progress_ref
        self.last_progress = 0.0
        # None: this process runs every channel of the bot, and a recipient on another one
        # fails ("not running"); otherwise only its own channels' recipients are taken.
        self.channel_names = None if sender.all_channels else sorted(sender.channels)

    # --- recipients ----------------------------------------------------------------------

    async def materialise(self, audience: Any) -> None:
        while not self.materialised:
            async with self.sender.sessionmaker() as session, session.begin():
                broadcast = await session.get(Broadcast, self.id)
                assert broadcast is not None
                step = await materialise_batch(session, broadcast, audience, self.sender.clock())
                self.materialised = step.done
                self.broadcast.total, self.broadcast.no_chat = broadcast.total, broadcast.no_chat
            self.wake.set()
            await asyncio.sleep(0)  # let the senders in between batches

    # --- sending -------------------------------------------------------------------------

    async def send_loop(self, materialiser: asyncio.Task[None]) -> None:
        after = 0
        while not self.sender._stopping.is_set():
            if self.lost:
                raise _Stop()
            if materialiser.done() and materialiser.exception() is not None:
                raise materialiser.exception()  # type: ignore[misc]
            now = self.sender.clock()
            async with self.sender.sessionmaker() as session:
                rows = await due_rows(
                    session, self.id, now, self.channel_names, after_id=after, limit=FETCH
                )
            rows = [r for r in rows if r.id not in self.active]
            if rows:
                for row in rows:
                    await self.slots.acquire()
                    if self.sender._stopping.is_set() or self.lost:
                        self.slots.release()
                        break
                    self._start(row)
                    after = row.id
                continue
            if after:
                after = 0  # back to the start: parts and retries wait there with lower ids
                await asyncio.sleep(0.05)
                continue
            if await self._finished():
                return
            await self._idle()

    def _start(self, row: DeliveryRow) -> None:
        self.active.add(row.id)
        task = asyncio.create_task(self._deliver(row))
        self.tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self.tasks.discard(t)
            self.active.discard(row.id)
            self.slots.release()
            self.wake.set()

        task.add_done_callback(done)

    async def _finished(self) -> bool:
        """Whether everything this process can send is settled. Recipients on a channel
        this process does not run stay pending for a process that does (the broadcast then
        stays "sending" with its lease released, and the bot's service finishes it)."""
        if not self.materialised or self.tasks:
            return False
        async with self.sender.sessionmaker() as session:
            return await unsettled_on(session, self.id, self.channel_names) == 0

    async def _idle(self) -> None:
        """Nothing due now: wait for a task to end, a batch of recipients, or the next due."""
        async with self.sender.sessionmaker() as session:
            wake_at = await next_wake(session, self.id, self.channel_names)
        timeout = IDLE_POLL_SECONDS
        if wake_at is not None:
            timeout = min(timeout, max((wake_at - self.sender.clock()).total_seconds(), 0.01))
        self.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout)

    async def drain(self) -> None:
        """Let the calls in flight finish and record their outcome (never cut one off)."""
        if self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    def _parts(self, channel: str, locale: str | None) -> list[Reply]:
        key = (channel, locale or self.sender.default_locale)
        parts = self.parts_cache.get(key)
        if parts is None:
            with use_locale(key[1]):
                parts = announcement_parts(self.announcement, channel)
            self.parts_cache[key] = parts
        return parts

    async def _deliver(self, row: DeliveryRow) -> None:
        sender = self.sender
        async with sender.sessionmaker() as session, session.begin():
            taken = await mark_in_flight(session, row.id, sender.clock())
        if taken is None:
            return  # taken or not due any more
        parts_done, attempts = taken
        channel = sender.channels.get(row.channel)
        if channel is None:
            await self._outcome(
                row.id,
                state=DeliveryState.FAILED,
                parts_done=parts_done,
                error=f"channel {row.channel} is not running in this bot",
            )
            return
        parts = self._parts(row.channel, row.locale)
        part = parts[min(parts_done, len(parts) - 1)]
        try:
            await sender.limiter.acquire(row.channel)
            token = rate_limit_waiter.set(self._waiter(row.channel))
            try:
                sender.stats.calls += 1
                await channel.send(row.external_id, part)
            finally:
                rate_limit_waiter.reset(token)
        except DeliveryError as exc:
            await self._failed(row.id, attempts, parts_done, exc.kind, exc.reason)
            return
        except Exception as exc:  # a bug or an unwrapped network error: retry later
            log.exception("broadcast %s: sending to %s failed", self.id, row.external_id)
            reason = f"{exc.__class__.__name__}: {exc}"
            await self._failed(row.id, attempts, parts_done, "failed", reason)
            return
        parts_done += 1
        if parts_done < len(parts):
            await self._outcome(
                row.id,
                state=DeliveryState.PENDING,
                parts_done=parts_done,
                not_before=sender.clock() + PART_GAP,
            )
        else:
            await self._outcome(row.id, state=DeliveryState.SENT, parts_done=parts_done)

    def _waiter(self, key: str) -> Callable[[float], Any]:
        limiter, stats = self.sender.limiter, self.sender.stats

        async def wait(retry_after: float) -> None:
            stats.rate_limited += 1
            await limiter.penalize(key, retry_after)
            await limiter.acquire(key)

        return wait

    async def _failed(
        self, row_id: int, attempts: int, parts_done: int, kind: str, reason: str
    ) -> None:
        """Record a failed call: final for blocked and unreachable people and for requests
        the platform refuses; otherwise the recipient is tried again later."""
        if kind in (DeliveryState.BLOCKED, DeliveryState.UNREACHABLE):
            await self._outcome(row_id, state=kind, parts_done=parts_done, error=reason)
            return
        if reason.startswith(FINAL_REASONS) or attempts >= MAX_TRIES:
            await self._outcome(
                row_id, state=DeliveryState.FAILED, parts_done=parts_done, error=reason
            )
            return
        self.sender.stats.retried += 1
        delay = RETRY_AFTER[min(attempts - 1, len(RETRY_AFTER) - 1)]
        await self._outcome(
            row_id,
            state=DeliveryState.PENDING,
            parts_done=parts_done,
            error=reason,
            not_before=self.sender.clock() + delay,
        )

    async def _outcome(
        self,
        row_id: int,
        *,
        state: str,
        parts_done: int,
        error: str | None = None,
        not_before: datetime | None = None,
    ) -> None:
        metrics.broadcast_outcome(state)
        delay = 0.2
        for attempt in range(1, OUTCOME_WRITE_TRIES + 1):
            try:
                async with self.sender.sessionmaker() as session, session.begin():
                    await record_outcome(
                        session,
                        row_id,
                        state=state,
                        parts_done=parts_done,
                        now=self.sender.clock(),
                        error=error[:500] if error else None,
                        not_before=not_before,
                    )
                return
            except Exception:
                if attempt == OUTCOME_WRITE_TRIES:
                    # Left in flight: the next start re-sends it and reports "maybe twice".
                    log.exception("broadcast %s: outcome of row %s not recorded", self.id, row_id)
                    return
                await asyncio.sleep(delay)
                delay *= 2

    # --- lease and progress ----------------------------------------------------------------

    async def heartbeat(self) -> None:
        """Renew the lease and show the progress, every few seconds."""
        with contextlib.suppress(Exception):
            await self.show_progress()
        while True:
            await asyncio.sleep(self.sender.heartbeat_seconds)
            try:
                async with self.sender.sessionmaker() as session, session.begin():
                    kept = await renew_lease(
                        session, self.id, self.sender.owner, self.sender.clock(), LEASE
                    )
                if not kept:
                    self.lost = True
                    self.wake.set()
                    return
            except Exception:
                log.warning("broadcast %s: lease renewal failed", self.id, exc_info=True)
            if time.monotonic() - self.last_progress >= self.sender.progress_seconds:
                with contextlib.suppress(Exception):
                    await self.show_progress()

    async def report_data(self, session: AsyncSession) -> ReportData:
        return await build_report(session, self.id, self._eta)

    def _eta(self, counts: DeliveryCounts) -> float | None:
        now = time.monotonic()
        self.samples.append((now, counts.done))
        first_t, first_done = self.samples[0]
        if now - first_t < 2 or counts.done <= first_done:
            rate = self.sender.nominal_rate()
        else:
            rate = (counts.done - first_done) / (now - first_t)
        left = counts.left if self.materialised else max(self.broadcast.total, 1) - counts.done
        return left / rate if rate else None

    async def show_progress(self) -> None:
        self.last_progress = time.monotonic()
        async with self.sender.sessionmaker() as session, session.begin():
            data = await self.report_data(session)
            await session.execute(
                update(Broadcast)
                .where(Broadcast.id == self.id)
                .values(counts=data.counts.as_json(), reported_at=self.sender.clock())
            )
        await self._show(data, final=False)

    async def _show(self, data: ReportData, *, final: bool) -> None:
        """Edit the officer's progress message (posting it first if there is none yet)."""
        b = self.broadcast
        channel = self.sender.channels.get(b.progress_channel or "")
        if channel is None or b.progress_external_id is None:
            return
        locale = await self._officer_locale()
        with use_locale(locale):
            reply = Reply(progress_text(data) if not final else report_text(data, self.sender.tz))
        if not isinstance(channel, EditableChannel):
            return  # no editing there: the start and the final report are enough
        await self.sender.limiter.acquire(channel.name)
        try:
            if self.progress_ref is None:
                self.progress_ref = await channel.post(b.progress_external_id, reply)
                async with self.sender.sessionmaker() as session, session.begin():
                    await session.execute(
                        update(Broadcast)
                        .where(Broadcast.id == self.id)
                        .values(progress_ref=self.progress_ref)
                    )
            else:
                await channel.edit(b.progress_external_id, self.progress_ref, reply)
        except DeliveryError as exc:
            log.info("broadcast %s: progress not shown (%s)", self.id, exc)
            if not final:
                self.progress_ref = None  # deleted or too old: post a new one next time

    async def _officer_locale(self) -> str:
        creator = self.broadcast.created_by_id
        if creator is None:
            return self.sender.default_locale
        async with self.sender.sessionmaker() as session:
            locale = await session.scalar(select(Person.locale).where(Person.id == creator))
        return locale or self.sender.default_locale

    async def finish(self) -> str:
        """Mark the broadcast done (if everything is settled) and queue the report."""
        sender = self.sender
        async with sender.sessionmaker() as session, session.begin():
            broadcast = await session.get(Broadcast, self.id)
            assert broadcast is not None
            data = await self.report_data(session)
            done = (
                broadcast.status == BroadcastStatus.SENDING
                and broadcast.owner == sender.owner
                and broadcast.materialised
                and data.counts.left == 0
            )
            if done:
                broadcast.status = BroadcastStatus.DONE
                broadcast.finished_at = sender.clock()
                data.status = BroadcastStatus.DONE
            broadcast.counts = data.counts.as_json()
            status = broadcast.status
            report_to = (broadcast.progress_channel, broadcast.progress_external_id)
            finished = status in (BroadcastStatus.DONE, BroadcastStatus.CANCELLED)
            if finished and report_to[0] and report_to[1]:
                # Queued with the status change: a crash cannot lose the report or send it
                # twice (finish() of a finished broadcast is not reached again).
                with use_locale(await self._officer_locale()):
                    text = report_text(data, sender.tz)
                queue_outgoing(
                    session, [Outgoing(Address(report_to[0], report_to[1]), Reply(text))]
                )
        if finished:
            with contextlib.suppress(Exception):
                await self._show(data, final=True)
            if sender.on_queued is not None:
                sender.on_queued()
        states = ", ".join(f"{k} {v}" for k, v in sorted(data.counts.by_state.items()))
        log.info("broadcast %s: %s (%s)", self.id, status, states)
        return status


# --- running due broadcasts --------------------------------------------------------------------


async def run_due_broadcasts(
    sessionmaker: async_sessionmaker[AsyncSession],
    channels: Mapping[str, Channel],
    now: datetime | None = None,
    *,
    limiter: RateLimiter | None = None,
    **sender_options: Any,
) -> dict[int, str | None]:
    """Send every broadcast that is due at ``now`` (scheduled, or interrupted), together,
    each to the end; returns each one's final status (None: another sender had it).

    A plain async function for a scheduler job or a cron-like CLI call. A long broadcast
    keeps this call busy for its whole duration; :class:`BroadcastService` starts them as
    tasks instead, so a new one does not wait for the last one to end.
    """
    moment = now or utcnow()
    async with sessionmaker() as session:
        due = [b.id for b in await due_broadcasts(session, moment)]
    shared = limiter or LocalRateLimiter()
    senders = {
        bid: BroadcastSender(sessionmaker, channels, shared, **sender_options) for bid in due
    }
    results = await asyncio.gather(*(s.run(bid) for bid, s in senders.items()))
    return dict(zip(senders, results, strict=True))


class BroadcastService:
    """Runs due broadcasts next to the channels, until :meth:`stop`.

    Polls the table every few seconds (a broadcast confirmed for "now" starts within that);
    :meth:`nudge` looks at once. Each broadcast is a task with its own sender; all share the
    limiter. :meth:`stop` lets every sender finish the calls in flight and release its
    lease, so a restart resumes without a "maybe twice".
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        channels: Mapping[str, Channel],
        limiter: RateLimiter | None = None,
        *,
        poll_seconds: float = IDLE_POLL_SECONDS,
        clock: Clock = utcnow,
        **sender_options: Any,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.channels = channels
        self.limiter = limiter or LocalRateLimiter()
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.sender_options = {"clock": clock, **sender_options}
        self.owner = process_owner()
        self.running: dict[int, tuple[BroadcastSender, asyncio.Task[str | None]]] = {}
        self._crashed: dict[int, float] = {}
        self._wake = asyncio.Event()
        self._stopping = False

    def nudge(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            try:
                await self.start_due()
            except Exception:  # the database may be restarting: try again shortly
                log.exception("looking for due broadcasts failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
        await self._stop_senders()

    async def start_due(self) -> list[int]:
        """Start a sender for each due broadcast not already sent by this process."""
        async with self.sessionmaker() as session:
            due = [b.id for b in await due_broadcasts(session, self.clock())]
            # A sender of this host killed mid-broadcast (kill -9, a crash) still holds its
            # lease for up to LEASE: taken over now (BroadcastSender._take checks the process
            # is gone), so a restarted bot resumes at once instead of after the lease.
            due += [
                b.id
                for b in await sending_broadcasts(session)
                if b.id not in due and b.owner != self.owner and _dead_here(b.owner)
            ]
        started = []
        for broadcast_id in due:
            if (
                broadcast_id in self.running
                or self._crashed.get(broadcast_id, 0) > time.monotonic()
            ):
                continue
            sender = BroadcastSender(
                self.sessionmaker,
                self.channels,
                self.limiter,
                owner=self.owner,
                **self.sender_options,
            )
            task = asyncio.create_task(sender.run(broadcast_id), name=f"broadcast-{broadcast_id}")
            self.running[broadcast_id] = (sender, task)
            task.add_done_callback(functools.partial(self._ended, broadcast_id))
            started.append(broadcast_id)
        return started

    def _ended(self, broadcast_id: int, task: asyncio.Task[str | None]) -> None:
        self.running.pop(broadcast_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("broadcast %s: sender crashed", broadcast_id, exc_info=task.exception())
            # Picked up again (its lease was released), but not in a tight loop.
            self._crashed[broadcast_id] = time.monotonic() + CRASH_PAUSE_SECONDS
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def _stop_senders(self) -> None:
        for sender, _task in list(self.running.values()):
            sender.stop()
        tasks = [task for _sender, task in self.running.values()]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
