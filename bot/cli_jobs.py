"""`thidua remind`, `thidua jobs list` and `thidua digest`: the schedule by hand.

The same functions the scheduler runs, called now: a reminder pass (or a dry run printing
who would get what), the planned runs, and an officer digest printed or queued. Messages go
to the outbox; the running bot's dispatcher delivers them.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from bot.config import Settings
from bot.progress import Tracker, progress
from bot.scheduler import plan_jobs, policy_from_settings
from handlers.digest import build_digest
from handlers.engine.prompt import Address, Outgoing
from handlers.engine.runner import queue_outgoing
from handlers.i18n import use_locale
from handlers.reminders import PassReport, ReminderPolicy, reminder_pass
from storage.db import make_engine, make_sessionmaker
from storage.models import Campaign, Person, Role, Unit, UnitRole
from storage.reminders import latest_addresses
from storage.seed import prepare_database
from storage.stats import campaigns_covering
from storage.types import utcnow

Handler = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


class JobsError(Exception):
    """An expected failure of these commands (unknown campaign or unit, bad time)."""


@contextlib.asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(settings.database_url)
    try:
        await prepare_database(engine)
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


def _moment(text: str | None, policy: ReminderPolicy) -> datetime:
    """``--at "2027-01-18 08:00"`` in local time, or now."""
    if not text:
        return utcnow()
    for pattern in ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%d/%m/%Y %H:%M"):
        try:
            return datetime.strptime(text.strip(), pattern).replace(tzinfo=policy.tz)
        except ValueError:
            continue
    raise JobsError(f"--at {text!r}: write the local time as 2027-01-18 08:00")


def _local(moment: datetime, policy: ReminderPolicy) -> str:
    return policy.local(moment).strftime("%d/%m/%Y %H:%M")


async def _campaign(session: AsyncSession, code: str) -> Campaign:
    campaign = await session.scalar(
        select(Campaign).where(Campaign.code == code).options(selectinload(Campaign.phases))
    )
    if campaign is None:
        raise JobsError(f"unknown campaign {code!r}")
    return campaign


def print_report(report: PassReport, policy: ReminderPolicy, dry_run: bool) -> None:
    when = _local(report.at, policy)
    if report.quiet:
        quiet = policy.quiet
        print(
            f"{when} is within the quiet hours ({quiet.start:%H:%M}–{quiet.end:%H:%M}): "
            "nothing is sent now; what is due goes out when they end."
        )
        return
    if not report.due:
        print(f"{when}: no reminder of {report.campaign_code} is due.")
        return
    verb = "would send" if dry_run else "queued"
    print(f"{when}: due {', '.join(report.due)}; {verb} {len(report.messages)} reminder(s).")
    for m in report.messages:
        print(f"  {m.name:<30} {m.kind}/{m.detail:<9} {m.channel}:{m.external_id:<16} {m.due_key}")


async def cmd_remind(args: argparse.Namespace, settings: Settings) -> int:
    policy = policy_from_settings(settings)
    at = _moment(args.at, policy)
    if args.at and not args.dry_run:
        raise JobsError("--at only goes with --dry-run (a real pass sends what is due now)")
    async with _database(settings) as sessionmaker:
        async with sessionmaker() as session:
            campaign = await _campaign(session, args.campaign)
        report = await reminder_pass(sessionmaker, campaign.id, at, policy, dry_run=args.dry_run)
    print_report(report, policy, args.dry_run)
    return 0


async def cmd_jobs_list(args: argparse.Namespace, settings: Settings) -> int:
    policy = policy_from_settings(settings)
    async with _database(settings) as sessionmaker:
        jobs = await plan_jobs(sessionmaker, utcnow(), policy)
    if not jobs:
        print("Nothing planned: no running campaign has a reminder or digest ahead.")
        return 0
    for job in jobs[: args.limit]:
        print(f"{_local(job.run_at, policy)}  {job.kind:<7} {job.campaign_code:<12} {job.what}")
    if len(jobs) > args.limit:
        print(f"… and {len(jobs) - args.limit} more (--limit N to see them)")
    print(
        f"Quiet hours {policy.quiet.start:%H:%M}–{policy.quiet.end:%H:%M} ({policy.timezone}); "
        "the running bot's leader process runs these, catching up on what it missed."
    )
    return 0


async def cmd_digest(args: argparse.Namespace, settings: Settings) -> int:
    from bot.charts import progress_chart_png

    policy = policy_from_settings(settings)
    now = utcnow()
    save = Path(args.save) if args.save else None
    if save is not None and not save.is_dir():
        raise JobsError(f"not a folder: {save}")
    async with (
        # Progress only when files are written (--save); a printed digest is quick.
        (
            progress("Building the digest", unit="file")
            if save is not None
            else contextlib.nullcontext(Tracker())
        ) as tracker,
        _database(settings) as sessionmaker,
        sessionmaker() as session,
        session.begin(),
    ):
        unit = await session.scalar(select(Unit).where(Unit.code == args.unit))
        if unit is None:
            raise JobsError(f"unknown unit code {args.unit!r}")
        if args.campaign:
            campaigns = [await _campaign(session, args.campaign)]
        else:
            campaigns = await campaigns_covering(session, unit, policy.local(now).date())
            if not campaigns:
                raise JobsError(f"no running campaign covers {args.unit}; use --campaign CODE")
        officers = list(
            await session.execute(
                select(Person.id, Person.full_name, Person.locale)
                .join(UnitRole, UnitRole.person_id == Person.id)
                .where(UnitRole.unit_id == unit.id, UnitRole.role == Role.OFFICER)
                .order_by(Person.id)
            )
        )
        addresses = await latest_addresses(session, [o[0] for o in officers])
        with_files = args.send or save is not None
        for campaign in campaigns:
            with use_locale(settings.locale):
                digest = await build_digest(
                    session,
                    campaign,
                    unit,
                    now,
                    policy,
                    chart=progress_chart_png,
                    with_files=with_files,
                )
            print(digest.text)
            print()
            if save is not None:
                for file in digest.files:
                    (save / file.filename).write_bytes(file.content)
                    tracker.advance(1)
                    print(f"Saved {save / file.filename}")
            if not args.send:
                continue
            outgoing: list[Outgoing] = []
            reached = []
            by_locale = {settings.locale: digest}
            for person_id, name, locale in officers:
                if person_id not in addresses:
                    continue
                channel, external_id = addresses[person_id]
                locale = locale or settings.locale
                with use_locale(locale):
                    if locale not in by_locale:
                        by_locale[locale] = await build_digest(
                            session, campaign, unit, now, policy, chart=progress_chart_png
                        )
                    replies = by_locale[locale].replies(channel)
                outgoing += [Outgoing(Address(channel, external_id), r) for r in replies]
                reached.append(name)
            queue_outgoing(session, outgoing)
            if reached:
                print(f"Queued to {len(reached)} officer(s) of {unit.code}: {', '.join(reached)}")
            else:
                print(f"No officer of {unit.code} can be reached in a chat; nothing was sent.")
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `remind`, `jobs list` and `digest` to the thidua command."""
    p = commands.add_parser("remind", help="run a campaign's reminder pass now")
    p.add_argument("--campaign", required=True, metavar="CODE")
    p.add_argument("--dry-run", action="store_true", help="print who would get what; send nothing")
    p.add_argument("--at", metavar="TIME", help="with --dry-run: as if at this local time")
    p.set_defaults(handler=_guarded(cmd_remind))

    jobs = commands.add_parser("jobs", help="the reminder and digest schedule")
    actions = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser("list", help="the next planned reminder and digest runs")
    p.add_argument("--limit", type=int, default=30, metavar="N")
    p.set_defaults(handler=_guarded(cmd_jobs_list))

    p = commands.add_parser("digest", help="an officer digest of a unit's subtree")
    p.add_argument("--unit", required=True, metavar="CODE")
    p.add_argument("--campaign", metavar="CODE", help="default: the campaigns covering the unit")
    p.add_argument("--send", action="store_true", help="queue it to the unit's officers")
    p.add_argument("--save", metavar="DIR", help="also write the XLSX and PNG files there")
    p.set_defaults(handler=_guarded(cmd_digest))


def _guarded(handler: Handler) -> Handler:
    """Turn :class:`JobsError` into the CLI's one-line error (bot.cli.CliError)."""

    async def run(args: argparse.Namespace, settings: Settings) -> int:
        from bot.cli import CliError

        try:
            return await handler(args, settings)
        except JobsError as exc:
            raise CliError(str(exc)) from exc

    return run
