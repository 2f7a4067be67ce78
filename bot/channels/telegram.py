"""The Telegram channel: Bot API updates in, engine replies out (aiogram 3).

The handlers are thin: an update becomes an :class:`Incoming`, the engine decides, and the
:class:`Result` is rendered as plain text with inline buttons. Nothing about the conversation
is kept here; the engine's database state is the only memory, so a restart loses nothing.

Updates are read as the JSON they arrive in (bot/channels/telegram_updates.py), not through
aiogram's models and dispatcher; aiogram makes the Bot object, getMe, setWebhook, the command
menu and the file uploads.

Event isolation: two updates of one person may run at the same time (as under aiogram's
default ``DisabledEventIsolation``, which this channel used before). That is kept on purpose:
the engine saves conversation state with an optimistic version check and redoes an update
that lost the race, so two fast taps never mix their answers, and other people are never made
to wait behind a slow one. The same check keeps one person's state whole when two bot
processes receive their updates at once.

Updates arrive by long polling, or by webhook when a webhook URL is given (several processes
behind a load balancer; polling cannot be shared). The webhook answers 200 only once the
update is *taken*: the engine has committed it (or it is not for the bot at all). It answers
503 when it did not take it (shutting down, or the database unreachable for ``take_within``
seconds), so Telegram sends it again; nothing of it was committed, and if it was after all
(a commit whose answer was cut off), the engine's event id makes the re-sent copy a no-op.
Duplicate deliveries (a retry after a slow answer, two processes at once) are processed once
for the same reason. Telegram sends one chat's updates one after another, each waiting for
the previous answer, so the webhook also waits up to ``reply_grace`` seconds for the replies
to go out before answering: a person's replies keep their order across processes. Replies
slowed further (a 429 storm) continue in the background after the 200.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import random
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from aiogram import Bot, methods
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods.base import Response
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    KeyboardButton,
    ReplyKeyboardRemove,
)
from aiogram.utils.backoff import Backoff, BackoffConfig
from aiohttp import web

from bot.channels.telegram_session import LeanSession
from bot.channels.telegram_updates import (
    ALLOWED_UPDATES,
    CALLBACK_PREFIX,
    STALE_SEQ,
    MessageUpdate,
    PressUpdate,
    TelegramUpdate,
    UnreadableUpdate,
    read_update,
)
from bot.channels.telegram_updates import (
    parse_callback_data as parse_callback_data,  # part of this module's interface
)
from bot.channels.updates import BadBody, as_dict, load_json
from bot.delivery import MAX_BACKOFF, DeliveryError, call_with_retry
from handlers.engine.prompt import (
    NAV_IDS,
    Choice,
    Incoming,
    Reply,
    Result,
)
from handlers.engine.runner import Engine
from handlers.i18n import _, use_locale
from handlers.text import split_message

log = logging.getLogger(__name__)

MAX_TEXT = 4096
MAX_CALLBACK_BYTES = 64
# Updates handled at once unless told (THIDUA_UPDATES_IN_HAND says why this few).
MAX_CONCURRENT_UPDATES = 2
# Seconds stop() waits for updates already being handled before closing the session.
DRAIN_TIMEOUT = 10.0
# Pauses between failed getUpdates calls: aiogram's polling defaults, kept as they were
# (1 s, growing by 1.3 up to 5 s, with a little jitter).
POLL_BACKOFF = BackoffConfig(min_delay=1.0, max_delay=5.0, factor=1.3, jitter=0.1)

# Webhook. Telegram does not document how long it waits for an answer; clients keep well
# under ten seconds (grammY's default is 10 s), and a chat's next update waits meanwhile.
# TAKE_WITHIN: how long an update may take to be committed before the webhook gives up and
# answers 503 (the database is restarting, or the process is overloaded); Telegram re-sends.
# REPLY_GRACE: how long after that the webhook waits for the replies to go out.
TAKE_WITHIN = 6.0
REPLY_GRACE = 3.0
WEBHOOK_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Telegram's rule for secret_token; checked in the settings too.
WEBHOOK_SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,256}")
# A text message is at most 4096 characters, but an update also carries the replied-to message
# and entities; the web chat's 16 KiB limit is far too small for that, this one is ample.
MAX_WEBHOOK_BYTES = 1024 * 1024
# Updates whose sender was told the database is busy, so a re-sent copy does not say it again.
BUSY_TOLD_KEPT = 1000

# --- pure conversions (no network) ----------------------------------------------------------


def callback_data(seq: int | None, choice_id: str) -> str:
    """``c:<seq>:<choice id>``: the prompt it belongs to travels with the press."""
    data = f"{CALLBACK_PREFIX}:{STALE_SEQ if seq is None else seq}:{choice_id}"
    if not data.isascii() or len(data.encode()) > MAX_CALLBACK_BYTES:
        # Choice ids are checked to be short ASCII when built; this would be a bug upstream.
        raise ValueError(f"callback_data must be ASCII and at most 64 bytes: {data!r}")
    return data


def _split_nav(choices: tuple[Choice, ...]) -> tuple[list[Choice], list[Choice]]:
    main = [c for c in choices if c.id not in NAV_IDS]
    nav = [c for c in choices if c.id in NAV_IDS]
    return main, nav


def inline_keyboard(reply: Reply) -> dict[str, Any] | None:
    """Choices as buttons: one per row or two per row; back/skip/cancel together last.

    As the JSON the Bot API takes: built from our own strings, the pydantic models aiogram
    would build and dump again only check what we know (bench/conversation.py, platform CPU).
    """
    if not reply.choices:
        return None
    main, nav = _split_nav(reply.choices)
    seq = reply.seq

    def button(choice: Choice) -> dict[str, str]:
        return {"text": choice.label, "callback_data": callback_data(seq, choice.id)}

    step = 1 if reply.one_per_row else 2
    rows = [[button(c) for c in main[i : i + step]] for i in range(0, len(main), step)]
    if nav:
        rows.append([button(c) for c in nav])
    return {"inline_keyboard": rows}


def contact_keyboard(reply: Reply) -> dict[str, Any]:
    """A share-my-number button; the other choices as plain buttons the engine reads as text.

    Call inside ``use_locale``: the button label is translated here.
    """
    main, nav = _split_nav(reply.choices)
    # aiogram's model for the one label written here (tests/test_buttons.py checks that it
    # fits); this keyboard is shown once per sign-up, its cost does not matter.
    share = KeyboardButton(text=_("📱 Share my phone number"), request_contact=True)
    rows: list[list[dict[str, Any]]] = [[share.model_dump(exclude_none=True)]]
    rows += [[{"text": c.label}] for c in main]
    if nav:
        rows.append([{"text": c.label} for c in nav])
    return {"keyboard": rows, "resize_keyboard": True, "one_time_keyboard": True}


# Takes a reply keyboard (the contact button) off the screen.
REMOVE_KEYBOARD: dict[str, Any] = {"remove_keyboard": True}


def _has_free_slot(reply: Reply) -> bool:
    """Whether the first message of ``reply`` goes out without a keyboard of its own."""
    parts = split_message(reply.text, MAX_TEXT) if reply.text.strip() else []
    if not parts:
        return reply.file is not None
    return len(parts) > 1 or not (reply.choices or reply.request_contact)


def webhook_secret_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison, so the secret cannot be guessed one character at a time."""
    return hmac.compare_digest((given or "").encode(), expected.encode())


@dataclass
class _Delivery:
    """One webhook request's update: set ``taken`` once the engine has committed it."""

    update_id: int
    taken: asyncio.Event = field(default_factory=asyncio.Event)


# What wrap_updates takes: given the handling of one update, it awaits it once.
AroundUpdate = Callable[[Callable[[], Awaitable[None]]], Awaitable[None]]

# The webhook delivery the current task is handling (None when polling): the handlers tell
# the webhook route through it that the update was taken.
_delivery: ContextVar[_Delivery | None] = ContextVar("telegram_delivery", default=None)


def bot_commands() -> list[BotCommand]:
    """The command menu, in the current locale (msgids in English, translated by gettext).

    The Vietnamese commands in every language (/trogiup, /huy): the texts name them, and a
    Vietnamese menu with /help and /cancel would read half English. /start stays: it is what
    Telegram's Start button sends.
    """
    return [
        BotCommand(command="start", description=_("Start, or go back to the main menu")),
        BotCommand(command="dangky", description=_("Register a title")),
        BotCommand(command="cuatoi", description=_("My registrations")),
        BotCommand(command="trogiup", description=_("Help")),
        BotCommand(command="huy", description=_("Cancel the current step")),
    ]


# The Bot API methods this channel calls through aiogram's models (see keep_response_models);
# getUpdates and the conversation's calls go lean (LeanSession.call): no models.
USED_METHODS: tuple[type[methods.TelegramMethod[Any]], ...] = (
    methods.GetMe,
    methods.DeleteWebhook,
    methods.SetWebhook,
    methods.SetMyCommands,
    methods.SendDocument,
    methods.SendPhoto,
)


def keep_response_models() -> tuple[object, ...]:
    """aiogram's ``Response[...]`` models for the methods we call, to be held by the caller.

    aiogram validates every API answer with ``Response[method.__returning__]``, and pydantic
    (2.12 on) caches parametrised generic models by weak reference only: each time the
    garbage collector frees one, the next answer builds its validator again, 5-20 ms of CPU
    in the event loop. bench/conversation.py measured that as a third of the bot's time per
    update; held for the life of the channel, each is built once.
    """
    returning: set[Any] = {m.__returning__ for m in USED_METHODS}
    return tuple(Response.__class_getitem__(r) for r in returning)


# --- the channel ----------------------------------------------------------------------------


class TelegramChannel:
    """Long-polls the Bot API (any base URL) or answers its webhook, feeds the engine, renders
    its replies."""

    def __init__(
        self,
        engine: Engine,
        token: str,
        api_base: str,
        *,
        channel_name: str = "telegram",
        polling_timeout: int = 25,
        max_concurrent_updates: int = MAX_CONCURRENT_UPDATES,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        take_within: float = TAKE_WITHIN,
        reply_grace: float = REPLY_GRACE,
        request_timeout: float = 60.0,
    ) -> None:
        if webhook_url and not (
            webhook_secret and WEBHOOK_SECRET_PATTERN.fullmatch(webhook_secret)
        ):
            # Without a secret anyone who finds the URL could speak for any user.
            raise ValueError(
                "a Telegram webhook needs TELEGRAM_WEBHOOK_SECRET: 1-256 characters of "
                "A-Z, a-z, 0-9, _ and -"
            )
        self.name = channel_name
        self.engine = engine
        self.polling_timeout = polling_timeout
        # Bounded so a burst of updates cannot open more database sessions than the pool has,
        # and low: updates in hand share one CPU, so more of them only lengthens each one.
        self.max_concurrent_updates = max_concurrent_updates
        self.webhook_url = webhook_url or None
        self._webhook_secret = webhook_secret or None
        self.take_within = take_within
        self.reply_grace = reply_grace
        self._webhook_slots = asyncio.Semaphore(max_concurrent_updates)
        self._webhook_tasks: set[asyncio.Task[Any]] = set()
        self._busy_told: OrderedDict[int, None] = OrderedDict()
        self._stopped = asyncio.Event()
        self._response_models = keep_response_models()
        self._session = LeanSession(
            api=TelegramAPIServer.from_base(api_base), timeout=request_timeout
        )
        # No parse mode anywhere: what people type is shown back literally, never as HTML.
        # (The lean calls send none either: the parameters are exactly those given.)
        self.bot = Bot(token, session=self._session, default=DefaultBotProperties(parse_mode=None))
        # Conversations live in the database (handlers.engine): nothing per chat is kept here.
        self._around_update: list[AroundUpdate] = []
        # Polled updates being handled (stop() lets them finish).
        self._in_flight: set[asyncio.Task[Any]] = set()
        # The newest polled update taken in hand (or skipped): confirmed at stop().
        self._last_update_id: int | None = None
        self._poller: asyncio.Task[None] | None = None
        self._menu: asyncio.Task[None] | None = None
        self._closing = False

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Register the command menu, in the background: receiving does not wait for it."""
        # Two round trips to Telegram (more when it hiccups, with retries): the bot answers
        # meanwhile, and its replies never depend on the menu (bench/start.py).
        self._menu = asyncio.create_task(self._register_commands(), name="telegram-menu")

    async def menu_registered(self) -> None:
        """Wait until the command menu started by :meth:`start` is registered (or given up)."""
        if self._menu is not None:
            await asyncio.wait([self._menu])

    async def _register_commands(self) -> None:
        """The command menu: Vietnamese by default, English for English clients."""
        for locale, language_code in (("vi", None), ("en", "en")):
            with use_locale(locale):
                commands = bot_commands()
            # Logged inside; the bot works without a command menu.
            with contextlib.suppress(DeliveryError):
                await call_with_retry(
                    partial(self.bot.set_my_commands, commands, language_code=language_code),
                    what=f"setMyCommands({locale})",
                )

    async def run(self) -> None:
        """Receive updates until :meth:`stop`: by webhook when a URL is set, else by polling."""
        if self.webhook_url:
            await self.run_webhook()
        else:
            await self.run_polling()

    async def run_polling(self) -> None:
        """Receive updates until :meth:`stop`; the composition root owns the signals."""
        if self._closing:
            return
        # One task from the first call on, so stop() can end it at any point of its start.
        self._poller = asyncio.create_task(self._poll())
        await asyncio.wait([self._poller])
        if not self._poller.cancelled():
            self._poller.result()  # a crash of the poller is the caller's to see

    async def _poll(self) -> None:
        """getUpdates in a loop, each update handled in a task of its own, at most
        ``max_concurrent_updates`` at once; ended by stop() cancelling it."""
        # Polling and a webhook exclude each other: a leftover webhook would stop us cold.
        # If this fails (network down at start), polling itself keeps retrying and says so.
        with contextlib.suppress(DeliveryError):
            await call_with_retry(
                partial(self.bot.delete_webhook, drop_pending_updates=False),
                what="deleteWebhook",
            )
        log.info("Telegram: receiving updates by long polling")
        params: dict[str, Any] = {
            "timeout": self.polling_timeout,
            "allowed_updates": ALLOWED_UPDATES,
        }
        # The long poll itself lasts up to polling_timeout: the request may take that long
        # beyond the session's timeout before it counts as lost.
        request_timeout = self._session.timeout + self.polling_timeout
        slots = asyncio.Semaphore(self.max_concurrent_updates)
        backoff = Backoff(POLL_BACKOFF)
        failed = False
        while True:
            try:
                updates = await self._session.call(
                    self.bot, methods.GetUpdates, params, request_timeout=request_timeout
                )
                if not isinstance(updates, list):
                    raise ValueError("getUpdates answered with something other than a list")
            except Exception as exc:  # the API or the network: never a reason to stop
                failed = True
                delay = next(backoff)
                if isinstance(exc, TelegramRetryAfter):
                    delay = max(delay, float(exc.retry_after))
                # 409 (a webhook is set, or another process polls with this token) too: it
                # is said every time, and polling goes on once the other one is gone.
                log.error(
                    "getUpdates failed (%s: %s), retrying in %.1fs",
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            if failed:
                log.info("getUpdates works again after %d failures", backoff.counter)
                backoff.reset()
                failed = False
            for raw in updates:
                update_id = await self._take_polled(raw, slots)
                if update_id is not None:
                    # Confirmed with the next getUpdates: taken in hand (or nothing to do).
                    params["offset"] = update_id + 1
                    last = self._last_update_id
                    self._last_update_id = update_id if last is None else max(last, update_id)

    async def _take_polled(self, raw: Any, slots: asyncio.Semaphore) -> int | None:
        """Start handling one polled update (waiting for a free slot); its update_id, or None
        when it has none to confirm it by."""
        try:
            update = read_update(raw, self.name)
        except UnreadableUpdate as exc:
            update_id = as_dict(raw).get("update_id")
            _log_unreadable(update_id, exc)
            return update_id if isinstance(update_id, int) else None
        if update is None:
            return int(raw["update_id"])  # read_update checked it
        await slots.acquire()
        task = asyncio.create_task(self._handle_polled(update, slots))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        return update.update_id

    async def _handle_polled(self, update: TelegramUpdate, slots: asyncio.Semaphore) -> None:
        try:
            await self._dispatch(update)
        except Exception:
            # Nobody awaits this task's result: the trace goes to the log here.
            log.exception("Telegram update %s failed", update.update_id)
        finally:
            slots.release()

    async def run_webhook(self) -> None:
        """Register the webhook, then wait until :meth:`stop` (the routes do the receiving).

        Every process registers the same URL at start: setWebhook is idempotent, and a process
        that starts while the API is down keeps trying here, its routes already answering.
        """
        if self._closing:
            return
        setter = asyncio.create_task(self._set_webhook())
        stopped = asyncio.create_task(self._stopped.wait())
        try:
            await asyncio.wait([setter, stopped], return_when=asyncio.FIRST_COMPLETED)
            if setter.done():
                setter.result()  # a rejected URL is a configuration error: let it crash
                await stopped
        finally:
            setter.cancel()
            stopped.cancel()

    async def _set_webhook(self) -> None:
        assert self.webhook_url and self._webhook_secret
        failures = 0
        while True:
            try:
                await self.bot.set_webhook(
                    self.webhook_url,
                    secret_token=self._webhook_secret,
                    allowed_updates=ALLOWED_UPDATES,
                    # Updates that waited while no process was up are still wanted.
                    drop_pending_updates=False,
                )
            except TelegramRetryAfter as exc:
                delay = float(exc.retry_after)
            except (TelegramServerError, TelegramNetworkError, ClientDecodeError) as exc:
                failures += 1
                delay = min(0.5 * 2 ** (failures - 1), MAX_BACKOFF) * random.uniform(0.8, 1.2)
                log.warning("setWebhook failed (%s), retrying in %.1fs", exc, delay)
            except TelegramAPIError as exc:
                log.error("setWebhook rejected (check TELEGRAM_WEBHOOK_URL): %s", exc)
                raise
            else:
                log.info("Telegram webhook registered at %s", _redacted_url(self.webhook_url))
                return
            await asyncio.sleep(delay)

    async def stop(self) -> None:
        """Stop receiving, let updates in hand finish, confirm them, close the session.

        The webhook stays registered: the other processes (or this one restarted) take the
        updates; Telegram keeps them meanwhile.
        """
        self._closing = True
        self._stopped.set()
        poller = self._poller
        if poller is not None and not poller.done():
            # Wherever it is (deleting the webhook, in a long poll, waiting for a free slot):
            # the updates it has not taken in hand are not confirmed and come again.
            poller.cancel()
            await asyncio.wait([poller])
        running = self._in_flight | self._webhook_tasks
        if running:
            _done, pending = await asyncio.wait(running, timeout=DRAIN_TIMEOUT)
            if pending:
                log.warning("%d updates still running at shutdown", len(pending))
        if not self.webhook_url:  # getUpdates would only fail with 409 beside a webhook
            await self._confirm_updates()
        if self._menu is not None and not self._menu.done():
            self._menu.cancel()
            await asyncio.wait([self._menu])
        await self.bot.session.close()

    async def _confirm_updates(self) -> None:
        """Tell Telegram which updates were handled, so a restart does not replay them.

        A batch is confirmed only with the next getUpdates; when polling stops in the middle
        of a batch, the updates already handled would otherwise come back.
        """
        if self._last_update_id is None:
            return
        try:
            # Short: an unreachable API must not hold the shutdown for the session's 60 s.
            await self._session.call(
                self.bot,
                methods.GetUpdates,
                {"offset": self._last_update_id + 1, "timeout": 0, "limit": 1},
                request_timeout=5,
            )
        except TelegramAPIError as exc:
            log.warning("could not confirm handled updates: %s", exc)

    # --- handling an update ----------------------------------------------------------------

    def wrap_updates(self, around: AroundUpdate) -> None:
        """Run the handling of every update (polled or by webhook) as ``around(handle)``;
        ``around`` awaits ``handle()`` once and returns when it does.

        For measurements from outside the project code (bench/conversation.py times each
        update with it); the bot itself wraps nothing. The last one added is the outermost.
        """
        self._around_update.append(around)

    async def _dispatch(self, update: TelegramUpdate) -> None:
        handle: Callable[[], Awaitable[None]] = partial(self._on_update, update)
        for around in self._around_update:
            handle = partial(around, handle)
        await handle()

    async def _on_update(self, update: TelegramUpdate) -> None:
        if isinstance(update, MessageUpdate):
            await self._on_message(update)
        else:
            await self._on_callback(update)

    # --- webhook -------------------------------------------------------------------------

    @property
    def webhook_path(self) -> str:
        """The path of the webhook URL: where the route is mounted (a proxy must keep it)."""
        return urlsplit(self.webhook_url or "").path or "/"

    def webhook_routes(self, path: str) -> list[web.RouteDef]:
        """The webhook as a route, for the composition root's web server (``add_routes``)."""
        return [web.post(path, self.handle_webhook)]

    async def handle_webhook(self, request: web.Request) -> web.Response:
        """POST from Telegram: check the secret, take the update, then answer.

        200: taken (committed, or nothing for the bot). 503: not taken, send it again.
        401: wrong secret. 400: not JSON (Telegram never sends that).
        """
        if self._webhook_secret is None:
            raise web.HTTPNotFound()
        given = request.headers.get(WEBHOOK_SECRET_HEADER)
        if not webhook_secret_matches(given, self._webhook_secret):
            log.warning("Telegram webhook call with a wrong secret from %s", request.remote)
            return web.json_response({"ok": False, "description": "Unauthorized"}, status=401)
        if self._closing:
            # Not 200: Telegram keeps the update for another process or the restarted one.
            return _not_taken("Shutting down")
        raw = await _read_limited(request, MAX_WEBHOOK_BYTES)
        if raw is None:
            return web.json_response({"ok": False, "description": "Too large"}, status=413)
        try:
            body = load_json(raw)
        except BadBody:
            return web.json_response({"ok": False, "description": "Bad JSON"}, status=400)
        try:
            update = read_update(body, self.name)
        except UnreadableUpdate as exc:
            # It can never be read: a non-2xx would have it re-sent forever, and hold up
            # the chat's later updates behind it.
            _log_unreadable(as_dict(body).get("update_id"), exc)
            return web.json_response({"ok": True})
        if update is None:  # nothing for the bot (a group, a channel post, another kind)
            return web.json_response({"ok": True})
        return await self._take(update)

    async def _take(self, update: TelegramUpdate) -> web.Response:
        delivery = _Delivery(update.update_id)
        token = _delivery.set(delivery)
        try:
            # A task of its own, so the answer can go out while replies are still being sent.
            work = asyncio.create_task(self._feed(update))
        finally:
            _delivery.reset(token)
        self._webhook_tasks.add(work)
        work.add_done_callback(self._webhook_tasks.discard)
        taken = asyncio.create_task(delivery.taken.wait())
        try:
            await asyncio.wait(
                [work, taken], timeout=self.take_within, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            taken.cancel()
        if delivery.taken.is_set():
            # Keep the person's replies in order: Telegram holds their next update until now.
            await asyncio.wait([work], timeout=self.reply_grace)
            return web.json_response({"ok": True})
        if not work.done():
            # Not committed in time. Cancelled, so nothing of it happens after the 503; a
            # commit cut off on its way back is caught by the engine's event id on the re-send.
            work.cancel()
            log.warning("update %s not taken in %.1fs: 503", update.update_id, self.take_within)
            return _not_taken("Busy")
        # Done without reaching the engine: a bug before the engine (logged in _feed) that a
        # re-sent copy would only repeat.
        return web.json_response({"ok": True})

    async def _feed(self, update: TelegramUpdate) -> None:
        async with self._webhook_slots:
            try:
                await self._dispatch(update)
            except Exception:
                # Nobody awaits this task's result: the trace goes to the log here.
                log.exception("Telegram update %s failed", update.update_id)

    # --- updates in ----------------------------------------------------------------------

    async def _on_message(self, message: MessageUpdate) -> None:
        """A person wrote, shared a contact or sent a file: ask the engine, answer them."""
        incoming = message.incoming
        result = await self._handle(incoming)
        # Any message may be the answer to a contact keyboard (shared, typed, a nav label):
        # clear that keyboard with the first reply, unless the reply shows it again.
        await self._render(
            message.user_id, result, clear_reply_keyboard=True, shared_phone=incoming.contact_phone
        )

    async def _on_callback(self, press: PressUpdate) -> None:
        """A button was pressed: acknowledge it, mark the press and ask the engine, at once."""
        # The acknowledgement and the engine do not depend on each other: side by side. A
        # refused press (an earlier question's button) is not marked as chosen; the mark and
        # the next question do not depend on each other either.
        answered = asyncio.ensure_future(self._answer_callback(press.query_id))
        try:
            result = await self._handle(press.incoming)
            marking = [self._mark_pressed(press)] if result.press_taken else []
            await asyncio.gather(
                *marking, self._render(press.user_id, result, clear_reply_keyboard=False)
            )
        finally:
            await answered

    async def _api(self, method: type[methods.TelegramMethod[Any]], params: dict[str, Any]) -> Any:
        """A Bot API call of the conversation, lean (telegram_session): JSON in, JSON out."""
        return await self._session.call(self.bot, method, params)

    async def _answer_callback(self, query_id: str) -> None:
        # Telegram shows a spinner on the button until this arrives; one try, no waiting.
        try:
            await self._api(methods.AnswerCallbackQuery, {"callback_query_id": query_id})
        except TelegramAPIError as exc:
            log.info("could not answer callback query %s: %s", query_id, exc)

    async def _mark_pressed(self, press: PressUpdate) -> None:
        """Drop the pressed message's buttons and note the choice under its text."""
        message = press.pressed
        if message is None:  # too old to be shown to the bot
            log.info("pressed message of %s is no longer accessible", press.user_id)
            return
        label = message.label
        text = message.text
        edit: Callable[[], Awaitable[Any]]
        where = {"chat_id": message.chat_id, "message_id": message.message_id}
        if text and label and len(text) + len(label) + 3 <= MAX_TEXT:
            edit = partial(
                self._api, methods.EditMessageText, {**where, "text": f"{text}\n\n✔ {label}"}
            )
        else:
            # Without a reply_markup: the buttons go.
            edit = partial(self._api, methods.EditMessageReplyMarkup, where)

        async def tolerant_edit() -> None:
            try:
                await edit()
            except TelegramBadRequest as exc:
                # "message is not modified" (a double tap), "message can't be edited" (old).
                log.info("could not mark press in chat %s: %s", message.chat_id, exc)

        # Logged inside; the reply matters more than the mark.
        with contextlib.suppress(DeliveryError):
            await call_with_retry(tolerant_edit, what=f"mark press in chat {message.chat_id}")

    async def _handle(self, incoming: Incoming) -> Result:
        delivery = _delivery.get()

        async def tell_busy(reply: Reply) -> None:
            # The database is away: say so now, the answer is kept and retried meanwhile.
            # Once per update: a webhook update not taken in time comes back and waits again.
            if delivery is not None:
                if delivery.update_id in self._busy_told:
                    return
                self._busy_told[delivery.update_id] = None
                while len(self._busy_told) > BUSY_TOLD_KEPT:
                    self._busy_told.popitem(last=False)
            with contextlib.suppress(DeliveryError, ValueError):
                await self._deliver(int(incoming.address.external_id), reply, remove_keyboard=False)

        try:
            result = await self.engine.handle(incoming, on_busy=tell_busy)
        except Exception:
            # A bug must not leave the person facing silence.
            log.exception("engine failed on an update from %s", incoming.address)
            with use_locale(incoming.locale or self.engine.config.default_locale):
                text = _("Sorry, something went wrong on our side. Please try again.")
            result = Result(replies=[Reply(text)])
        if delivery is not None:
            delivery.taken.set()
        return result

    # --- replies out ---------------------------------------------------------------------

    async def send(self, address_external_id: str, reply: Reply) -> None:
        """Send a reply to someone who did not just write (raises DeliveryError)."""
        try:
            chat_id = int(address_external_id)
        except ValueError:
            log.error("not a Telegram chat id: %r", address_external_id)
            raise DeliveryError(f"send to {address_external_id!r}", "bad address") from None
        await self._deliver(chat_id, reply, remove_keyboard=reply.remove_keyboard)

    async def _render(
        self,
        chat_id: int,
        result: Result,
        *,
        clear_reply_keyboard: bool,
        shared_phone: str | None = None,
    ) -> None:
        with use_locale(result.locale or self.engine.config.default_locale):
            await self._render_replies(
                chat_id,
                result,
                clear_reply_keyboard=clear_reply_keyboard,
                shared_phone=shared_phone,
            )

    async def _render_replies(
        self,
        chat_id: int,
        result: Result,
        *,
        clear_reply_keyboard: bool,
        shared_phone: str | None,
    ) -> None:
        remove = clear_reply_keyboard and not any(r.request_contact for r in result.replies)
        if remove and shared_phone and result.replies and not _has_free_slot(result.replies[0]):
            # A shared contact means the share-contact keyboard is surely on screen, but the
            # next question carries inline buttons, and a message holds one keyboard only.
            # Acknowledge the number in a message of its own that takes the keyboard away.
            try:
                await call_with_retry(
                    partial(
                        self._api,
                        methods.SendMessage,
                        {
                            "chat_id": chat_id,
                            "text": f"📱 {shared_phone}",
                            "reply_markup": REMOVE_KEYBOARD,
                        },
                    ),
                    what=f"sendMessage to {chat_id}",
                )
            except DeliveryError:
                return  # logged; the rest would not arrive either
            remove = False
        for reply in result.replies:
            try:
                remove = await self._deliver(
                    chat_id, reply, remove_keyboard=remove or reply.remove_keyboard
                )
            except DeliveryError:
                # Logged already; later parts alone would read out of order, so stop here.
                break
        # result.others is not sent here: the engine queued those messages in the outbox in
        # the same transaction, and the outbox dispatcher delivers them through send().
        # Sending them here as well would deliver them twice.

    def _markup(self, reply: Reply) -> dict[str, Any] | None:
        # The contact button is labelled in the current locale, set by _render from the
        # language the engine answered in.
        if reply.request_contact:
            return contact_keyboard(reply)
        return inline_keyboard(reply)

    async def _deliver(self, chat_id: int, reply: Reply, *, remove_keyboard: bool) -> bool:
        """Send one reply (split, with its keyboard on the last part, then its file).

        Returns whether a reply keyboard still has to be removed: the removal rides on the
        first message that carries no keyboard of its own.
        """
        markup = self._markup(reply)
        if reply.request_contact:
            remove_keyboard = False  # the new keyboard replaces the old one
        parts = split_message(reply.text, MAX_TEXT) if reply.text.strip() else []
        if not parts and markup is not None and reply.file is None:
            log.warning("a reply with buttons but no text cannot be sent to %s", chat_id)
        for i, part in enumerate(parts):
            part_markup = markup if i == len(parts) - 1 else None
            if part_markup is None and remove_keyboard:
                part_markup, remove_keyboard = REMOVE_KEYBOARD, False
            params: dict[str, Any] = {"chat_id": chat_id, "text": part}
            if part_markup is not None:
                params["reply_markup"] = part_markup
            await call_with_retry(
                partial(self._api, methods.SendMessage, params),
                what=f"sendMessage to {chat_id}",
            )
        if reply.file is not None:
            file_markup: ReplyKeyboardRemove | None = None
            if remove_keyboard:
                file_markup, remove_keyboard = ReplyKeyboardRemove(), False
            out = reply.file
            # A file Telegram already has (a broadcast's attachment) goes by its file_id:
            # no upload per recipient.
            payload: str | BufferedInputFile = out.file_id or BufferedInputFile(
                out.content, filename=out.filename
            )
            send_file: Callable[..., Awaitable[Any]] = (
                partial(self.bot.send_photo, photo=payload)
                if out.kind == "photo"
                else partial(self.bot.send_document, document=payload)
            )
            await call_with_retry(
                partial(send_file, chat_id=chat_id, reply_markup=file_markup),
                what=f"send {out.kind} {out.filename} to {chat_id}",
            )
        return remove_keyboard

    # --- messages that change (broadcast progress) -----------------------------------------

    async def post(self, address_external_id: str, reply: Reply) -> str:
        """Send one text message (with its buttons) and return its ref for :meth:`edit`."""
        chat_id = self._chat_id(address_external_id)
        params: dict[str, Any] = {"chat_id": chat_id, "text": reply.text[:MAX_TEXT]}
        if (markup := inline_keyboard(reply)) is not None:
            params["reply_markup"] = markup
        message = await call_with_retry(
            partial(self._api, methods.SendMessage, params), what=f"sendMessage to {chat_id}"
        )
        return str(message["message_id"])

    async def edit(self, address_external_id: str, message_ref: str, reply: Reply) -> None:
        """Replace the text (and buttons) of a message the bot sent (raises DeliveryError
        when it cannot be edited any more: deleted, or too old)."""
        chat_id = self._chat_id(address_external_id)

        params: dict[str, Any] = {
            "chat_id": chat_id,
            "message_id": int(message_ref),
            "text": reply.text[:MAX_TEXT],
        }
        if (markup := inline_keyboard(reply)) is not None:
            params["reply_markup"] = markup

        async def edit() -> None:
            try:
                await self._api(methods.EditMessageText, params)
            except TelegramBadRequest as exc:
                if "not modified" not in str(exc):  # the same text again is fine
                    raise

        await call_with_retry(edit, what=f"edit message {message_ref} in chat {chat_id}")

    def _chat_id(self, address_external_id: str) -> int:
        try:
            return int(address_external_id)
        except ValueError:
            log.error("not a Telegram chat id: %r", address_external_id)
            raise DeliveryError(f"send to {address_external_id!r}", "bad address") from None


def _log_unreadable(update_id: Any, exc: UnreadableUpdate) -> None:
    """Logged by where and what is wrong, never with the values: they are the person's
    words."""
    shown = update_id if isinstance(update_id, int) else "?"
    log.error("unreadable Telegram update %s dropped: %s", shown, exc)


def _not_taken(reason: str) -> web.Response:
    return web.json_response(
        {"ok": False, "description": reason}, status=503, headers={"Retry-After": "1"}
    )


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    """The body, or None past ``limit`` bytes (the app's own, smaller limit is not used)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _redacted_url(url: str) -> str:
    """The URL without its query, which some deployments use for a token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
