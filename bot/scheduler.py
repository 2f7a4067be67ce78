"""The schedule: reminder passes at their due times, digests on their days, one leader.

Nothing about the schedule is stored: the jobs are recomputed from the campaign table when
this process becomes the leader, and again every few minutes (a campaign loaded with the CLI
is picked up without a restart). What must survive a restart is in the database already:
the reminder log makes every pass idempotent, and a catch-up pass at start sends what fell
due while no process was running, once.

The jobs themselves are the plain async functions :func:`remind_job`, :func:`digest_job` and
:func:`catch_up_job`, which take their dependencies and open their own sessions; the CLI and
the tests call them directly.

Several processes on one PostgreSQL: only the holder of the advisory lock
(:class:`storage.leader.LeaderLock`) runs APScheduler; the others retry every few seconds
and take over when the holder's connection goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from bot import metrics
from bot.config import Settings
from handlers.digest import NO_FILES, ChartFn, digest_pass, next_digest_slot
from handlers.reminders import (
    PassReport,
    QuietHours,
    ReminderPolicy,
    due_points,
    reminder_pass,
    upcoming_sends,
)
from storage.leader import LeaderLock
from storage.models import Campaign
from storage.repo import campaign_end
from storage.types import utcnow

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Notify = Callable[[], None]

REFRESH_SECONDS = 300.0
STANDBY_RETRY_SECONDS = 5.0


def policy_from_settings(settings: Settings) -> ReminderPolicy:
    """The reminder policy from the settings (timezone, quiet hours, default language, and
    whether Zalo gets files as links: with an address for them, as bot.app sets up)."""
    return ReminderPolicy(
        timezone=settings.timezone,
        quiet=QuietHours(settings.quiet_start, settings.quiet_end),
        default_locale=settings.locale,
        linked_file_channels=NO_FILES if settings.file_links_base else frozenset(),
    )


# --- what is planned --------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedJob:
    id: str
    kind: str  # "remind" or "digest"
    campaign_id: int
    campaign_code: str
    run_at: datetime
    what: str


async def running_campaigns(session: AsyncSession, today: date) -> list[Campaign]:
    rows = await session.scalars(
        select(Campaign)
        .where(Campaign.year >= today.year - 1)
        .options(selectinload(Campaign.phases))
        .order_by(Campaign.code)
    )
    return [c for c in rows if campaign_end(c) >= today]


async def plan_jobs(
    sessionmaker: async_sessionmaker[AsyncSession], now: datetime, policy: ReminderPolicy
) -> list[PlannedJob]:
    """The next reminder and digest runs of every running campaign, soonest first.

    Ids are deterministic (campaign code and time), so planning again finds the same jobs.
    """
    async with sessionmaker() as session:
        campaigns = await running_campaigns(session, policy.local(now).date())
    jobs: list[PlannedJob] = []
    for campaign in campaigns:
        points = due_points(campaign, policy)
        for at in upcoming_sends(campaign, now, policy):
            keys = ", ".join(p.key for p in points if p.send_at == at)
            jobs.append(
                PlannedJob(
                    f"remind:{campaign.code}:{at:%Y%m%dT%H%MZ}",
                    "remind",
                    campaign.id,
                    campaign.code,
                    at,
                    keys,
                )
            )
        slot = next_digest_slot(campaign, now, policy)
        if slot is not None:
            jobs.append(
                PlannedJob(
                    f"digest:{campaign.code}:{slot:%Y%m%dT%H%MZ}",
                    "digest",
                    campaign.id,
                    campaign.code,
                    slot,
                    "digest",
                )
            )
    jobs.sort(key=lambda j: (j.run_at, j.id))
    return jobs


# --- the jobs ---------------------------------------------------------------------------------


async def remind_job(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Clock,
    policy: ReminderPolicy,
    campaign_id: int,
    on_queued: Notify | None = None,
) -> PassReport:
    report = await reminder_pass(sessionmaker, campaign_id, clock(), policy)
    metrics.reminders_queued(len(report.messages))
    if report.messages and on_queued is not None:
        on_queued()
    return report


async def digest_job(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Clock,
    policy: ReminderPolicy,
    campaign_id: int,
    chart: ChartFn | None = None,
    on_queued: Notify | None = None,
) -> PassReport:
    report = await digest_pass(sessionmaker, campaign_id, clock(), policy, chart=chart)
    if report.messages and on_queued is not None:
        on_queued()
    return report


async def catch_up_job(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Clock,
    policy: ReminderPolicy,
    chart: ChartFn | None = None,
    on_queued: Notify | None = None,
) -> list[PassReport]:
    """What fell due while no process was leading: every running campaign's current
    reminders and digest, each at most once (the log skips what was sent before)."""
    now = clock()
    async with sessionmaker() as session:
        campaigns = await running_campaigns(session, policy.local(now).date())
    reports = []
    for campaign in campaigns:
        try:
            reports.append(await remind_job(sessionmaker, clock, policy, campaign.id, on_queued))
            reports.append(
                await digest_job(sessionmaker, clock, policy, campaign.id, chart, on_queued)
            )
        except Exception:  # one broken campaign must not stop the others
            log.exception("catch-up of campaign %s failed", campaign.code)
    return reports


# --- the scheduler ----------------------------------------------------------------------------


class Scheduler:
    """Runs the schedule in this process while it holds the leader lock.

    ``start()`` returns at once (the leadership loop runs as a task); ``stop()`` ends it,
    shuts APScheduler down and releases the lock for another process to take.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        engine: AsyncEngine,
        policy: ReminderPolicy,
        *,
        chart: ChartFn | None = None,
        clock: Clock = utcnow,
        on_queued: Notify | None = None,
        standby_retry: float = STANDBY_RETRY_SECONDS,
        refresh_every: float = REFRESH_SECONDS,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.policy = policy
        self.chart = chart
        self.clock = clock
        self.on_queued = on_queued
        self.standby_retry = standby_retry
        self.refresh_every = refresh_every
        self.lock = LeaderLock(engine)
        self._aps: AsyncIOScheduler | None = None  # while leading
        self._task: asyncio.Task[None] | None = None
        # For /readyz: "starting" until the first try for the lock, then "leader"/"follower".
        self.role = "starting"
        self._stop = asyncio.Event()
        self._sync_lock = asyncio.Lock()

    @property
    def is_leader(self) -> bool:
        return self._aps is not None

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The leadership loop while it runs (the composition root watches it)."""
        return self._task

    async def start(self) -> None:
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.create_task(self._run(), name="thidua-scheduler")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            task, self._task = self._task, None
            if task.done():
                return  # it ended by itself: whoever watched it (bot.app.serve) reported how
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def planned(self) -> list[tuple[str, datetime | None]]:
        """The jobs APScheduler holds now, with their next run (empty when standing by)."""
        aps = self._aps
        if aps is None:
            return []
        return sorted(
            ((job.id, job.next_run_time) for job in aps.get_jobs()),
            key=lambda item: (item[1] is None, item[1] or datetime.min, item[0]),
        )

    # --- leadership ---------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                leading = await self.lock.acquire()
            except Exception as exc:  # database down: stand by and try again
                log.warning("scheduler lock unavailable: %s", exc.__class__.__name__)
                leading = False
            self._set_role("leader" if leading else "follower")
            if leading:
                log.info("this process runs the schedule")
                try:
                    await self._lead()
                finally:
                    await self._stop_leading()
                    self._set_role("follower")
            if not self._stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.standby_retry)

    def _set_role(self, role: str) -> None:
        self.role = role
        metrics.SCHEDULER_LEADER.set(1 if role == "leader" else 0)

    async def _lead(self) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        aps = AsyncIOScheduler(
            timezone=self.policy.tz,
            # A job that fires late still runs, once: every pass is idempotent and catches up.
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
        )
        aps.start()
        self._aps = aps
        aps.add_job(self.sync, "interval", seconds=self.refresh_every, id="refresh")
        now = self.clock()
        # Catch up at once, or when the quiet hours end if this process starts at night.
        aps.add_job(
            self._catch_up,
            "date",
            run_date=self.policy.release(now) if self.policy.is_quiet(now) else None,
            id="catch-up",
        )
        await self.sync()
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.standby_retry / 2)
            if not await self.lock.alive():
                log.warning("lost the scheduler lock; standing by")
                return

    async def _stop_leading(self) -> None:
        aps, self._aps = self._aps, None
        if aps is not None:
            aps.shutdown(wait=False)
        await self.lock.release()

    # --- jobs ---------------------------------------------------------------------------

    async def sync(self) -> None:
        """Make APScheduler's reminder and digest jobs match the plan from the database."""
        async with self._sync_lock:
            aps = self._aps
            if aps is None:
                return
            try:
                plan = await plan_jobs(self.sessionmaker, self.clock(), self.policy)
            except Exception:
                log.exception("planning the schedule failed; keeping the current jobs")
                return
            wanted = {job.id: job for job in plan}
            for job in aps.get_jobs():
                if job.id.startswith(("remind:", "digest:")) and job.id not in wanted:
                    job.remove()
            have = {job.id for job in aps.get_jobs()}
            for job in plan:
                if job.id in have:
                    continue
                run = self._remind if job.kind == "remind" else self._digest
                aps.add_job(run, "date", run_date=job.run_at, id=job.id, args=[job.campaign_id])

    async def _still_leader(self) -> bool:
        # Checked before each job: a process whose lock connection died must not act on a
        # schedule another process may already have taken over.
        return await self.lock.alive()

    async def _remind(self, campaign_id: int) -> None:
        if await self._still_leader():
            try:
                await remind_job(
                    self.sessionmaker, self.clock, self.policy, campaign_id, self.on_queued
                )
            except Exception:
                log.exception("reminder pass of campaign %s failed", campaign_id)
        await self.sync()

    async def _digest(self, campaign_id: int) -> None:
        if await self._still_leader():
            try:
                await digest_job(
                    self.sessionmaker,
                    self.clock,
                    self.policy,
                    campaign_id,
                    self.chart,
                    self.on_queued,
                )
            except Exception:
                log.exception("digest of campaign %s failed", campaign_id)
        await self.sync()

    async def _catch_up(self) -> None:
        if await self._still_leader():
            await catch_up_job(
                self.sessionmaker, self.clock, self.policy, self.chart, self.on_queued
            )
