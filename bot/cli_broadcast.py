"""`thidua broadcast ...`: announcements from the command line.

- ``list``: the latest broadcasts with their status and counts.
- ``status ID [--follow]``: the delivery report the officer gets; ``--follow`` shows a live
  progress bar until the broadcast is no longer sending.
- ``send ID``: send one broadcast now, in this process, over the channels this process can
  run from the settings (Telegram). Recipients on other channels stay pending for the bot.
- ``worker``: a process that only sends broadcasts (due ones, and interrupted ones), for
  deployments that keep sending apart from the chat, or run several senders.
- ``cancel ID``: stop a scheduled or running broadcast.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.progress import progress
from bot.ratelimit import RateLimiter, make_limiter
from handlers.broadcasts import ReportData, build_report, progress_bar, report_text
from handlers.i18n import use_locale
from storage.db import make_engine, make_sessionmaker
from storage.models import Broadcast, BroadcastStatus, Unit
from storage.seed import prepare_database
from storage.types import utcnow

Handler = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]
FOLLOW_SECONDS = 1.0


class BroadcastCliError(Exception):
    """An expected failure (unknown broadcast, no platform token)."""


@contextlib.asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(settings.database_url)
    try:
        await prepare_database(engine)
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


def _tz(settings: Settings) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(settings.timezone)


async def _report(sessions: async_sessionmaker[AsyncSession], broadcast_id: int) -> ReportData:
    async with sessions() as session:
        try:
            return await build_report(session, broadcast_id)
        except LookupError:
            raise BroadcastCliError(f"no broadcast #{broadcast_id}") from None


# --- list and status ---------------------------------------------------------------------------


async def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    async with _database(settings) as sessions, sessions() as session:
        rows = (
            await session.execute(
                select(Broadcast, Unit.code)
                .join(Unit, Unit.id == Broadcast.unit_id)
                .order_by(Broadcast.id.desc())
                .limit(args.limit)
            )
        ).all()
    if not rows:
        print("No broadcasts.")
        return 0
    tz = _tz(settings)
    for broadcast, unit_code in rows:
        when = broadcast.scheduled_at or broadcast.created_at
        counts = broadcast.counts or {}
        sent = counts.get("sent", 0)
        first_line = broadcast.text.splitlines()[0] if broadcast.text else ""
        print(
            f"#{broadcast.id:<5} {broadcast.status:<9} {when.astimezone(tz):%Y-%m-%d %H:%M}  "
            f"{unit_code:<14} sent {sent}/{broadcast.total}  {first_line[:40]}"
        )
    return 0


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    async with _database(settings) as sessions:
        data = await _report(sessions, args.id)
        if args.follow:
            data = await _follow(sessions, args.id, data)
    with use_locale(settings.locale):
        print(report_text(data, _tz(settings)))
    return 0


async def _follow(
    sessions: async_sessionmaker[AsyncSession], broadcast_id: int, data: ReportData
) -> ReportData:
    """A live bar (one line on a terminal, a line every few seconds otherwise) until the
    broadcast is no longer waiting or sending."""
    tty = sys.stdout.isatty()
    samples: list[tuple[float, int]] = []
    last_print = 0.0
    while data.status in (BroadcastStatus.SCHEDULED, BroadcastStatus.SENDING):
        now = time.monotonic()
        samples = [*samples[-30:], (now, data.counts.done)]
        total = max(data.total, data.counts.total)
        rate = 0.0
        if len(samples) > 1 and now > samples[0][0]:
            rate = (samples[-1][1] - samples[0][1]) / (now - samples[0][0])
        left = max(total - data.counts.done, 0)
        eta = f"{left / rate / 60:.1f} min left" if rate > 0 else "…"
        state = "waiting for its time" if data.status == BroadcastStatus.SCHEDULED else ""
        line = (
            f"#{broadcast_id} {progress_bar(data.counts.done, total, 30)}  "
            f"{data.counts.done}/{total}  {rate:.1f}/s  {eta} {state}"
        )
        if tty:
            print("\r" + line.ljust(100), end="", flush=True)
        elif now - last_print >= 10:
            print(line, flush=True)
            last_print = now
        await asyncio.sleep(FOLLOW_SECONDS)
        data = await _report(sessions, broadcast_id)
    if tty:
        print()
    return data


# --- sending -----------------------------------------------------------------------------------


def _channels(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    """The channels this process can send on (send-only: nothing is received here)."""
    token = settings.telegram_token
    if token is None:
        raise BroadcastCliError("TELEGRAM_BOT_TOKEN is not set: there is no channel to send on")
    from bot.app import build_engine
    from bot.channels.telegram import TelegramChannel

    engine = build_engine(settings, sessions)
    return {"telegram": TelegramChannel(engine, token, settings.telegram_api_base)}


async def _close(channels: dict[str, Any], limiter: RateLimiter) -> None:
    for channel in channels.values():
        with contextlib.suppress(Exception):
            await channel.bot.session.close()
    await limiter.close()


def _on_signals(stop: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop)


async def cmd_send(args: argparse.Namespace, settings: Settings) -> int:
    # bot.broadcast brings aiogram (via bot.delivery), slow to import: only when sending,
    # never for the parser, which every `thidua` command builds.
    from bot.broadcast import BroadcastSender

    async with _database(settings) as sessions:
        async with sessions() as session, session.begin():
            broadcast = await session.get(Broadcast, args.id)
            if broadcast is None:
                raise BroadcastCliError(f"no broadcast #{args.id}")
            if broadcast.status in (BroadcastStatus.DONE, BroadcastStatus.CANCELLED):
                raise BroadcastCliError(f"broadcast #{args.id} is {broadcast.status}")
            if broadcast.status == BroadcastStatus.DRAFT or (
                broadcast.status == BroadcastStatus.SCHEDULED
                and (broadcast.scheduled_at is None or broadcast.scheduled_at > utcnow())
            ):
                # Sending by hand means now, whatever the schedule said.
                broadcast.status = BroadcastStatus.SCHEDULED
                broadcast.scheduled_at = utcnow()
        channels = _channels(settings, sessions)
        limiter = make_limiter(settings.broadcast_rate, settings.redis_url)
        sender = BroadcastSender(
            sessions,
            channels,
            limiter,
            timezone=settings.timezone,
            default_locale=settings.locale,
            all_channels=False,
        )
        _on_signals(sender.stop)
        try:
            async with progress(
                f"Broadcast #{args.id}", unit="message", poll=lambda: sender.stats.calls
            ):
                status = await sender.run(args.id)
        finally:
            await _close(channels, limiter)
        if status is None:
            raise BroadcastCliError(f"broadcast #{args.id} is being sent by another process")
        data = await _report(sessions, args.id)
    stats = sender.stats
    elapsed = time.monotonic() - stats.started
    print(
        f"calls {stats.calls}, rate limited {stats.rate_limited}, retried {stats.retried}, "
        f"recovered in flight {stats.recovered}, {elapsed:.1f}s"
    )
    with use_locale(settings.locale):
        print(report_text(data, _tz(settings)))
    return 0


async def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from bot.broadcast import BroadcastService

    async with _database(settings) as sessions:
        channels = _channels(settings, sessions)
        limiter = make_limiter(settings.broadcast_rate, settings.redis_url)
        service = BroadcastService(
            sessions,
            channels,
            limiter,
            timezone=settings.timezone,
            default_locale=settings.locale,
            all_channels=False,
        )
        _on_signals(service.stop)
        print("Sending due broadcasts; Ctrl-C stops (calls in flight are finished first).")
        try:
            await service.run()
        finally:
            await _close(channels, limiter)
    return 0


async def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    async with _database(settings) as sessions, sessions() as session, session.begin():
        broadcast = await session.get(Broadcast, args.id)
        if broadcast is None:
            raise BroadcastCliError(f"no broadcast #{args.id}")
        if broadcast.status not in (BroadcastStatus.SCHEDULED, BroadcastStatus.SENDING):
            raise BroadcastCliError(f"broadcast #{args.id} is {broadcast.status}")
        broadcast.status = BroadcastStatus.CANCELLED
        broadcast.cancelled_at = utcnow()
    print(f"Cancelled broadcast #{args.id}; a running sender stops within a few seconds.")
    return 0


# --- the parser ----------------------------------------------------------------------------------


def _guarded(handler: Handler) -> Handler:
    """Expected failures print one line and exit 1, as the other commands do."""

    async def run(args: argparse.Namespace, settings: Settings) -> int:
        try:
            return await handler(args, settings)
        except BroadcastCliError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return run


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``broadcast`` and its actions to the ``thidua`` parser."""
    group = commands.add_parser("broadcast", help="announcements to members (thông báo)")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser("list", help="the latest broadcasts")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(handler=_guarded(cmd_list))
    p = actions.add_parser("status", help="the delivery report of a broadcast")
    p.add_argument("id", type=int)
    p.add_argument("--follow", action="store_true", help="a live progress bar while it runs")
    p.set_defaults(handler=_guarded(cmd_status))
    p = actions.add_parser("send", help="send a broadcast now, in this process")
    p.add_argument("id", type=int)
    p.set_defaults(handler=_guarded(cmd_send))
    p = actions.add_parser("worker", help="send due broadcasts until stopped")
    p.set_defaults(handler=_guarded(cmd_worker))
    p = actions.add_parser("cancel", help="stop a scheduled or running broadcast")
    p.add_argument("id", type=int)
    p.set_defaults(handler=_guarded(cmd_cancel))
