"""The composition root: settings in, database, engine and channels built, run, closed.

Nothing is created at import time; the CLI calls :func:`run`, :func:`chat` or :func:`demo`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.channels.base import Channel
from bot.config import Settings
from bot.eventloop import loop_name
from bot.flood import make_flood_guard
from bot.outbox import OutboxDispatcher
from handlers.engine.flow import EngineConfig
from handlers.engine.runner import Engine
from handlers.flows import build_engine as build_flows_engine
from storage.db import make_engine, make_sessionmaker
from storage.models import ChannelIdentity, Person
from storage.seed import prepare_database

if TYPE_CHECKING:
    from bot.file_links import FileLinks
    from bot.health import Health

log = logging.getLogger(__name__)

ReceiveLoop = Callable[[], Coroutine[Any, Any, None]]
# Where the Zalo OA webhook is served; set the same path in the OA's console.
ZALO_OA_WEBHOOK_PATH = "/zalo-oa/webhook"


@dataclass
class Core:
    """What every channel shares: the database and the conversation engine."""

    db: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    engine: Engine


def build_engine(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], bot_username: str = ""
) -> Engine:
    from bot.charts import progress_chart_png  # matplotlib itself loads only when drawing
    from bot.receipt_card import receipt_card_png  # Pillow too

    config = EngineConfig(
        timezone=settings.timezone,
        default_locale=settings.locale,
        bot_username=bot_username,
        digest_chart=progress_chart_png,
        receipt_card=receipt_card_png,
        quiet_start=settings.quiet_start,
        quiet_end=settings.quiet_end,
    )
    engine = build_flows_engine(sessionmaker, config)
    engine.flood = make_flood_guard(settings.flood_burst, settings.flood_rate, settings.redis_url)
    return engine


class PortInUse(Exception):
    """The web server's address is taken by another program: one line says which setting
    moves it (printed by the CLI without a traceback)."""


class BackgroundTaskDied(Exception):
    """A task the process needs (a channel, the outbox, the broadcasts, the scheduler) ended.

    The process then exits non-zero, so its supervisor restarts it: a half-alive process
    that answers chats but never sends a reminder is worse than a restart.
    """


@contextlib.asynccontextmanager
async def open_core(settings: Settings) -> AsyncIterator[Core]:
    from sqlalchemy import event

    from bot import metrics

    db = make_engine(settings.database_url)
    event.listen(db.sync_engine, "handle_error", metrics.database_error)
    try:
        await prepare_database(db)
        sessionmaker = make_sessionmaker(db)
        engine = build_engine(settings, sessionmaker)
        engine.on_handled = metrics.update_handled
        try:
            yield Core(db, sessionmaker, engine)
        finally:
            if engine.flood is not None:
                await engine.flood.close()
    finally:
        await db.dispose()


async def _until_signalled(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def run(settings: Settings, *, demo: bool = False) -> int:
    """`thidua run`: every channel that is configured, until SIGINT/SIGTERM (exit 0), or
    until a background task dies (exit 1, the supervisor restarts the process).

    With no platform token the web chat is the embedded default; it also carries the
    webhooks (Telegram, Zalo) when those are configured, on THIDUA_WEBHOOK_HOST/PORT as well
    when those differ from the web chat's address, and the probes (/healthz, /readyz,
    /metrics). A process with no web chat serves the probes alone on the web chat's address.
    """
    from bot.health import Health, ProbeServer, webhook_rejections
    from handlers.i18n import use_locale

    _check_address(settings)
    async with open_core(settings) as core:
        if demo:
            from bot.demo import DemoRefused, load_demo

            try:
                with use_locale(settings.locale):
                    print(await load_demo(core.sessionmaker), flush=True)
            except DemoRefused as exc:
                print(f"error: {exc}", file=sys.stderr, flush=True)
                return 1
        channels, routes = await _platform_channels(core, settings)
        links = _file_links(core, settings, channels)
        if links is not None:
            routes += links.routes()
        health = Health(core.db, core.sessionmaker)
        probes: ProbeServer | None = None
        web = None
        if demo or routes or not channels:
            from bot.channels.web import WebChannel

            hooks = settings.webhook_address
            also = (hooks,) if routes and hooks != (settings.web_host, settings.web_port) else ()
            web = WebChannel(
                core.engine,
                core.sessionmaker,
                settings.web_host,
                settings.web_port,
                demo=demo,
                also_listen=also,
                public_url=settings.public_url,
                trusted_proxies=settings.trusted_proxies,
            )
            web.app.add_routes(routes)
            web.app.add_routes(health.routes())
            web.app.middlewares.append(webhook_rejections())
            # First, so the webhook routes are served before Zalo is told to call them.
            channels.insert(0, (web, _until_cancelled))
        else:
            probes = ProbeServer(health, settings.web_host, settings.web_port)
        try:
            if probes is not None:
                await _listening(probes.start(), settings)
            await serve(
                core,
                settings,
                channels,
                health=health,
                on_started=lambda: _ready(web, settings.locale),
            )
        finally:
            if probes is not None:
                await probes.stop()
    return 0


_ADDRESS_ERRORS = (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL)


async def _listening(start: Coroutine[Any, Any, None], settings: Settings) -> None:
    """Start a web server; an address in use becomes one clear line naming the setting."""
    try:
        await start
    except OSError as exc:
        if exc.errno not in _ADDRESS_ERRORS:
            raise
        raise _port_in_use(exc, settings) from None


def _check_address(settings: Settings) -> None:
    """Fail before anything else (the demo's loading, Telegram's getMe) when the web
    server's address is taken: bind it for a moment as the server will (SO_REUSEADDR)."""
    if settings.web_port == 0:
        return
    try:
        for family, kind, proto, _name, address in socket.getaddrinfo(
            settings.web_host, settings.web_port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        ):
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(address)
    except OSError as exc:
        if exc.errno in _ADDRESS_ERRORS:
            raise _port_in_use(exc, settings) from None
        # Anything else (a host name that does not resolve): the server says it when it starts.


def _port_in_use(exc: OSError, settings: Settings) -> PortInUse:
    from handlers.i18n import _, use_locale

    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    with use_locale(settings.locale):
        return PortInUse(
            _(
                "Port {port} on {host} cannot be used ({reason}): another program may be "
                "using it. Choose another port with THIDUA_WEB_PORT, e.g. "
                "THIDUA_WEB_PORT=8081 thidua demo"
            ).format(host=settings.web_host, port=settings.web_port, reason=reason)
        )


def _ready(web: Any, locale: str) -> None:
    """Tell the person at the terminal where the web chat is, once it listens."""
    if web is None:
        return
    from handlers.i18n import _, use_locale

    with use_locale(locale):
        line = _("Web chat: open {url} in a browser (Ctrl-C to stop).").format(url=web.url)
    print(line, flush=True)


def _file_links(
    core: Core, settings: Settings, channels: list[tuple[Channel, ReceiveLoop]]
) -> FileLinks | None:
    """Signed file links for the channels that cannot carry files, when there is an address."""
    base = settings.file_links_base
    # The Zalo channels have the attribute: they cannot carry files themselves.
    textual = [c for c, _loop in channels if hasattr(c, "file_links")]
    if base is None or not textual:
        return None
    from bot.file_links import FileLinks

    links = FileLinks(core.sessionmaker, base, tz=settings.timezone)
    for channel in textual:
        channel.file_links = links
    core.engine.config.linked_file_channels = frozenset(c.name for c in textual)
    return links


async def _until_cancelled() -> None:
    await asyncio.Event().wait()


async def _platform_channels(
    core: Core, settings: Settings
) -> tuple[list[tuple[Channel, ReceiveLoop]], list[Any]]:
    """The messaging platforms that have credentials, and the webhook routes they need."""
    channels: list[tuple[Channel, ReceiveLoop]] = []
    routes: list[Any] = []
    token = settings.telegram_token
    if token is not None:
        from bot.channels.telegram import TelegramChannel  # aiogram is heavy: only when used
        from bot.delivery import call_with_retry

        hook_url, hook_secret = settings.telegram_webhook or (None, None)
        telegram = TelegramChannel(
            core.engine,
            token,
            settings.telegram_api_base,
            webhook_url=hook_url,
            webhook_secret=hook_secret,
            max_concurrent_updates=settings.updates_in_hand,
        )
        # An API hiccup at start is waited out rather than ending the process.
        me = await call_with_retry(telegram.bot.get_me, what="Telegram getMe")
        core.engine.config.bot_username = me.username or ""
        log.info("Telegram bot @%s", core.engine.config.bot_username)
        channels.append((telegram, telegram.run))
        if telegram.webhook_url:
            routes += telegram.webhook_routes(telegram.webhook_path)
    if settings.zalo_token:
        from bot.channels.zalo_bot import ZaloBotChannel

        zalo = ZaloBotChannel.from_settings(core.engine, settings, core.sessionmaker)
        channels.append((zalo, zalo.run))
        if zalo.webhook_url:
            routes += zalo.webhook_routes(zalo.webhook_path)
    if settings.zalo_oa_enabled:
        from bot.channels.zalo_oa import ZaloOAChannel

        oa = ZaloOAChannel.from_settings(core.engine, settings, core.sessionmaker)
        channels.append((oa, oa.run))
        routes += oa.webhook_routes(ZALO_OA_WEBHOOK_PATH)
    return channels, routes


async def serve(
    core: Core,
    settings: Settings,
    channels: list[tuple[Channel, ReceiveLoop]],
    *,
    health: Health | None = None,
    on_started: Callable[[], None] | None = None,
) -> None:
    """Run the channels, the outbox, the broadcasts and the scheduler until a signal or a crash.

    Every background task is watched: one that ends (a receive loop that crashed, the
    scheduler's loop that died on a bad setting) is logged at once with its traceback and
    ends the process with :class:`BackgroundTaskDied`. Shutdown order matters: stop the
    schedule and the receiving, let the dispatcher finish its pass, then close the channels'
    connections.
    """
    from bot.broadcast import BroadcastService
    from bot.charts import progress_chart_png
    from bot.ratelimit import make_limiter
    from bot.scheduler import Scheduler, policy_from_settings

    by_name = {c.name: c for c, _loop in channels}
    # One limiter for everything this process sends unasked (shared through Redis when set):
    # broadcasts, reminders, digests and notifications together stay under the platform's rate.
    limiter = make_limiter(settings.broadcast_rate, redis_url=settings.redis_url)
    dispatcher = OutboxDispatcher(core.sessionmaker, by_name, limiter=limiter)
    broadcasts = BroadcastService(
        core.sessionmaker,
        by_name,
        limiter,
        timezone=settings.timezone,
        default_locale=settings.locale,
        on_queued=dispatcher.nudge,
    )
    core.engine.on_queued = dispatcher.nudge
    scheduler = Scheduler(
        core.sessionmaker,
        core.db,
        policy_from_settings(settings),
        chart=progress_chart_png,
        on_queued=dispatcher.nudge,
    )
    stop = asyncio.Event()
    watched: dict[asyncio.Task[None], str] = {}
    signalled: asyncio.Task[None] | None = None
    broadcasting: asyncio.Task[None] | None = None
    try:
        for channel, _loop in channels:
            await _listening(channel.start(), settings)
        for channel, loop in channels:
            receiving = asyncio.create_task(loop(), name=f"channel {channel.name}")
            watched[receiving] = f"the {channel.name} channel"
            if health is not None:
                health.receivers[channel.name] = receiving
        broadcasting = asyncio.create_task(broadcasts.run(), name="broadcasts")
        watched[broadcasting] = "the broadcast sender"
        watched[asyncio.create_task(dispatcher.run(), name="outbox")] = "the outbox dispatcher"
        await scheduler.start()
        if scheduler.task is not None:
            watched[scheduler.task] = "the scheduler"
        if health is not None:
            health.scheduler = scheduler
        signalled = asyncio.create_task(_until_signalled(stop))
        # What start-up made and keeps for good (modules, SQLAlchemy's mappers, aiogram's
        # types, the flows) is moved out of the garbage collector's sight: its full
        # collections walked all of it, pausing an update up to ~150 ms (bench/conversation.py
        # at 1,000 people: max 200 → 90 ms, p99 29.6 → 26.6 ms, the same CPU).
        gc.collect()
        gc.freeze()
        # bench/start.py times the start up to this line.
        log.info(
            "ready: %s receiving; outbox, broadcasts and scheduler running (event loop: %s)",
            ", ".join(by_name),
            loop_name(),
        )
        if on_started is not None:
            on_started()
        done, _pending = await asyncio.wait(
            [*watched, signalled], return_when=asyncio.FIRST_COMPLETED
        )
        died = [task for task in done if task is not signalled]
        if died and not stop.is_set():
            task = died[0]
            error = None if task.cancelled() else task.exception()
            what = watched[task]
            log.critical(
                "%s stopped%s; the process exits for its supervisor to restart it",
                what,
                f": {error.__class__.__name__}: {error}" if error is not None else "",
                exc_info=error,
            )
            raise BackgroundTaskDied(what)
    finally:
        await scheduler.stop()
        broadcasts.stop()
        if broadcasting is not None:
            # Senders finish the calls in flight and release their leases: no "maybe twice".
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(broadcasting), 15)
        dispatcher.stop()
        for channel, _loop in channels:
            await channel.stop()
        tasks = [*watched, *([signalled] if signalled is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await limiter.close()


async def _console_identity(core: Core, phone: str | None) -> str:
    """The terminal identity; with ``--as PHONE`` it is linked to that person right away."""
    if phone is None:
        return "local"
    from handlers.i18n import _
    from handlers.text import Invalid, parse_phone

    try:
        normalised = parse_phone(phone)
    except Invalid as exc:
        raise SystemExit(f"Not a Vietnamese phone number: {phone}") from exc
    external_id = f"phone:{normalised}"
    async with core.sessionmaker() as session, session.begin():
        person = await session.scalar(select(Person).where(Person.phone == normalised))
        if person is None:
            print(
                _("Nobody has the phone {phone} yet; you will be asked to sign up.").format(
                    phone=normalised
                )
            )
            return external_id
        identity = await session.scalar(
            select(ChannelIdentity).where(
                ChannelIdentity.channel == "console", ChannelIdentity.external_id == external_id
            )
        )
        if identity is None:
            session.add(
                ChannelIdentity(channel="console", external_id=external_id, person_id=person.id)
            )
        print(_("Chatting as {name} ({phone}).").format(name=person.full_name, phone=normalised))
    return external_id


async def chat(settings: Settings, phone: str | None) -> int:
    """`thidua chat`: the conversations in this terminal; /quit or Ctrl-D leaves."""
    from bot.channels.console import ConsoleChannel
    from handlers.i18n import _, use_locale

    async with open_core(settings) as core:
        with use_locale(settings.locale):
            external_id = await _console_identity(core, phone)
            print(_("Type your answers; /trogiup for help, /quit to leave."))
        await ConsoleChannel(core.engine, external_id).run()
    return 0


async def demo(settings: Settings) -> int:
    """`thidua demo`: a small organisation, roster and open campaign, in the web chat."""
    return await run(settings, demo=True)
